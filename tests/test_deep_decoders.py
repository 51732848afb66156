"""Deep decoders: nested optuna search, permutation test of identification, planted signal, bad inputs."""

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter
from scipy.stats import kstest

from encoding_kit.decoding.deep_models import ARCHITECTURES, DeepDecoder, decoder_windows
from encoding_kit.decoding.evaluation import evaluate_deep_decoding
from encoding_kit.decoding.identification import pairing_scores
from encoding_kit.decoding.linear import (
    evaluate_decoding,
    identification_accuracy,
    identification_permutation_test,
)
from encoding_kit.decoding.search import DeepSearch, tune_decoder
from encoding_kit.encoding.cv import DEFAULT_TRIM, GappedKFold, gapped_splits, trimmed_indices

SEARCH = DeepSearch(n_trials=2, max_epochs=6, patience=3, n_jobs=1)
FAST = {"search": SEARCH, "progress": False}
INNER = GappedKFold(5, 4)
"""The inner folds of the search tests (the last block validates)."""


def planted(n_trs=240, n_features=12, n_rois=16, n_subjects=1, noise=1.0, seed=0):
    """Smooth features and ROIs that respond to them 2 TRs later (plus noise)."""
    rng = np.random.default_rng(seed)
    X = gaussian_filter1d(rng.standard_normal((n_trs, n_features)), 1.5, axis=0).astype(np.float32)
    fmri = {}
    for s in range(n_subjects):
        drive = np.zeros((n_trs, n_rois))
        drive[2:] = (X @ rng.standard_normal((n_features, n_rois)))[:-2]
        fmri[s] = (drive / drive.std() + noise * rng.standard_normal((n_trs, n_rois))).astype(np.float32)
    return X, fmri


def test_search_never_sees_the_test_block():
    """Replacing the held-out block of one fold by noise leaves that fold's chosen hyperparameters unchanged."""
    X, fmri = planted()
    kw = {"archs": ("mlp", "transformer"), "n_components": 4, "cv": 3, "segment_trs": 5, "cache": False, **FAST}
    first = evaluate_deep_decoding(X, fmri, **kw)
    _, test = gapped_splits(trimmed_indices(len(X), DEFAULT_TRIM), 3, 4)[1]  # the evaluation's fold 1
    rng = np.random.default_rng(9)
    X2, fmri2 = X.copy(), {s: b.copy() for s, b in fmri.items()}
    X2[test] = 50 * rng.standard_normal(X2[test].shape)
    fmri2[0][test] = 50 * rng.standard_normal(fmri2[0][test].shape)
    second = evaluate_deep_decoding(X2, fmri2, **kw)
    for table in (first.folds, second.folds):
        assert table.loc[table["model"] != "ridge", "params"].map(json.loads).map(len).gt(0).all()
    columns = ["model", "params", "epochs", "search_loss"]
    fold = [t[(t["fold"] == 1) & (t["model"] != "ridge")][columns].reset_index(drop=True)
            for t in (first.folds, second.folds)]
    assert fold[0].equals(fold[1])  # the search's own score too: a search that saw the block would score differently
    other = [t[(t["fold"] == 0) & (t["model"] != "ridge")]["search_loss"].to_numpy() for t in (first.folds, second.folds)]
    assert not np.allclose(*other)  # fold 0 trains on fold 1's block: its search sees the corruption
    # the corruption did reach the held-out predictions: the check above is not vacuous
    assert not np.allclose(first.blocks["mlp", 0][1][0], second.blocks["mlp", 0][1][0])


def test_tune_decoder_reads_only_the_training_rows(tmp_path):
    rng = np.random.default_rng(1)
    windows, targets = rng.standard_normal((200, 4, 6)), rng.standard_normal((200, 3))
    train = np.r_[0:90, 130:200]
    first = tune_decoder("mlp", windows, targets, train, INNER, DeepSearch(n_trials=3, max_epochs=5), cache=False)
    windows[90:130], targets[90:130] = 1e3, -1e3
    second = tune_decoder("mlp", windows, targets, train, INNER, DeepSearch(n_trials=3, max_epochs=5), cache=False)
    assert first["trials"] == second["trials"] and first["params"] == second["params"]
    assert len(first["trials"]) == 3 and first["val_loss"] == min(t["val_loss"] for t in first["trials"])


