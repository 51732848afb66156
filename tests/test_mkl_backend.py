"""The ridge's numpy backend on MKL: the same products, eigendecompositions and fits as on numpy's OpenBLAS."""

import warnings

import numpy as np
import pytest

from encoding_kit.encoding import mkl_backend
from encoding_kit.encoding.estimators import GappedRidgeCV
from encoding_kit.encoding.ridge import himalaya_backend, select_backend

needs_mkl = pytest.mark.skipif(not mkl_backend.torch_has_mkl(), reason="PyTorch without MKL here")


@needs_mkl
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_products_equal_numpys_for_plain_and_transposed_arrays(dtype, tol):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((37, 53)).astype(dtype), rng.standard_normal((53, 29)).astype(dtype)
    for left, right in [(a, b), (b.T.copy(), a.T.copy()), (a.T.copy().T, b), (a, b[:, ::2]), (a[::2], b)]:
        out = mkl_backend.matmul(left, right)
        assert out.dtype == dtype and out.shape == (left.shape[0], right.shape[1])
        np.testing.assert_allclose(out, left @ right, rtol=tol, atol=tol * 10)


def test_what_mkl_cannot_read_in_place_goes_to_numpy_without_a_warning():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 4))
    frozen = a.copy()
    frozen.flags.writeable = False
    cases = [(a, rng.standard_normal(4)), (a.astype(np.int64), np.ones((4, 3), np.int64)),
             (frozen, np.ones((4, 2))), (a[::-1], np.ones((4, 2))), (a, np.ones((4, 2), np.float32)),
             (np.ones((2, 6, 4)), np.ones((4, 3))), (np.ones((0, 4)), np.ones((4, 3)))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for left, right in cases:
            np.testing.assert_allclose(mkl_backend.matmul(left, right), np.matmul(left, right))


@needs_mkl
def test_eigh_gives_ascending_eigenvalues_and_a_basis_that_rebuilds_the_matrix():
    X = np.random.default_rng(2).standard_normal((200, 40))
    G = X.T @ X
    w, V = mkl_backend.eigh(G)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(G), rtol=1e-10)
    assert np.all(np.diff(w) >= 0)
    np.testing.assert_allclose(V @ np.diag(w) @ V.T, G, atol=1e-8 * np.abs(G).max())
    np.testing.assert_allclose(V.T @ V, np.eye(40), atol=1e-10)


def test_the_choice_reads_the_variable_and_the_cpu(monkeypatch, tmp_path):
    assert mkl_backend.blas_choice({}) == "auto"
    with pytest.raises(ValueError, match="ENCODING_KIT_RIDGE_BLAS must be one of auto, mkl, numpy, found 'openblas'"):
        mkl_backend.blas_choice({"ENCODING_KIT_RIDGE_BLAS": "openblas"})
    assert not mkl_backend.mkl_preferred({"ENCODING_KIT_RIDGE_BLAS": "numpy"})
    intel, amd = tmp_path / "intel", tmp_path / "amd"
    intel.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n")
    amd.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\n")
    assert mkl_backend.intel_cpu(intel) and not mkl_backend.intel_cpu(amd)
    assert not mkl_backend.intel_cpu(tmp_path / "absent")
    monkeypatch.setattr(mkl_backend, "torch_has_mkl", lambda: True)
    monkeypatch.setattr(mkl_backend, "intel_cpu", lambda: False)
    assert not mkl_backend.mkl_preferred({}) and mkl_backend.mkl_preferred({"ENCODING_KIT_RIDGE_BLAS": "mkl"})
    monkeypatch.setattr(mkl_backend, "intel_cpu", lambda: True)
    assert mkl_backend.mkl_preferred({})
    monkeypatch.setattr(mkl_backend, "torch_has_mkl", lambda: False)
    assert not mkl_backend.mkl_preferred({"ENCODING_KIT_RIDGE_BLAS": "mkl"})  # nothing to force without MKL


@needs_mkl
def test_select_backend_gives_the_mkl_copy_which_himalaya_still_takes_for_numpy(monkeypatch):
    import himalaya.backend

    monkeypatch.setenv("ENCODING_KIT_RIDGE_BLAS", "mkl")
    backend = select_backend("numpy")
    assert backend.name == "numpy" and backend.kit_blas == "mkl" and backend.matmul is mkl_backend.matmul
    assert select_backend("numpy") is backend  # one copy per process
    with himalaya_backend(backend):
        assert himalaya.backend.get_backend().name == "numpy"
    monkeypatch.setenv("ENCODING_KIT_RIDGE_BLAS", "numpy")
    plain = select_backend("numpy")
    assert plain.__name__ == "himalaya.backend.numpy" and not hasattr(plain, "kit_blas")


@needs_mkl
def test_a_ridge_fit_on_mkl_chooses_the_same_alphas_and_predicts_the_same(monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 24)).astype(np.float32)
    Y = (X[:, :3] @ rng.standard_normal((3, 40)) + 2 * rng.standard_normal((300, 40))).astype(np.float32)
    fits = {}
    for blas in ("numpy", "mkl"):
        monkeypatch.setenv("ENCODING_KIT_RIDGE_BLAS", blas)
        model = GappedRidgeCV(cv=4).fit(X[:240], Y[:240])
        fits[blas] = (model.best_alphas_, model.predict(X[240:]))
    np.testing.assert_array_equal(fits["numpy"][0], fits["mkl"][0])
    np.testing.assert_allclose(fits["numpy"][1], fits["mkl"][1], rtol=1e-4, atol=1e-5)
