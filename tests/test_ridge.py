import numpy as np
import pytest

from encoding_kit.cv import inner_splits
from encoding_kit.ridge import RidgeFitter


def _problem(n=300, p=40, t=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)).astype(np.float32)
    W = rng.standard_normal((p, t)) * rng.uniform(0.05, 2, t)
    Y = (X @ W + rng.standard_normal((n, t)) * 3 * np.sqrt(p / 40)).astype(np.float32)
    return X[:250], Y[:250] - Y[:250].mean(0), X[250:], inner_splits(np.arange(250), 5, 4)


@pytest.mark.parametrize("score", ["r", "mse"])  # himalaya's correlation_score and l2_neg_loss
@pytest.mark.parametrize("p", [40, 400])  # narrower and wider than the training rows
def test_svd_solver_matches_himalaya(p, score):
    Xtr, Ytr, Xte, cv = _problem(p=p)
    pred_h, alpha_h = RidgeFitter(backend="numpy", solver="himalaya", score=score).fit_predict(Xtr, Ytr, Xte, cv)
    pred_s, alpha_s = RidgeFitter(backend="numpy", solver="svd", score=score).fit_predict(Xtr, Ytr, Xte, cv)
    same = np.isclose(alpha_h, alpha_s, rtol=1e-5)
    assert len(np.unique(alpha_s)) > 2  # the alphas really differ per target
    if score == "mse":
        assert same.mean() > 0.98  # float32 near-ties may differ
        np.testing.assert_allclose(pred_s[:, same], pred_h[:, same], rtol=1e-3, atol=1e-3 * np.abs(pred_h).max())
        return
    # correlations within 1e-6 count as tied here (the larger alpha wins); himalaya lets rounding decide
    assert same.mean() > 0.95
    np.testing.assert_allclose(pred_s[:, same], pred_h[:, same], rtol=1e-3, atol=1e-3 * np.abs(pred_h).max())
    tied = [np.corrcoef(pred_s[:, t], pred_h[:, t])[0, 1] for t in np.flatnonzero(~same)]
    assert np.min(tied, initial=1.0) > 0.9999  # where the alphas differ, the predictions correlate the same


def test_svd_solver_batches_and_torch_backend_agree():
    Xtr, Ytr, Xte, cv = _problem()
    pred, alphas = RidgeFitter(backend="numpy").fit_predict(Xtr, Ytr, Xte, cv)
    pred_b, alphas_b = RidgeFitter(backend="numpy", n_targets_batch=7).fit_predict(Xtr, Ytr, Xte, cv)
    np.testing.assert_array_equal(alphas, alphas_b)
    np.testing.assert_allclose(pred, pred_b, rtol=1e-4, atol=1e-5)
    pytest.importorskip("torch")
    pred_t, alphas_t = RidgeFitter(backend="torch").fit_predict(Xtr, Ytr, Xte, cv)
    same = np.isclose(alphas, alphas_t, rtol=1e-5)
    assert same.mean() > 0.98
    np.testing.assert_allclose(pred_t[:, same], pred[:, same], rtol=1e-3, atol=1e-3)


def test_unknown_solver_or_score_is_refused():
    with pytest.raises(ValueError, match="solver"):
        RidgeFitter(solver="lsqr")
    with pytest.raises(ValueError, match="score"):
        RidgeFitter(score="r2")


# more and fewer validation rows than the rank; one zero singular value, or six tiny ones (a banded-ridge
# space weighted down to nothing: a cluster of eigenvalues far below every alpha)
@pytest.mark.parametrize(("n_val", "n_tiny"), [(60, 1), (12, 1), (60, 6)])
def test_fraction_losses_equal_the_direct_losses(n_val, n_tiny):
    from himalaya.backend import set_backend

    from encoding_kit.ridge import spectral_basis
    from encoding_kit.ridge_losses import validation_losses, validation_losses_direct

    backend = set_backend("numpy")
    rng = np.random.default_rng(4)
    # training columns with chosen singular values: a repeated pair, a pair 1e-4 apart, a zero one
    Q, _ = np.linalg.qr(rng.standard_normal((200, 20)))
    sv = np.r_[np.geomspace(40, 0.5, 16), 7.0, 7.0, 3.0, 3.0003][rng.permutation(20)]
    sv[np.argsort(sv)[:n_tiny]] = np.r_[0.0, np.geomspace(1e-6, 1e-5, n_tiny - 1)]
    X = np.vstack([Q * sv, rng.standard_normal((n_val, 20))]).astype(np.float32)
    Y = (X @ rng.standard_normal((20, 40)) + 3 * rng.standard_normal((200 + n_val, 40))).astype(np.float32)
    lam, project, rows, _ = spectral_basis(X[:200], backend)
    A, B, Yval = rows(X[200:]), project(Y[:200]), Y[200:]
    alphas = np.logspace(-1, 8, 19).astype(np.float32)
    loss = validation_losses(A, B, Yval, lam, alphas, backend)
    # the reference in float64: predictions of every alpha, then squared error
    shrink = 1.0 / (alphas[:, None].astype(np.float64) + lam.astype(np.float64))
    exact = validation_losses_direct(A.astype(np.float64), B.astype(np.float64), Yval.astype(np.float64), shrink,
                                     backend)
    np.testing.assert_allclose(loss, exact, rtol=2e-6)
    np.testing.assert_array_equal(loss.argmin(0), exact.argmin(0))
    assert np.ptp(exact, axis=0).min() > 0  # the alphas really give different losses
    # score="r": minus the correlation of every alpha's validation predictions with the data
    pred = np.einsum("vk,ak,kt->avt", A.astype(np.float64), shrink, B.astype(np.float64))
    r = np.array([[np.corrcoef(p[:, t], Yval[:, t])[0, 1] for t in range(Yval.shape[1])] for p in pred])
    np.testing.assert_allclose(validation_losses(A, B, Yval, lam, alphas, backend, score="r"), -r, atol=1e-5)


def test_banded_solver_matches_himalaya_group_ridge():
    from encoding_kit.fusion import BandedRidgeFitter

    rng = np.random.default_rng(5)
    n, t = 300, 40
    X = rng.standard_normal((n, 25)).astype(np.float32)
    groups = np.repeat([0, 1], [10, 15])
    W = rng.standard_normal((25, t)) * np.where(groups[:, None] == 0, 1.0, rng.uniform(0, 0.3, t))
    Y = (X @ W + 3 * rng.standard_normal((n, t))).astype(np.float32)
    Xtr, Ytr, Xte = X[:250], Y[:250] - Y[:250].mean(0), X[250:]
    cv = inner_splits(np.arange(250), 5, 4)
    kit = BandedRidgeFitter(groups, n_iter=8, backend="numpy")
    ref = BandedRidgeFitter(groups, n_iter=8, backend="numpy", solver="himalaya")
    pred_k, _ = kit.fit_predict(Xtr, Ytr, Xte, cv)
    pred_h, _ = ref.fit_predict(Xtr, Ytr, Xte, cv)
    same = np.isclose(kit.deltas_, ref.deltas_, rtol=1e-4).all(0)
    assert same.mean() > 0.9  # float32 near-ties between samples may differ
    np.testing.assert_allclose(pred_k[:, same], pred_h[:, same], rtol=1e-3, atol=1e-3 * np.abs(pred_h).max())
    assert (kit.deltas_[0] > kit.deltas_[1]).mean() > 0.8  # the informative space gets the weaker penalty
