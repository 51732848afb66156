"""Encoding engine: delays, leak-free folds, per-target alphas, recovery, bad input."""

import numpy as np
import pytest

from encoding_kit.analysis.stats import noise_ceiling
from encoding_kit.encoding.cv import GappedKFold, gapped_splits, inner_splits, make_delays
from encoding_kit.encoding.estimators import GappedRidgeCV
from encoding_kit.encoding.evaluate import evaluate_encoding, fold_features
from encoding_kit.encoding.results import EncodingResult

RNG = np.random.default_rng(0)


def synthetic(n_trs=500, n_features=6, n_subjects=2, n_rois=3, noise=1.0, lag=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_trs, n_features))
    W = rng.standard_normal((n_features, n_rois))
    shifted = np.zeros_like(X)
    shifted[lag:] = X[:-lag]
    signal = shifted @ W
    fmri = {s: (signal + noise * rng.standard_normal(signal.shape)).astype(np.float32) for s in range(1, n_subjects + 1)}
    return X, fmri, signal


def ridge_fit_predict(X_train, Y_train, X_test, cv, **params):
    """The kit's ridge on centred rows with given inner splits: (predictions, alphas)."""
    model = GappedRidgeCV(cv=cv, fit_intercept=False, backend="numpy", **params).fit(X_train, Y_train)
    return model.predict(X_test), model.best_alphas_


def test_make_delays_on_a_hand_made_array():
    X = np.array([[1, 10], [2, 20], [3, 30], [4, 40]])
    out = make_delays(X, (1, 2))
    assert out.tolist() == [[0, 0, 0, 0], [1, 10, 0, 0], [2, 20, 1, 10], [3, 30, 2, 20]]
    assert make_delays(X[:, 0], (0, -1)).tolist() == [[1, 2], [2, 3], [3, 4], [4, 0]]
    with pytest.raises(ValueError, match="only 4 TRs"):
        make_delays(X, (1, 4))


def test_gapped_splits_never_put_test_or_gap_trs_in_training():
    idx = np.arange(10, 290)
    for train, test in gapped_splits(idx, 5, gap=4):
        distance = np.abs(train[:, None] - test[None, :]).min()
        assert distance > 4
        assert np.all(np.diff(test) == 1)
    tests = np.concatenate([t for _, t in gapped_splits(idx, 5, 4)])
    assert np.array_equal(tests, idx)  # every TR is tested exactly once


def test_inner_splits_keep_the_gap_in_time_across_the_outer_hole():
    train = np.r_[0:100, 130:300]  # an outer test block + gaps removed 100..129
    for fit_pos, val_pos in inner_splits(train, 5, gap=4):
        fit, val = train[fit_pos], train[val_pos]
        assert np.abs(fit[:, None] - val[None, :]).min() > 4


def test_scaler_and_pca_see_only_training_trs():
    X = RNG.standard_normal((200, 5))
    train = np.arange(100)
    X_spiked = X.copy()
    X_spiked[150:] *= 1000  # test rows: if they entered the fit, train rows would change
    for pca in (None, 3):
        a = fold_features(X, train, (1,), pca)
        b = fold_features(X_spiked, train, (1,), pca)
        np.testing.assert_allclose(a[1:101], b[1:101], rtol=1e-5, atol=1e-5)


class SpyFitter:
    """Records what the engine hands to the model."""

    def __init__(self):
        self.calls = []

    def fit_predict(self, X_train, Y_train, X_test, cv):
        self.calls.append((X_train, Y_train, X_test, cv))
        return np.zeros((len(X_test), Y_train.shape[1])), np.ones(Y_train.shape[1])


def test_engine_hands_the_model_only_gapped_training_rows():
    X, fmri, _ = synthetic(n_trs=300)
    spy = SpyFitter()
    res = evaluate_encoding(X, fmri, fitter=spy, progress=False)
    keep = np.arange(10, 290)
    for (X_train, Y_train, X_test, cv), (train, test) in zip(spy.calls, gapped_splits(keep, 5, 4)):
        Y = np.concatenate(list(fmri.values()), 1)
        np.testing.assert_allclose(Y_train, Y[train] - Y[train].mean(0), atol=1e-5)
        assert len(X_test) == len(test) and len(X_train) == len(train)
        assert len(cv) == 5
    assert np.isnan(res.r).all()  # constant predictions have no correlation


@pytest.mark.parametrize("pca", [None, 3])
def test_engine_fits_scaler_and_pca_without_the_test_trs(pca):
    # the engine's own call of the fold helper: spiking the test TRs of one fold must not change the training
    # features the model gets in that fold (the gap of 4 TRs keeps the delays 1..4 out of the test block)
    X, fmri, _ = synthetic(n_trs=300)
    folds = gapped_splits(np.arange(10, 290), 5, 4)
    for k in (0, 2, 4):
        spiked = X.copy()
        spiked[folds[k][1]] = spiked[folds[k][1]] * 1000 + 50
        seen = []
        for features in (X, spiked):
            spy = SpyFitter()
            evaluate_encoding(features, fmri, fitter=spy, pca=pca, progress=False, cache=False)
            seen.append(spy.calls[k][0])
        np.testing.assert_allclose(seen[1], seen[0], rtol=1e-5, atol=1e-5)