def test_trials_are_cached_by_content(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    windows, targets = rng.standard_normal((150, 4, 5)), rng.standard_normal((150, 2))
    args = ("transformer", windows, targets, np.arange(150))
    first = tune_decoder(*args, INNER, DeepSearch(n_trials=3, max_epochs=4), cache=tmp_path)
    assert len(list(tmp_path.glob("deepsearch-*.json"))) == 1

    def refuse(*a, **k):
        raise AssertionError("a cached trial was trained again")

    monkeypatch.setattr(DeepDecoder, "fit", refuse)
    assert tune_decoder(*args, INNER, DeepSearch(n_trials=3, max_epochs=4), cache=tmp_path) == first
    with pytest.raises(AssertionError, match="trained again"):  # other data: a new study, so training
        tune_decoder("transformer", windows + 1, targets, np.arange(150), INNER, DeepSearch(n_trials=3, max_epochs=4),
                     cache=tmp_path)


def test_evaluation_is_cached_and_deterministic(monkeypatch):
    X, fmri = planted(n_trs=160, seed=3)
    kw = {"archs": ("cnn_transformer",), "n_components": 3, "cv": 2, "segment_trs": 5, **FAST}
    first = evaluate_deep_decoding(X, fmri, **kw)
    again = evaluate_deep_decoding(X, fmri, **{**kw, "cache": False})
    assert np.array_equal(first.blocks["cnn_transformer", 0][0][0], again.blocks["cnn_transformer", 0][0][0])
    monkeypatch.setattr(DeepDecoder, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    cached = evaluate_deep_decoding(X, fmri, **kw)
    assert cached.folds.equals(first.folds)
    assert np.array_equal(cached.blocks["cnn_transformer", 0][1][0], first.blocks["cnn_transformer", 0][1][0])


def test_ridge_rows_are_the_ridge_decoder_on_the_same_folds():
    X, fmri = planted(n_trs=200, n_subjects=2, seed=4)
    kw = {"n_components": 4, "cv": 3, "segment_trs": 5, "cache": False}
    deep = evaluate_deep_decoding(X, fmri, archs=("mlp",), **kw, **FAST).folds
    ridge = evaluate_decoding(X, fmri, progress=False, **kw)
    mine = deep[deep["model"] == "ridge"].sort_values(["subject", "fold"]).reset_index(drop=True)
    ridge = ridge.sort_values(["subject", "fold"]).reset_index(drop=True)
    for col in ("r", "top1", "top10", "n_segments"):
        np.testing.assert_allclose(mine[col].to_numpy(float), ridge[col].to_numpy(float), rtol=1e-5)


def test_ridge_rows_reuse_the_ridge_decoders_stored_predictions(monkeypatch):
    # evaluate_decoding stores its held-out predictions; the deep table's ridge rows read them instead of fitting
    # the same ridge again, and are the predictions a fit gives (cache=False fits)
    X, fmri = planted(n_trs=200, n_subjects=2, seed=5)
    kw = {"n_components": 4, "cv": 3, "segment_trs": 5}
    fitted = evaluate_deep_decoding(X, fmri, archs=("mlp",), **kw, **FAST, cache=False)
    evaluate_decoding(X, fmri, progress=False, **kw)

    def refuse(*args, **kwargs):
        raise AssertionError("the ridge decoder was fitted again")

    monkeypatch.setattr("encoding_kit.decoding.evaluation.ridge_decode", refuse)
    reused = evaluate_deep_decoding(X, fmri, archs=("mlp",), **kw, **FAST)
    for subject in fmri:
        for (pred, true), (pred_fit, true_fit) in zip(reused.blocks["ridge", subject], fitted.blocks["ridge", subject]):
            np.testing.assert_array_equal(pred, pred_fit)
            np.testing.assert_array_equal(true, true_fit)
    other = {s: b[::-1].copy() for s, b in fmri.items()}  # other responses: another key, so the ridge is fitted
    with pytest.raises(AssertionError, match="fitted again"):
        evaluate_deep_decoding(X, other, archs=("mlp",), **kw, **FAST)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_networks_learn_a_planted_signal(arch):
    """Targets that are a fixed function of the window are decoded on held-out rows (r > 0.6)."""
    rng = np.random.default_rng(5)
    windows = rng.standard_normal((1000, 4, 8)).astype(np.float32)
    weights = rng.standard_normal((4 * 8, 3))
    targets = np.tanh(windows.reshape(1000, -1) @ weights / 4) + 0.1 * rng.standard_normal((1000, 3))
    decoder = DeepDecoder(arch, max_epochs=80, patience=10).fit(windows[:800], targets[:800],
                                                                val=(windows[800:900], targets[800:900]))
    pred = decoder.predict(windows[900:])
    r = [np.corrcoef(pred[:, c], targets[900:, c])[0, 1] for c in range(3)]
    assert min(r) > 0.6, r


def test_planted_signal_is_identified_and_significant():
    X, fmri = planted(n_trs=300, noise=0.5, seed=6)
    result = evaluate_deep_decoding(X, fmri, archs=("mlp",), n_components=4, cv=5, segment_trs=5,
                                    search=DeepSearch(n_trials=2, max_epochs=40, patience=5, n_jobs=1), progress=False,
                                    cache=False)
    table = result.summary(n_permutations=200)
    assert (table["top1"] > 3 * table["chance_top1"]).all(), table
    assert (table["p_top1"] < 0.01).all(), table


def no_signal_blocks(rng, n_blocks=5, n_trs=100, n_components=6):
    smooth = lambda: gaussian_filter1d(rng.standard_normal((n_trs, n_components)), 1.0, axis=0)  # noqa: E731
    return [(smooth(), smooth()) for _ in range(n_blocks)]


def ar_block(rng, n_trs=76, n_components=8, phi=0.9):
    """A stationary AR(1) time course per component (200 burn-in samples dropped)."""
    return lfilter([1.0], [1.0, -phi], rng.standard_normal((n_trs + 200, n_components)), axis=0)[200:]


def test_permutation_test_is_calibrated_on_short_autocorrelated_blocks():
    """Pitfall 26: decoded and true AR(0.9) courses independent, 5 held-out blocks of 76 TRs (notebook 07's quick
    blocks), 10-TR segments, 8 components. The former circular-shift null rejected in about 9 % of these at
    alpha 0.05 and 2.7 % at 0.01; benchmarks/bench_identification_null.py measures the rates with 4,000 runs."""
    rng = np.random.default_rng(26)
    p = np.array([identification_permutation_test([(ar_block(rng), ar_block(rng)) for _ in range(5)],
                                                  segment_trs=10, n_permutations=199, random_state=k)["p"]
                  for k in range(600)])
    assert 0.028 <= np.mean(p <= 0.05) <= 0.072, np.mean(p <= 0.05)
    assert np.mean(p <= 0.01) <= 0.02, np.mean(p <= 0.01)
    assert np.mean(p <= 0.5) == pytest.approx(0.5, abs=0.07)  # uniform, not only in the tail


def test_permutation_p_is_uniform_without_signal_with_random_orders():
    """8 blocks have 40,320 orders: 99 random ones (plus the observed) give a p near U(0, 1) too."""
    rng = np.random.default_rng(7)
    p = np.array([identification_permutation_test(no_signal_blocks(rng, n_blocks=8, n_trs=60), segment_trs=5,
                                                  n_permutations=99, random_state=k)["p"] for k in range(300)])
    assert kstest(p, "uniform").pvalue > 0.01
    for alpha in (0.05, 0.25, 0.5):
        assert abs(np.mean(p <= alpha) - alpha) < 0.06, (alpha, np.mean(p <= alpha))


def test_permutation_p_counts_the_observed_order_and_detects_signal():
    rng = np.random.default_rng(8)
    blocks = [(t + 0.3 * rng.standard_normal(t.shape), t) for _, t in no_signal_blocks(rng)]
    test = identification_permutation_test(blocks, segment_trs=5, n_permutations=1000)
    assert test["exact"] and test["n_permutations"] == test["n_pairings"] == 120  # every order of 5 blocks
    assert test["top1"] > 0.9 and test["p"] == pytest.approx(1 / 120)
    assert test["null_mean"] < 0.3 and test["n_segments"] == 20
    drawn = identification_permutation_test(blocks, segment_trs=5, n_permutations=49)
    assert not drawn["exact"] and drawn["n_permutations"] == 50 and drawn["p"] == pytest.approx(1 / 50)


def test_fewer_than_four_blocks_give_no_p_value():
    rng = np.random.default_rng(11)
    test = identification_permutation_test(no_signal_blocks(rng, n_blocks=3), segment_trs=10)
    assert np.isnan(test["p"]) and test["n_pairings"] == 6 and np.isfinite(test["top1"])
    assert np.isfinite(identification_permutation_test(no_signal_blocks(rng, n_blocks=4), segment_trs=10)["p"])


def test_pairing_scores_match_the_ridge_decoders_scoring():
    """Decoded block i against true block j scores as identification_accuracy scores that pair; blocks of unequal
    length are cut to the shortest one's whole segments."""
    rng = np.random.default_rng(10)
    blocks = [(rng.standard_normal((n, 3)), rng.standard_normal((n, 3))) for n in (57, 59, 55, 56)]
    scores = pairing_scores(np.stack([p[:55] for p, _ in blocks]), np.stack([t[:55] for _, t in blocks]), 5)
    for i, (pred, _) in enumerate(blocks):
        for j, (_, true) in enumerate(blocks):
            assert scores[0, i, j] == pytest.approx(identification_accuracy(pred[:55], true[:55], 5, top=(1,))["top1"])
    test = identification_permutation_test(blocks, segment_trs=5)
    assert test["n_segments"] == 11 and test["top1"] == pytest.approx(np.diagonal(scores[0]).mean())


X_BAD, FMRI_BAD = planted(n_trs=60)
BAD_INPUTS = [
    ("window longer than the data", lambda: evaluate_deep_decoding(X_BAD, FMRI_BAD, delays=(1, 80), **FAST),
     "window reaches 80 TRs ahead"),
    ("windows of a short brain", lambda: decoder_windows(np.zeros((5, 3)), np.arange(5), [1, 8]),
     "only 5 TRs"),
    ("no trials", lambda: DeepSearch(n_trials=0), "n_trials must be"),
    ("inner folds", lambda: tune_decoder("mlp", np.zeros((50, 4, 2)), np.zeros((50, 1)), np.arange(50), 4),
     "cv must be a GappedKFold"),
    ("unknown architecture", lambda: evaluate_deep_decoding(X_BAD, FMRI_BAD, archs=("vit",), **FAST),
     "arch must be one of"),
    ("fmri length", lambda: evaluate_deep_decoding(X_BAD[:50], FMRI_BAD, **FAST), "as many TRs as X"),
    ("shapes", lambda: DeepDecoder("mlp").fit(np.zeros((10, 4)), np.zeros((10, 2))), "windows must have shape"),
    ("permutations", lambda: identification_permutation_test(no_signal_blocks(np.random.default_rng(0)),
                                                             n_permutations=0), "n_permutations must be"),
    ("short blocks", lambda: identification_permutation_test([(np.zeros((15, 2)), np.zeros((15, 2)))],
                                                             segment_trs=10), "fewer than 2 segments"),
    ("blocks of other components", lambda: identification_permutation_test(
        [(np.zeros((30, 2)), np.zeros((30, 2))), (np.zeros((30, 3)), np.zeros((30, 3)))]), "same components"),
    ("train outside", lambda: tune_decoder("mlp", np.zeros((50, 4, 2)), np.zeros((50, 1)), np.arange(40, 60), INNER),
     "train must hold TR indices within"),
]


@pytest.mark.parametrize("make", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_get_one_clear_sentence(make):
    call, message = make
    with pytest.raises((ValueError, TypeError), match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_the_default_workers_follow_the_size_of_the_search(monkeypatch):
    """A small search (07's quick one) trains in the process; a large one (the full run's) takes two cores."""
    from encoding_kit.decoding.evaluation import WORKER_MIN_EPOCHS, _n_jobs

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # run --jobs 2: the second core is still taken when it is free
    quick, full = 5 * 2 * 3 * 2 * 10, 5 * 3 * 3 * 2 * 30  # folds, subjects, architectures, trials, epochs (07)
    assert quick < WORKER_MIN_EPOCHS <= full
    assert _n_jobs(None, "cpu", epochs=quick) == 1
    assert _n_jobs(None, "cpu", epochs=full) == 2
    assert _n_jobs(None, "cpu") == 2
    assert _n_jobs(2, "cpu", epochs=quick) == 2  # asked for: kept
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert _n_jobs(None, "cpu", epochs=full) == 1


@pytest.mark.parametrize(("max_epochs", "workers"), [(6, 1), (1000, 2)])
def test_evaluation_sizes_its_workers_by_the_whole_search(monkeypatch, max_epochs, workers):
    """3 folds x 1 subject x 1 architecture x 1 trial: 18 epochs at most train in the process, 3,000 take 2 cores."""
    import encoding_kit.decoding.evaluation as evaluation

    asked = []

    class Stop(Exception):
        pass

    def parallel(n_jobs, **kw):
        asked.append(n_jobs)
        raise Stop

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr(evaluation, "Parallel", parallel)
    X, fmri = planted(n_trs=120)
    with pytest.raises(Stop):
        evaluate_deep_decoding(X, fmri, archs=("mlp",), n_components=4, cv=3, segment_trs=5, progress=False,
                               cache=False, search=DeepSearch(n_trials=1, max_epochs=max_epochs))
    assert asked == [workers]
