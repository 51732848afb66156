import numpy as np
import pytest

from encoding_kit.encoding.cv import inner_splits
from encoding_kit.encoding.estimators import GappedRidgeCV
from encoding_kit.encoding.ridge import DEFAULT_ALPHAS, R_TIE, cv_losses


def ridge_fit_predict(X_train, Y_train, X_test, cv, backend="numpy", solver="svd", **solver_params):
    """The kit's ridge on centred rows with given inner splits: (predictions, alphas)."""
    model = GappedRidgeCV(cv=cv, fit_intercept=False, backend=backend, solver=solver,
                          solver_params=solver_params).fit(X_train, Y_train)
    return model.predict(X_test), model.best_alphas_


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
    pred_h, alpha_h = ridge_fit_predict(Xtr, Ytr, Xte, cv, solver="himalaya", scoring=score)
    pred_s, alpha_s = ridge_fit_predict(Xtr, Ytr, Xte, cv, solver="svd", scoring=score)
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
    pred, alphas = ridge_fit_predict(Xtr, Ytr, Xte, cv)
    pred_b, alphas_b = ridge_fit_predict(Xtr, Ytr, Xte, cv, n_targets_batch=7)
    np.testing.assert_array_equal(alphas, alphas_b)
    np.testing.assert_allclose(pred, pred_b, rtol=1e-4, atol=1e-5)
    pytest.importorskip("torch")
    pred_t, alphas_t = ridge_fit_predict(Xtr, Ytr, Xte, cv, backend="torch")
    same = np.isclose(alphas, alphas_t, rtol=1e-5)
    assert same.mean() > 0.98
    np.testing.assert_allclose(pred_t[:, same], pred[:, same], rtol=1e-3, atol=1e-3)


def test_unknown_solver_or_score_is_refused():
    Xtr, Ytr, Xte, cv = _problem()
    with pytest.raises(ValueError, match="solver"):
        ridge_fit_predict(Xtr, Ytr, Xte, cv, solver="lsqr")
    with pytest.raises(ValueError, match="scoring"):
        ridge_fit_predict(Xtr, Ytr, Xte, cv, scoring="r2")


# more and fewer validation rows than the rank; one zero singular value, or six tiny ones (a banded-ridge
# space weighted down to nothing: a cluster of eigenvalues far below every alpha)
@pytest.mark.parametrize(("n_val", "n_tiny"), [(60, 1), (12, 1), (60, 6)])
def test_fraction_losses_equal_the_direct_losses(n_val, n_tiny):
    from himalaya.backend import set_backend

    from encoding_kit.encoding.ridge import spectral_basis
    from encoding_kit.encoding.ridge_losses import validation_losses, validation_losses_direct

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
    from encoding_kit.encoding.fusion import BandedRidgeFitter

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


def _brute_cv_loss(X, Y, alphas, splits):
    """Mean over splits of the validation MSE of every alpha, by np.linalg.solve in float64: (n_alphas, n_targets)."""
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    loss = np.zeros((len(splits), len(alphas), Y.shape[1]))
    for s, (train, val) in enumerate(splits):
        gram, xty = X[train].T @ X[train], X[train].T @ Y[train]
        for a, alpha in enumerate(np.asarray(alphas, np.float64)):
            weights = np.linalg.solve(gram + alpha * np.eye(len(gram)), xty)
            loss[s, a] = ((X[val] @ weights - Y[val]) ** 2).mean(0)
    return loss.mean(0)


def _spread_problem(kind, p, noise, n=300, t=60, seed=1):
    """Columns scaled 1e-4..1e4 ("scaled") or singular values 1e-4..1e4 in random directions ("rotated").

    Either way the eigenvalues of X'X span 16 orders of magnitude. The targets
    depend on the standardised columns, so every scale carries signal.
    """
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, p))
    if kind == "scaled":
        X = Z * np.logspace(-4, 4, p)[rng.permutation(p)]
    else:
        U, _ = np.linalg.qr(Z)
        R, _ = np.linalg.qr(rng.standard_normal((p, p)))
        X = U * np.logspace(4, -4, p) * np.sqrt(n) @ R.T
    Y = (X / X.std(0)) @ (rng.standard_normal((p, t)) * rng.uniform(0.05, 2, t))
    Y = Y / Y.std(0) + noise * rng.standard_normal((n, t))
    Ytr = Y[:250] - Y[:250].mean(0)
    return X[:250].astype(np.float32), Ytr.astype(np.float32), X[250:].astype(np.float32), inner_splits(
        np.arange(250), 5, 4)