def test_reported_r_is_the_fisher_z_mean_of_the_folds():
    # noise that grows over the story: every outer fold gets a different r
    X, _, signal = synthetic(n_trs=500, n_rois=3)
    noise = np.random.default_rng(7).standard_normal(signal.shape) * np.linspace(0.2, 3.0, len(signal))[:, None]
    fmri = {1: (signal + noise).astype(np.float32)}
    res = evaluate_encoding(X, fmri, return_predictions=True, progress=False, cache=False)
    pred, data = res.predictions[:, 0], fmri[1]
    fold_r = []
    for _, test in gapped_splits(res.test_trs, 5, 4):
        rows = np.searchsorted(res.test_trs, test)
        fold_r.append([np.corrcoef(pred[rows, j], data[test, j])[0, 1] for j in range(3)])
    fold_r = np.array(fold_r)  # (n_folds, n_rois), computed here from the held-out predictions
    assert np.ptp(fold_r, axis=0).min() > 0.1  # the folds really differ: any other summary would show
    np.testing.assert_allclose(res.r_folds[:, 0], fold_r, atol=1e-5)
    np.testing.assert_allclose(res.r[0], np.tanh(np.arctanh(fold_r).mean(0)), atol=1e-5)
    assert np.all(np.abs(res.r[0] - fold_r.mean(0)) > 1e-4)  # not the plain mean either


def test_group_training_fits_the_subject_mean_of_training_rows_and_denoises():
    X, fmri, signal = synthetic(n_trs=300, n_subjects=3)
    spy = SpyFitter()
    evaluate_encoding(X, fmri, fitter=spy, progress=False, train_on="group")
    group = np.mean(list(fmri.values()), axis=0)
    for (_, Y_train, _, _), (train, _) in zip(spy.calls, gapped_splits(np.arange(10, 290), 5, 4)):
        np.testing.assert_allclose(Y_train, group[train] - group[train].mean(0), atol=1e-5)
    # a weak response shared by 12 subjects: one fit to their mean predicts each subject better
    X, fmri, signal = synthetic(n_trs=500, n_features=30, n_subjects=12, noise=12.0, seed=4)
    own = evaluate_encoding(X, fmri, progress=False, cache=False)
    shared = evaluate_encoding(X, fmri, progress=False, cache=False, train_on="group")
    assert shared.r.shape == own.r.shape and shared.params["train_on"] == "group"
    assert np.mean(shared.r) > np.mean(own.r) + 0.05
    np.testing.assert_array_equal(shared.alphas[:, 0], shared.alphas[:, 5])  # one alpha per ROI, repeated
    with pytest.raises(ValueError, match="train_on"):
        evaluate_encoding(X, fmri, progress=False, train_on="subjects")


def test_recovers_planted_weights():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((800, 4))
    W = np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 1.5], [-1.0, 0.5]])
    Y = X @ W + 0.1 * rng.standard_normal((800, 2))
    cv = inner_splits(np.arange(800), 5, 2)
    coefs, alphas = ridge_fit_predict(X.astype(np.float32), Y.astype(np.float32), np.eye(4, dtype=np.float32), cv)
    np.testing.assert_allclose(coefs, W, atol=0.05)
    assert alphas.shape == (2,)


def test_alpha_is_chosen_per_target():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((600, 40))
    w = rng.standard_normal(40)
    clean = X @ w
    Y = np.stack([clean + 0.1 * rng.standard_normal(600), clean + 30 * rng.standard_normal(600)], 1)
    cv = inner_splits(np.arange(600), 5, 2)
    _, alphas = ridge_fit_predict(X.astype(np.float32), Y.astype(np.float32), X[:5], cv)
    assert alphas[1] > 10 * alphas[0]


def test_evaluate_encoding_finds_signal_and_summarises():
    X, fmri, signal = synthetic(n_trs=600, noise=1.0)
    res = evaluate_encoding(X, fmri, progress=False)
    assert res.r.shape == (2, 3) and res.alphas.shape == (5, 2, 3) and res.r_folds.shape == (5, 2, 3)
    assert np.all(res.r > 0.6)
    summary = res.summary(noise_ceiling(fmri, res.test_trs))
    assert summary.loc[0, "scope"] == "all" and summary.loc[0, "mean_r"] == pytest.approx(np.mean(res.r), abs=1e-6)
    assert {"mean_norm_r", "std_norm_r", "mean_ceiling"} <= set(summary.columns)


def test_shuffled_time_features_give_near_zero_r():
    X, fmri, _ = synthetic(n_trs=600, noise=1.0)
    shuffled = X[np.random.default_rng(3).permutation(len(X))]
    res = evaluate_encoding(shuffled, fmri, progress=False)
    assert abs(np.mean(res.r)) < 0.08


