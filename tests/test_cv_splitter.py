"""The fold scheme as one value: GappedKFold, and every consumer following the splitter it is handed."""

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import TimeSeriesSplit, check_cv, cross_val_score

from encoding_kit.analysis.roi_analysis import story_ceiling
from encoding_kit.analysis.stats import circular_shift_pvalues, fdr_bh, noise_ceiling, prediction_significance
from encoding_kit.decoding.linear import evaluate_decoding
from encoding_kit.demo.generate import truth_fold_ceiling
from encoding_kit.encoding.cv import (
    DEFAULT_TRIM,
    GappedKFold,
    check_splitter,
    gapped_splits,
    held_out_blocks,
    splitter_from_params,
    trimmed_indices,
)
from encoding_kit.encoding.estimators import GappedRidgeCV
from encoding_kit.encoding.evaluate import evaluate_encoding
from encoding_kit.encoding.results import EncodingResult
from encoding_kit.encoding.scores import columnwise_r, fisher_mean


def shared_response(n_trs=360, n_subjects=4, n_rois=6, seed=0):
    """Smooth features, a response shared by every subject (2 TRs later) plus each subject's noise."""
    rng = np.random.default_rng(seed)
    X = np.cumsum(rng.standard_normal((n_trs, 5)), 0) * 0.2 + rng.standard_normal((n_trs, 5))
    signal = np.zeros((n_trs, n_rois))
    signal[2:] = (X @ rng.standard_normal((5, n_rois)))[:-2]
    signal /= signal.std(0)
    noise = 1.5 * np.linspace(0.3, 2.0, n_trs)[:, None]  # the noise grows: every block scores differently
    fmri = {s: (signal + noise * rng.standard_normal(signal.shape)).astype(np.float32) for s in range(n_subjects)}
    return X.astype(np.float32), fmri, signal


# ------------------------------------------------------------------------------------------------ the splitter
def test_gapped_kfold_is_a_scikit_learn_splitter_and_a_value():
    cv = GappedKFold(n_splits=4, gap=3, trim=(5, 2))
    assert repr(cv) == "GappedKFold(n_splits=4, gap=3, trim=(5, 2), folds=None)"
    assert cv == GappedKFold(4, 3, [5, 2]) and hash(cv) == hash(GappedKFold(4, 3, (5, 2)))
    assert cv != GappedKFold(4, 4, (5, 2)) and cv != GappedKFold(4, 3)
    assert check_cv(cv) is cv and cv.get_n_splits() == 4
    splits = list(cv.split(np.zeros((100, 2))))
    expected = gapped_splits(trimmed_indices(100, (5, 2)), 4, 3)
    for (train, test), (train_e, test_e) in zip(splits, expected, strict=True):
        np.testing.assert_array_equal(train, train_e)
        np.testing.assert_array_equal(test, test_e)
        assert np.min(np.abs(train[:, None] - test[None, :])) > 3  # the gap, on both sides
    assert splitter_from_params(cv.params()) == cv
    scores = cross_val_score(Ridge(), np.random.default_rng(0).standard_normal((100, 3)), np.arange(100.0), cv=cv)
    assert scores.shape == (4,)


def test_gapped_kfold_chosen_folds_are_the_same_blocks():
    every = list(GappedKFold(5, 4, (10, 10)).split(np.zeros((300, 1))))
    some = GappedKFold(5, 4, (10, 10), folds=[3, 1])
    assert some.folds == (1, 3) and some.get_n_splits() == 2
    for (train, test), k in zip(some.split(np.zeros((300, 1))), (1, 3), strict=True):
        np.testing.assert_array_equal(test, every[k][1])
        np.testing.assert_array_equal(train, every[k][0])


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(n_splits=1), ValueError, "n_splits must be an integer >= 2, found 1"),
    (dict(n_splits=2.5), TypeError, r"n_splits must be an integer >= 2, found 2\.5"),
    (dict(gap=-1), ValueError, "gap"),
    (dict(trim=(3,)), ValueError, "trim"),
    (dict(folds=[5]), ValueError, r"folds must be fold numbers in 0\.\.4"),
    (dict(folds=[1, 1]), ValueError, "twice"),
])
def test_gapped_kfold_names_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        GappedKFold(**kwargs)


def test_the_default_folds_and_a_splitter_that_holds_a_tr_out_twice():
    assert check_splitter(None, (1, 2, 3, 4, 5, 6)) == GappedKFold(5, 6, DEFAULT_TRIM)
    assert check_splitter(3, (1, 2)) == GappedKFold(3, 2, DEFAULT_TRIM)

    class Overlapping:
        def split(self, X, y=None, groups=None):
            yield np.arange(50, 100), np.arange(0, 30)
            yield np.arange(60, 100), np.arange(20, 40)

        def get_n_splits(self, X=None, y=None, groups=None):
            return 2

    with pytest.raises(ValueError, match="more than once"):
        held_out_blocks(Overlapping(), 100)
    X, fmri, _ = shared_response(n_trs=200, n_subjects=1)
    with pytest.raises(ValueError, match="trims TRs: trimming applies to the outer folds only"):
        evaluate_encoding(X, fmri, fitter=GappedRidgeCV(cv=GappedKFold(trim=(1, 0))), progress=False, cache=False)


