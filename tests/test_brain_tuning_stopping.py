"""Brain tuning (notebook 08): early stopping on an inner block of the training TRs, the shuffled control's minimum
shift from the data's autocorrelation, the cheaper tuning settings, and the study's bad-input sentences.

Fast: a tiny random BERT (``standin("random-bert")``) and the small demo.
"""

import dataclasses

import numpy as np
import pytest

from encoding_kit.brain_tuning import (
    BrainTuningStudy,
    TuningConfig,
    autocorrelation_min_shift,
    inner_validation_split,
    shift_within_runs,
    tuned_weights,
    tuning_verdict,
)
from encoding_kit.brain_tuning.controls import check_min_shift
from encoding_kit.data.story import load_story
from encoding_kit.features.models import standin

STOP = TuningConfig(epochs=3, batch_size=8, context_tokens=24, tune_layers=2, lr=2e-3, head_lr=1e-2, patience=1,
                    check_every=2, val_trs=30)


@pytest.fixture(scope="module")
def tiny_bert():
    return standin("random-bert")


@pytest.fixture(scope="module")
def story(small_demo):
    return load_story(small_demo, subjects=4)


def _study(story, model, config=STOP, **kwargs):
    return BrainTuningStudy(story, model, folds=[2], n_state=6, config=config, cache=False, progress=False, **kwargs)


def _replace_brain(story, trs, seed):
    """A copy of the story whose brain data at ``trs`` are replaced by loud noise."""
    rng = np.random.default_rng(seed)
    fmri = {s: y.copy() for s, y in story.fmri.items()}
    for y in fmri.values():
        y[trs] = rng.standard_normal((len(trs), y.shape[1])) * 5
    return dataclasses.replace(story, fmri=fmri)


# --- early stopping ------------------------------------------------------------------------------------------------

def test_the_inner_validation_block_is_the_end_of_the_training_trs_after_a_gap():
    train = np.r_[8:100, 160:292]  # two training runs around a held-out block (100..159 with its gaps)
    fit, val = inner_validation_split(train, 40, gap=4)
    assert np.array_equal(val, np.arange(252, 292))
    assert np.array_equal(fit, np.r_[8:100, 160:248])
    assert set(fit) | set(val) < set(train) and not set(fit) & set(val)
    with pytest.raises(ValueError, match="val_trs=200: the last run of training TRs has 132 TRs"):
        inner_validation_split(train, 200, gap=4)


def test_early_stopping_reads_only_its_inner_block_of_training_trs(story, tiny_bert):
    """Replacing the held-out block's brain data (and its gaps) leaves the early-stopped weights bit-identical,
    while replacing the inner validation block's changes when training stops: the block is read, the held-out
    one never is."""
    clean = _study(story, tiny_bert)
    train = clean.splits[2][0]
    examples, _, _ = clean.examples("direct", "pca", train)
    val = examples.validation
    assert val is not None and len(val) > 0
    assert set(val.trs) <= set(train) and not set(val.trs) & set(examples.trs)
    assert examples.trs.max() + max(clean.delays) < val.trs.min(), "a tuning target reaches the validation block"
    outside = np.setdiff1d(np.arange(story.n_trs), train)
    a, _ = clean.tune_fold("direct", "pca", train)
    b, _ = _study(_replace_brain(story, outside, 9), tiny_bert).tune_fold("direct", "pca", train)
    wa, wb = tuned_weights(a), tuned_weights(b)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa), "the held-out block changed the early-stopped tuning"
    # the inner block is what early stopping reads: replacing it (and only it) changes the tuned weights
    inner = np.arange(val.trs.min(), train.max() + 1)
    c, _ = _study(_replace_brain(story, inner, 9), tiny_bert).tune_fold("direct", "pca", train)
    wc = tuned_weights(c)
    assert any(not np.array_equal(wa[k], wc[k]) for k in wa), "early stopping ignored its validation block"


def test_early_stopping_keeps_the_best_checked_weights(story, tiny_bert):
    import copy

    import torch

    from encoding_kit.brain_tuning.model import BrainTunedLM
    from encoding_kit.brain_tuning.train import _EarlyStopping, _train

    study = _study(story, tiny_bert, config=dataclasses.replace(STOP, patience=2))
    examples, config, _ = study.examples("direct", "pca", study.splits[2][0])
    model = BrainTunedLM(copy.deepcopy(tiny_bert.model), "direct", examples.targets.shape[1], config.tune_layers)
    _train(model, examples, tiny_bert.processor, config, torch.device("cpu"), False, "")
    history = dict(model.early_stopping_["history"])
    best = model.early_stopping_["best_step"]
    assert best == min(history, key=history.get) and len(history) >= 2
    ran, planned = model.steps_
    assert ran <= planned
    if ran < planned:  # stopped: the last `patience` checks did not improve on the best
        assert sorted(history)[-config.patience - 1] == best
    # the weights kept are the best check's: their validation loss is the best one recorded
    from encoding_kit.features.text import special_template

    prefix, suffix = special_template(tiny_bert.processor)
    again = _EarlyStopping(model, examples.validation, config, prefix, suffix, tiny_bert.processor,
                           torch.device("cpu"))
    assert again.history[0][1] == pytest.approx(history[best], rel=1e-5)


