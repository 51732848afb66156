"""Install a change on some modules of a model once, marked so that a second call leaves them as they are."""

from __future__ import annotations


def patch_modules(model, wanted, patch, mark):
    """Apply ``patch`` to every module of ``model`` that ``wanted`` accepts, unless it carries ``mark`` already.

    Parameters
    ----------
    model : torch.nn.Module
    wanted : callable (module) -> bool
    patch : callable (module) -> None
        Changes the module in place (a hook, a forward of its own).
    mark : str
        Attribute set to True on a patched module.

    Returns
    -------
    int
        The number of modules ``wanted`` accepts (patched now or before).
    """
    count = 0
    for module in model.modules():
        if not wanted(module):
            continue
        if not getattr(module, mark, False):
            patch(module)
            setattr(module, mark, True)
        count += 1
    return count