# 200 columns: wider than the inner training sets (the kernel form); 40 rotated columns: the X'X form
@pytest.mark.parametrize(("kind", "p", "noise"), [("scaled", 200, 0.1), ("rotated", 40, 1e-3)])
def test_alphas_are_exact_under_an_eigenvalue_spread_of_1e16(kind, p, noise):
    Xtr, Ytr, Xte, cv = _spread_problem(kind, p, noise)
    sv = np.linalg.svd(Xtr.astype(np.float64), compute_uv=False)  # eigenvalues of X'X: sv^2
    assert (sv.max() / sv.min()) ** 2 > 1e15
    alphas = DEFAULT_ALPHAS.astype(np.float32)
    _, chosen = ridge_fit_predict(Xtr, Ytr, Xte, cv)
    brute = _brute_cv_loss(Xtr, Ytr, alphas, cv)
    idx = np.abs(np.log(chosen)[None, :] - np.log(alphas)[:, None]).argmin(0)
    excess = brute[idx, np.arange(Ytr.shape[1])] / brute.min(0) - 1
    assert excess.max() < 1e-6, f"{np.mean(excess > 1e-6):.0%} of targets, up to {excess.max():.1%} above the best"
    assert len(np.unique(idx)) > 2  # the alphas really differ per target


def test_float32_path_kept_for_well_conditioned_features():
    from himalaya.backend import set_backend

    from encoding_kit.encoding.ridge import gram_eigh

    backend = set_backend("numpy")
    Xtr, *_ = _problem()
    alphas = np.logspace(-1, 8, 19).astype(np.float32)
    assert gram_eigh(Xtr, backend, alphas)[0].dtype == np.float32
    assert gram_eigh(Xtr * np.logspace(-4, 4, Xtr.shape[1]).astype(np.float32), backend, alphas)[0].dtype == np.float64


def test_banded_ridge_is_exact_with_spaces_weighted_1e_minus_4_to_1e4():
    from himalaya.kernel_ridge import generate_dirichlet_samples

    from encoding_kit.encoding.fusion import BandedRidgeFitter

    rng = np.random.default_rng(6)
    n, t, width, weights = 300, 40, 45, [1e-4, 1e-2, 1.0, 1e2, 1e4]
    groups = np.repeat(np.arange(len(weights)), width)  # 225 columns: wider than the inner training sets
    Z = rng.standard_normal((n, len(groups)))
    Y = Z @ (rng.standard_normal((len(groups), t)) * rng.uniform(0, 1, (len(weights), t))[groups])
    Y = Y / Y.std(0) + 0.3 * rng.standard_normal((n, t))
    X = (Z * np.asarray(weights)[groups]).astype(np.float32)
    Xtr, Ytr, Xte = X[:250], (Y[:250] - Y[:250].mean(0)).astype(np.float32), X[250:]
    cv = inner_splits(np.arange(250), 5, 4)
    fitter = BandedRidgeFitter(groups, n_iter=6, backend="numpy")
    fitter.fit_predict(Xtr, Ytr, Xte, cv)
    # the kit's candidates: the same Dirichlet samples of space weights, every alpha, brute force in float64
    gammas = generate_dirichlet_samples(n_samples=6, n_kernels=len(weights), concentration=[0.1, 1.0],
                                        random_state=0)
    gammas = np.asarray(gammas, np.float64)
    gammas[0] = 1.0 / len(weights)
    brute = np.stack([_brute_cv_loss(Xtr * np.sqrt(g[groups]), Ytr, fitter.alphas, cv) for g in gammas])
    # the kit's choice per target: gamma / alpha = exp(deltas), with gamma on the simplex
    ratio = np.exp(fitter.deltas_)  # (n_spaces, n_targets)
    alpha = 1.0 / ratio.sum(0)
    g_idx = np.abs((ratio * alpha)[None] - gammas[:, :, None]).sum(1).argmin(0)
    a_idx = np.abs(np.log(alpha)[None] - np.log(fitter.alphas)[:, None]).argmin(0)
    chosen = brute[g_idx, a_idx, np.arange(t)]
    excess = chosen / brute.min((0, 1)) - 1
    assert excess.max() < 1e-6, f"{np.mean(excess > 1e-6):.0%} of targets, up to {excess.max():.1%} above the best"
    assert len(np.unique(g_idx)) > 1


def _brute_force_losses(X, Y, alphas, splits):
    """Mean squared validation error of every split, alpha and target from float64 solves (the reference)."""
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    loss = np.zeros((len(splits), len(alphas), Y.shape[1]))
    for s, (train, val) in enumerate(splits):
        gram, XtY = X[train].T @ X[train], X[train].T @ Y[train]
        for a, alpha in enumerate(alphas):
            W = np.linalg.solve(gram + alpha * np.eye(X.shape[1]), XtY)
            loss[s, a] = ((Y[val] - X[val] @ W) ** 2).mean(0)
    return loss


def _with_rows_in_no_block(n):
    """Gapped splits of the middle rows only: the first and last 20 rows train every split and validate none."""
    return [(np.r_[np.arange(20), 20 + tr, n - 20 + np.arange(20)], 20 + va)
            for tr, va in inner_splits(np.arange(n - 40), 5, 4)]