def test_result_round_trips_through_files(tmp_path):
    X, fmri, _ = synthetic(n_trs=300)
    res = evaluate_encoding(X, fmri, progress=False, return_predictions=True)
    res.save(tmp_path, "demo")
    back = EncodingResult.load(tmp_path, "demo")
    np.testing.assert_array_equal(back.r, res.r)
    assert back.subjects == [1, 2] and back.params["delays"] == [1, 2, 3, 4]
    assert (tmp_path / "demo_rois.csv").read_text().startswith("subject,roi,name,group,r,r2,alpha")


def test_bad_inputs_are_named():
    X, fmri, _ = synthetic(n_trs=300)
    with pytest.raises(ValueError, match="X has 299 TRs but fmri has 300"):
        evaluate_encoding(X[:-1], fmri, progress=False)
    bad = X.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="1 NaN/inf values in 1 feature"):
        evaluate_encoding(bad, fmri, progress=False)
    with pytest.raises(ValueError, match="too few"):
        evaluate_encoding(X[:60], {1: fmri[1][:60]}, cv=5, progress=False)
    with pytest.raises(ValueError, match="reach"):
        evaluate_encoding(X[:30], {1: fmri[1][:30]}, delays=range(1, 40), progress=False)


def test_constant_features_warn_and_constant_rois_are_nan_and_excluded():
    X, fmri, _ = synthetic(n_trs=400)
    X = np.c_[X, np.ones(len(X))]
    fmri = {s: np.c_[y, np.zeros(len(y))] for s, y in fmri.items()}
    with pytest.warns(UserWarning, match="1 constant feature columns"):
        res = evaluate_encoding(X, fmri, progress=False)
    assert np.isnan(res.r[:, -1]).all() and np.isfinite(res.r[:, :-1]).all()
    assert np.isfinite(res.mean_r()[0])


def test_results_are_cached_by_content(tmp_path, monkeypatch):
    from encoding_kit.encoding import evaluate as encoding

    monkeypatch.setenv("KIT_FEATURE_DIR", str(tmp_path))
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 5)).astype(np.float32)
    Y = {"a": (X[:, :1] + rng.standard_normal((200, 4))).astype(np.float32)}
    kw = dict(cv=GappedKFold(3, 4, (2, 2)), progress=False)
    first = evaluate_encoding(X, Y, **kw)
    assert len(list(tmp_path.glob("encoding-*/result.npz"))) == 1

    class Fitted(Exception):
        pass

    def refuse(*args, **kwargs):
        raise Fitted

    monkeypatch.setattr(encoding, "_cross_validate", refuse)
    again = evaluate_encoding(X, Y, **kw)  # served from the cache: no fitting, identical numbers
    np.testing.assert_array_equal(again.r, first.r)
    np.testing.assert_array_equal(again.alphas, first.alphas)
    changed = [dict(X=X + 1e-3), dict(fmri={"a": Y["a"] * 2}), dict(cv=GappedKFold(4, 4, (2, 2))),
               dict(cv=GappedKFold(3, 5, (2, 2))), dict(fitter=GappedRidgeCV(alphas=[1.0, 10.0])),
               dict(delays=(1, 2)), dict(pca=2), dict(return_predictions=True), dict(cache=False)]
    for change in changed:  # any change of features, data or settings misses the cache; cache=False always fits
        args = {"X": X, "fmri": Y, **kw, **change}
        with pytest.raises(Fitted):
            evaluate_encoding(**args)


def test_seeded_network_results_and_attention_are_cached(tmp_path, monkeypatch):
    from encoding_kit.encoding import evaluate as encoding
    from encoding_kit.encoding.nonlinear import LagAttentionFitter

    monkeypatch.setenv("KIT_FEATURE_DIR", str(tmp_path))
    rng = np.random.default_rng(8)
    X = rng.standard_normal((300, 3)).astype(np.float32)
    fmri = {1: np.vstack([np.zeros((2, 3)), X[:-2]]) @ rng.standard_normal((3, 4)) + rng.standard_normal((300, 4))}
    kw = dict(cv=GappedKFold(3, 4, (2, 2)), progress=False)
    fresh = LagAttentionFitter(n_lags=4, hidden=8, max_epochs=20)
    first = evaluate_encoding(X, fmri, fitter=fresh, **kw)
    refit = LagAttentionFitter(n_lags=4, hidden=8, max_epochs=20)
    again_fit = evaluate_encoding(X, fmri, fitter=refit, cache=False, **kw)
    np.testing.assert_array_equal(again_fit.r, first.r)  # seeded training: the same numbers on this machine
    monkeypatch.setattr(encoding, "_cross_validate", lambda *a, **k: pytest.fail("a cached network was refitted"))
    cached = LagAttentionFitter(n_lags=4, hidden=8, max_epochs=20)
    hit = evaluate_encoding(X, fmri, fitter=cached, **kw)
    np.testing.assert_array_equal(hit.r, first.r)
    assert cached.epochs_ == fresh.epochs_ and len(cached.epochs_) == 3
    np.testing.assert_array_equal(cached.attention(), fresh.attention())  # the learned attention comes back too
    with pytest.raises(pytest.fail.Exception):  # another setting is another network: it trains
        evaluate_encoding(X, fmri, fitter=LagAttentionFitter(n_lags=4, hidden=8, max_epochs=21), **kw)
