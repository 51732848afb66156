"""The pipeline engine gives the numbers of the loop it replaced (to 1e-6) on the small demo.

``legacy_*`` below is the fold loop as it was written before the engine became
a scikit-learn pipeline (``encoding._cross_validate``/``fold_features`` and
``decoding.evaluate_decoding``), kept here verbatim in substance: scaler and
PCA fitted on the training TRs, delays, the kit's fitters called directly.
"""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from encoding_kit.analysis.stats import columnwise_r, fisher_mean
from encoding_kit.data.course_files import load_fmri
from encoding_kit.decoding.linear import decoding_scores, evaluate_decoding, fold_targets
from encoding_kit.demo.generate import load_truth
from encoding_kit.encoding.cv import gapped_splits, inner_splits, make_delays, trimmed_indices
from encoding_kit.encoding.estimators import GappedRidgeCV
from encoding_kit.encoding.evaluate import evaluate_encoding, stack_targets
from encoding_kit.encoding.fusion import BandedRidgeFitter, concat_spaces, evaluate_fusion

TOL = dict(rtol=0, atol=1e-6)


class LegacyRidge:
    """The kit's ridge as the legacy loop called it: ``fit_predict`` on centred rows with given inner splits."""

    def fit_predict(self, X_train, Y_train, X_test, cv):
        model = GappedRidgeCV(cv=cv, fit_intercept=False, backend="numpy").fit(X_train, Y_train)
        return model.predict(X_test), model.best_alphas_


def legacy_fold_features(X, train, delays, pca=None, space_groups=None):
    scaler = StandardScaler().fit(X[train])
    Z = scaler.transform(X)
    if space_groups is not None:
        blocks = []
        for g in range(int(space_groups.max()) + 1):
            block = Z[:, space_groups == g]
            if pca and block.shape[1] > pca:
                block = PCA(n_components=pca, random_state=0).fit(block[train]).transform(block)
            blocks.append(block / np.sqrt(block.shape[1]))
        return make_delays(np.concatenate(blocks, axis=1).astype(np.float32), delays)
    if pca and pca < min(len(train), X.shape[1]):
        Z = PCA(n_components=min(pca, len(train), X.shape[1]), random_state=0).fit(Z[train]).transform(Z)
    return make_delays(Z.astype(np.float32), delays)


def legacy_encoding(X, fmri, fitter, delays=(1, 2, 3, 4), pca=None, space_groups=None, group=False):
    """r (n_targets,), alphas (n_folds, n_targets) and held-out predictions (n_kept, n_targets)."""
    Y, subjects, n_rois = stack_targets(fmri)
    X = np.asarray(X, np.float32)
    gap, keep = max(delays), trimmed_indices(len(Y), (10, 10))
    Y_fit = Y.reshape(len(Y), len(subjects), n_rois).mean(1) if group else Y
    r_folds, alphas, predictions = [], [], np.zeros_like(Y[keep])
    for train, test in gapped_splits(keep, 5, gap):
        Xd = legacy_fold_features(X, train, delays, pca, space_groups)
        Y_train = Y_fit[train]
        y_mean = Y_train.mean(0)
        Y_train -= y_mean
        pred, fold_alphas = fitter.fit_predict(Xd[train], Y_train, Xd[test], inner_splits(train, 5, gap))
        if group:
            pred, fold_alphas = np.tile(pred, len(subjects)), np.tile(fold_alphas, len(subjects))
            y_mean = Y[train].mean(0)
        pred = pred + y_mean
        r_folds.append(columnwise_r(pred, Y[test]))
        alphas.append(fold_alphas)
        predictions[np.searchsorted(keep, test)] = pred
    return fisher_mean(np.array(r_folds), axis=0), np.array(alphas), predictions


@pytest.fixture(scope="module")
def demo(small_demo):
    fmri = load_fmri(data_dir=small_demo)
    drivers = load_truth(small_demo)["drivers"]
    X = np.concatenate([drivers, np.random.default_rng(0).standard_normal((len(drivers), 30))], 1)
    return X.astype(np.float32), fmri


@pytest.mark.parametrize("setting", [dict(), dict(pca=8), dict(train_on="group"), dict(delays=(0, 2))])
def test_encoding_equals_the_legacy_loop(demo, setting):
    X, fmri = demo
    res = evaluate_encoding(X, fmri, return_predictions=True, progress=False, cache=False,
                                  fitter=GappedRidgeCV(backend="numpy"), **setting)
    r, alphas, pred = legacy_encoding(X, fmri, LegacyRidge(), setting.get("delays", (1, 2, 3, 4)),
                                      setting.get("pca"), group=setting.get("train_on") == "group")
    np.testing.assert_allclose(res.r.ravel(), r, **TOL)
    np.testing.assert_array_equal(res.alphas.reshape(alphas.shape), alphas)
    np.testing.assert_allclose(res.predictions.reshape(pred.shape), pred, **TOL)


@pytest.mark.parametrize("method", ["banded", "concat"])
def test_fusion_equals_the_legacy_loop(demo, method):
    X, fmri = demo
    spaces = {"drivers": X[:, :-30], "noise": X[:, -30:]}
    res = evaluate_fusion(spaces, fmri, method=method, n_iter=4, pca=5, backend="numpy", progress=False, cache=False)
    Xc, groups = concat_spaces(spaces)
    widths = [min(int(w), 5) for w in np.bincount(groups)]
    fitter = (BandedRidgeFitter(np.tile(np.repeat(np.arange(2), widths), 4), n_iter=4, backend="numpy")
              if method == "banded" else LegacyRidge())
    r, alphas, _ = legacy_encoding(Xc, fmri, fitter, pca=5, space_groups=groups)
    np.testing.assert_allclose(res.r.ravel(), r, **TOL)
    np.testing.assert_allclose(res.alphas.reshape(alphas.shape), alphas, rtol=1e-6)


def test_decoding_equals_the_legacy_loop(demo):
    X, fmri = demo
    table = evaluate_decoding(X, fmri, n_components=5, progress=False, cache=False)
    fitter, delays, rows = LegacyRidge(), (1, 2, 3, 4), []
    for k, (train, test) in enumerate(gapped_splits(trimmed_indices(len(X), (10, 10)), 5, 4)):
        targets = fold_targets(X, train, 5)
        for subject, brain in fmri.items():
            predictors = make_delays(StandardScaler().fit(brain[train]).transform(brain), [-d for d in delays])
            mean = targets[train].mean(0)
            pred, _ = fitter.fit_predict(predictors[train].astype(np.float32),
                                         (targets[train] - mean).astype(np.float32),
                                         predictors[test].astype(np.float32), inner_splits(train, 5, 4))
            rows.append({"subject": subject, "fold": k, **decoding_scores(pred + mean, targets[test], 10)})
    assert table["subject"].tolist() == [row["subject"] for row in rows]
    for column in ("r", "top1", "top10", "n_segments"):
        np.testing.assert_allclose(table[column], [row[column] for row in rows], **TOL)