def _overlapping_blocks(n):
    """Validation blocks of 80 rows that overlap their neighbours by 30 rows."""
    return [(np.setdiff1d(np.arange(n), np.arange(start, start + 80)), np.arange(start, start + 80))
            for start in range(0, n - 79, 50)]


# the shortcuts of ridge_spectral.SplitProducts (X'X and X'Y of all rows, each split's training part by
# subtraction, X'Y as the sum of the validation blocks) must give the losses of solving each split afresh
# chunk=7: the CPU path scores each split in chunks of targets (ridge.SCORING_CHUNK); 60 targets are 9 chunks, the
# last one short
@pytest.mark.parametrize("chunk", [None, 7])
@pytest.mark.parametrize("make_splits", [lambda n: inner_splits(np.arange(n), 5, 4), _with_rows_in_no_block,
                                         _overlapping_blocks])
def test_losses_and_refit_equal_a_fresh_solve_of_every_split(make_splits, chunk, monkeypatch):
    from himalaya.backend import numpy as backend

    from encoding_kit.encoding import ridge
    from encoding_kit.encoding.ridge import solve_ridge_cv_lowrank

    if chunk:
        monkeypatch.setattr(ridge, "SCORING_CHUNK", chunk)
    X, Y, _, _ = _problem(p=40, t=60)
    splits = make_splits(len(X))
    alphas = DEFAULT_ALPHAS.astype(np.float32)
    reference = _brute_force_losses(X, Y, alphas, splits)
    loss = cv_losses(X, Y, alphas, splits, backend)
    np.testing.assert_allclose(loss, reference, rtol=1e-4)
    best, coefs = solve_ridge_cv_lowrank(X, Y, alphas, splits, backend)
    np.testing.assert_array_equal(best, alphas[reference.mean(0).argmin(0)])
    X64 = X.astype(np.float64)
    for t in range(0, Y.shape[1], 7):
        w = np.linalg.solve(X64.T @ X64 + best[t] * np.eye(X.shape[1]), X64.T @ Y[:, t])
        np.testing.assert_allclose(coefs[:, t], w, rtol=1e-3, atol=1e-5 * np.abs(w).max())


@pytest.mark.parametrize("p", [40, 400])  # the X'X form and the kernel form
def test_scoring_in_chunks_of_targets_changes_no_loss(p, monkeypatch):
    from himalaya.backend import numpy as backend

    from encoding_kit.encoding import ridge

    X, Y, _, cv = _problem(p=p, t=60)
    alphas = DEFAULT_ALPHAS.astype(np.float32)
    for score in ("mse", "r"):
        whole = cv_losses(X, Y, alphas, cv, backend, score=score)
        monkeypatch.setattr(ridge, "SCORING_CHUNK", 7)
        chunked = cv_losses(X, Y, alphas, cv, backend, score=score)
        monkeypatch.undo()
        # the same sums; float32 products of another width round differently (a few 1e-6 of a loss; correlations
        # near 0 to within ridge.R_TIE, the gap below which two alphas count as tied)
        np.testing.assert_allclose(chunked, whole, rtol=2e-5, atol=ridge.R_TIE if score == "r" else 0)
        np.testing.assert_array_equal(chunked.mean(0).argmin(0), whole.mean(0).argmin(0))


# banded ridge scores every sample of space weights from the products of the unscaled columns (cv_losses' scale):
# the losses must be those of the scaled columns themselves, in float32 and where the weights force float64
@pytest.mark.parametrize("spread", [1.0, 30.0])  # weights 1/30 and 30: a Gram condition of ~1e6, float64
@pytest.mark.parametrize("p", [40, 400])  # the X'X form (shared products) and the kernel form
def test_losses_of_scaled_columns_from_the_unscaled_products(p, spread):
    from himalaya.backend import numpy as backend

    from encoding_kit.encoding.ridge import SplitProducts, gram_eigh

    X, Y, _, cv = _problem(p=p, t=30)
    alphas = DEFAULT_ALPHAS.astype(np.float32)
    scale = np.where(np.arange(p) < p // 3, 1 / spread, spread * np.sqrt(0.7)).astype(np.float32)
    if p < 200:
        assert gram_eigh(X * scale, backend, alphas)[0].dtype == (np.float64 if spread > 1 else np.float32)
    products = SplitProducts(X, Y, cv, backend) if p < 200 else None
    shared = cv_losses(X, Y, alphas, cv, backend, products=products, scale=scale)
    reference = _brute_force_losses(X * scale, Y, alphas, cv)  # float64 solves of the scaled columns
    np.testing.assert_allclose(shared, reference, rtol=1e-4)
    np.testing.assert_array_equal(shared.mean(0).argmin(0), reference.mean(0).argmin(0))
    # score="r": as scoring the scaled columns directly (float32 rounding of correlations, well below R_TIE)
    direct = cv_losses(X * scale, Y, alphas, cv, backend, score="r")
    np.testing.assert_allclose(cv_losses(X, Y, alphas, cv, backend, score="r", products=products, scale=scale),
                               direct, rtol=0, atol=R_TIE)