# --- the shuffled control's minimum shift ---------------------------------------------------------------------------

def _ar(n, n_cols, rho, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, n_cols))
    noise = rng.standard_normal((n, n_cols))
    for t in range(1, n):
        x[t] = rho * x[t - 1] + noise[t]
    return x


def _theory_min_shift(rho, delays=(1, 2, 3, 4), threshold=0.1):
    """First lag at which the delay-averaged AR(rho) series' autocorrelation falls below the threshold."""
    d = np.asarray(delays)

    def ac(k):
        return sum(rho ** abs(k + i - j) for i in d for j in d) / sum(rho ** abs(i - j) for i in d for j in d)

    return next(k for k in range(1, 1000) if ac(k) < threshold)


@pytest.mark.parametrize("rho", [0.0, 0.8, 0.93])
def test_minimum_shift_comes_from_the_autocorrelation_of_the_delayed_targets(rho):
    trs = np.r_[0:1500, 1600:3000]  # two training runs
    states = _ar(len(trs), 12, rho)
    found = autocorrelation_min_shift(states, trs)
    expected = _theory_min_shift(rho)
    assert abs(found - expected) <= max(1, expected // 10), (found, expected)
    if rho == 0.0:
        assert found == 4, "white states averaged over 4 delays are correlated up to lag 3"


def test_a_shift_shorter_than_the_autocorrelation_allows_is_refused():
    trs = np.r_[10:600, 700:1300]
    states = _ar(len(trs), 8, 0.9, seed=2)
    allowed = autocorrelation_min_shift(states, trs)
    assert allowed > 10
    with pytest.raises(ValueError, match=f"min_shift=10 is shorter than the {allowed} TRs at which the training "
                                         "brain targets' mean autocorrelation falls below 0.1"):
        shift_within_runs(states, trs, min_shift=10)
    shifted, shifts = shift_within_runs(states, trs, random_state=1)  # default: the data's minimum
    assert all(allowed <= k <= n - allowed for k, n in zip(shifts, (590, 600)))
    shift_within_runs(states, trs, min_shift=allowed + 5)
    # runs glued together would look autocorrelated across the hole: the pairs stay inside each run
    jump = np.r_[np.zeros((590, 8)), np.ones((600, 8)) * 50] + np.random.default_rng(0).standard_normal((1190, 8))
    assert autocorrelation_min_shift(jump, trs) == 4


def test_the_study_refuses_a_shift_below_its_training_datas_minimum(story, tiny_bert):
    study = _study(story, tiny_bert, config=dataclasses.replace(STOP, patience=0), min_shift=1)
    with pytest.raises(ValueError, match="min_shift=1 is shorter than the \\d+ TRs"):
        study.examples("direct", "pca", study.splits[2][0], control="shuffled_brain")
    for bad in (0, 2.5, "ten", True):
        with pytest.raises(ValueError, match="min_shift must be None .* or a whole number of TRs >= 1"):
            check_min_shift(bad)


# --- cheaper tuning --------------------------------------------------------------------------------------------------

def test_short_tuning_windows_and_subsampling_change_only_the_tuning(story, tiny_bert):
    base = dataclasses.replace(STOP, patience=0)
    study = _study(story, tiny_bert, config=dataclasses.replace(base, tune_context=8))
    examples, _, _ = study.examples("direct", "pca", study.splits[2][0])
    assert max(len(w) for w in examples.windows) == 8
    features = study.features(study.loaded)
    assert np.array_equal(features, study.baseline_features), "the features' windows changed with tune_context"
    with pytest.raises(ValueError, match="subsample must be a fraction of the training windows in \\(0, 1\\]"):
        TuningConfig(subsample=0)
    with pytest.raises(ValueError, match="patience must be a whole number >= 0"):
        TuningConfig(patience=-1)
    with pytest.raises(ValueError, match="tune_context must be a whole number >= 1"):
        TuningConfig(tune_context=0)


# --- bad repeat arguments: one sentence naming the argument ----------------------------------------------------------

def test_every_bad_repeat_argument_names_itself(story, tiny_bert):
    with pytest.raises(ValueError, match="folds must be fold numbers in 0..4"):
        BrainTuningStudy(story, tiny_bert, folds=[], cache=False, progress=False)
    with pytest.raises(ValueError, match="folds must be fold numbers in 0..4"):
        BrainTuningStudy(story, tiny_bert, folds=[5], cache=False, progress=False)
    study = _study(story, tiny_bert, config=dataclasses.replace(STOP, patience=0))
    for seeds in (["a"], [2 ** 40], [1, 1], None):
        with pytest.raises(ValueError, match="seeds must be a non-empty list of distinct whole numbers in 0.."):
            study.runs("direct", "pca", seeds=seeds)
    with pytest.raises(ValueError, match="seeds must be a non-empty list"):
        study.tuned("direct", "pca", seed=-3)
    with pytest.raises(ValueError, match="control must be one of"):
        study.tuned("direct", "pca", control="text")
    runs = study.baseline_runs()
    with pytest.raises(ValueError, match="against must name controls .* or models of the runs; 'text_olny' is neither"):
        tuning_verdict(runs, "pretrained", against=["text_olny"])
