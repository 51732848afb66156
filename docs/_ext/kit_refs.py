"""Resolve the docstrings' short cross-references (``:func:`evaluate_encoding```) to the one object they name.

The kit's docstrings name functions of other modules by their short name, as a reader would. Sphinx resolves a short
name only inside the current module, so this resolves a reference that Sphinx left unresolved when exactly one
documented object of the package ends with that name (``.name`` or ``module.name``), or, for a module constant
without its own entry (``DEFAULT_ALPHAS``), when exactly one module of the package defines it: then the link goes to
that module's section. Anything else stays unresolved and fails the build (nitpicky mode). External libraries
(scikit-learn, himalaya) have no inventory offline: their names are left as text (``nitpick_ignore_regex`` in conf.py).
"""

import importlib
import sys

from sphinx.util.nodes import make_refnode


def _candidates(domain, target):
    suffix = "." + target.lstrip(".~")
    return sorted({name for name, obj in domain.objects.items() if name.endswith(suffix) and not obj.aliased})


def _module_defining(domain, target):
    modules = [name for name, obj in domain.objects.items() if obj.objtype == "module"]
    owners = []
    for module in modules:
        mod = sys.modules.get(module) or importlib.import_module(module)
        if target in vars(mod) and not isinstance(vars(mod)[target], type(sys)):
            value = vars(mod)[target]
            defined_here = getattr(value, "__module__", module) == module
            if defined_here:
                owners.append(module)
    return owners


def resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"].lstrip(".~")
    names = _candidates(domain, target)
    if len(names) == 1:
        obj = domain.objects[names[0]]
        return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, names[0])
    if not names and "." not in target:
        owners = _module_defining(domain, target)
        if len(owners) == 1:
            obj = domain.objects[owners[0]]
            return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, owners[0])
    return None


def skip_inherited_library_members(app, what, name, obj, skip, options):
    """Leave out members a class inherits from scikit-learn (``set_fit_request`` and friends: their docstrings refer
    to scikit-learn's own pages)."""
    module = getattr(obj, "__module__", "") or ""
    qualname = getattr(obj, "__qualname__", "") or ""
    if module.startswith("sklearn") or "RequestMethod" in qualname:
        return True
    return None


def setup(app):
    app.connect("missing-reference", resolve)
    app.connect("autodoc-skip-member", skip_inherited_library_members)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