# ------------------------------------------------------------------------------------- every consumer follows it
class UnevenBlocks:
    """A user's splitter: held-out blocks of very different lengths, ``gap`` TRs dropped around each."""

    def __init__(self, edges=(15, 55, 215, 345), gap=4):
        self.edges, self.gap = edges, gap

    def split(self, X, y=None, groups=None):
        trs = np.arange(len(X))
        for lo, hi in zip(self.edges[:-1], self.edges[1:]):
            yield trs[(trs < lo - self.gap) | (trs >= hi + self.gap)], trs[lo:hi]

    def get_n_splits(self, X=None, y=None, groups=None):
        return len(self.edges) - 1

    def __repr__(self):
        return f"UnevenBlocks(edges={self.edges}, gap={self.gap})"


SWAPS = [
    pytest.param(TimeSeriesSplit(n_splits=4, gap=4), id="sklearn-TimeSeriesSplit"),
    pytest.param(GappedKFold(3, gap=5, trim=(7, 23)), id="GappedKFold-3-uneven-trim"),
    pytest.param(UnevenBlocks(), id="uneven-blocks"),
]


class SpyRidge(GappedRidgeCV):
    """The kit's ridge, recording the number of rows of every fit."""

    rows = []

    def fit(self, X, y):
        SpyRidge.rows.append(len(X))
        return super().fit(X, y)


@pytest.mark.parametrize("cv", SWAPS)
def test_scores_ceiling_pvalues_and_decoding_follow_a_swapped_splitter(cv):
    X, fmri, signal = shared_response()
    n_trs = len(X)
    blocks = [test for _, test in cv.split(np.zeros((n_trs, 1)))]
    trains = [train for train, _ in cv.split(np.zeros((n_trs, 1)))]
    default_blocks = held_out_blocks(check_splitter(None), n_trs)
    assert [len(b) for b in blocks] != [len(b) for b in default_blocks]  # the swap really changes the blocks

    # scores: fitted on the splitter's training TRs, scored on its blocks, recorded with it
    SpyRidge.rows.clear()
    result = evaluate_encoding(X, fmri, cv=cv, fitter=SpyRidge(backend="numpy"), return_predictions=True,
                               progress=False, cache=False)
    assert result.cv is cv
    assert result.params["cv"] == (cv.params() if isinstance(cv, GappedKFold) else {"splitter": repr(cv)})
    assert SpyRidge.rows == [len(train) for train in trains]
    np.testing.assert_array_equal(result.test_trs, np.concatenate(blocks))
    assert result.r_folds.shape[0] == len(blocks)
    Y = np.concatenate(list(fmri.values()), 1)
    pred = result.predictions.reshape(len(result.test_trs), -1)
    rows = [np.searchsorted(result.test_trs, b) for b in blocks]
    by_hand = np.array([columnwise_r(pred[r], Y[b]) for r, b in zip(rows, blocks)])
    np.testing.assert_allclose(result.r_folds.reshape(len(blocks), -1), by_hand, atol=1e-6)
    np.testing.assert_allclose(result.r.ravel(), fisher_mean(by_hand, axis=0), atol=1e-6)

    # the noise ceiling: on the splitter's blocks
    story = SimpleNamespace(fmri=fmri, n_trs=n_trs)
    ceiling = story_ceiling(story, cv=cv)
    np.testing.assert_allclose(ceiling, noise_ceiling(fmri, blocks=blocks), equal_nan=True)
    assert not np.allclose(ceiling, story_ceiling(story), equal_nan=True)

    # the p-values: each block centred on its own, the blocks the result's splitter gives
    sig = prediction_significance(result, fmri, n_shifts=200)
    expected = {}
    for name, these in (("splitter", rows), ("default", None)):
        p_pred, p_data = pred.astype(np.float64), Y[result.test_trs].astype(np.float64)
        these = these if these is not None else np.array_split(np.arange(len(result.test_trs)), len(blocks))
        for block in these:
            p_pred[block] -= p_pred[block].mean(0)
            p_data[block] -= p_data[block].mean(0)
        expected[name] = circular_shift_pvalues(p_pred, p_data, n_shifts=200, random_state=0)
    np.testing.assert_array_equal(sig["p"].ravel(), expected["splitter"][1])
    np.testing.assert_array_equal(sig["q"], np.stack([fdr_bh(row) for row in sig["p"]]))
    if max(map(len, blocks)) - min(map(len, blocks)) > 1:  # equal blocks cannot be told from the default split
        assert not np.allclose(expected["splitter"][0], expected["default"][0])  # other blocks, other numbers

    # the demo's noise-free ceiling on the result's folds
    truth = truth_fold_ceiling({"signal": signal}, fmri, result)
    by_hand = [fisher_mean(np.array([columnwise_r(signal[b], y[b]) for b in blocks]), axis=0) for y in fmri.values()]
    np.testing.assert_allclose(truth, by_hand, atol=1e-12)

    # decoding: its folds are the splitter's blocks
    table = evaluate_decoding(X, fmri, n_components=3, cv=cv, segment_trs=5, progress=False, cache=False)
    assert sorted(table["fold"].unique()) == list(range(len(blocks)))
    assert table.groupby("fold")["n_segments"].first().tolist() == [len(b) // 5 for b in blocks]


def test_a_saved_result_keeps_its_splitter(tmp_path):
    X, fmri, _ = shared_response()
    cv = GappedKFold(4, 4, (3, 9))
    result = evaluate_encoding(X, fmri, cv=cv, return_predictions=True, progress=False, cache=False)
    result.save(tmp_path, "r")
    back = EncodingResult.load(tmp_path, "r")
    assert back.cv == cv
    for a, b in zip(back.fold_blocks(), result.fold_blocks(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(prediction_significance(back, fmri, n_shifts=50)["p"],
                                  prediction_significance(result, fmri, n_shifts=50)["p"])
