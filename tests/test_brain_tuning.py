"""Brain tuning (notebook 08): held-out TRs never reach tuning, the three compressions, the leak contrast, bad input.

Fast: a tiny random BERT (``standin("random-bert")``) and small synthetic or demo data.
"""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from encoding_kit.brain_tuning import (
    BrainCompressor,
    BrainTuningStudy,
    TuningConfig,
    check_mlm_model,
    effect_interval,
    leak_table,
    literature_sentence,
    shift_within_runs,
    training_examples,
    tuned_weights,
    tuning_verdict,
    tuning_verdict_text,
)
from encoding_kit.data.story import load_story
from encoding_kit.demo.generate import make_demo_dataset
from encoding_kit.encoding.evaluate import evaluate_encoding
from encoding_kit.features.models import standin

CONFIG = TuningConfig(epochs=2, batch_size=8, context_tokens=32, tune_layers=2)


@pytest.fixture(scope="module")
def tiny_bert():
    return standin("random-bert")


@pytest.fixture(scope="module")
def story(small_demo):

    return load_story(small_demo, subjects=4)


def _study(story, model, **kwargs):
    return BrainTuningStudy(story, model, folds=[2], n_state=6, config=kwargs.pop("config", CONFIG), cache=False,
                            progress=False, **kwargs)


def _corrupt_outside(story, train, text=True, seed=9):
    """A copy of the story whose brain data (and words, with ``text``) outside the training TRs are replaced."""
    rng = np.random.default_rng(seed)
    outside = np.setdiff1d(np.arange(story.n_trs), train)
    fmri = {s: y.copy() for s, y in story.fmri.items()}
    for y in fmri.values():
        y[outside] = rng.standard_normal((len(outside), y.shape[1])) * 5
    words = story.words.copy()
    held = words["tr"].isin(outside).to_numpy() & text
    words.loc[held, "word"] = rng.choice(["zebra", "quantum", "violin", "xylophone"], held.sum())
    return dataclasses.replace(story, fmri=fmri, words=words)


@pytest.mark.parametrize("method,compression,text", [("brainaligner", "pca", True), ("direct", "ceiling", True),
                                                     ("direct", "ridge", False)])
def test_held_out_trs_never_reach_tuning(story, tiny_bert, method, compression, text):
    """Corrupting the held-out block's brain data and words (and the gaps) leaves the tuned weights bit-identical.

    The ridge selection's pretrained features are the kit's baseline features, whose context (like every
    evaluation's) may read words across a fold's edge: there only the brain data are corrupted."""
    clean = _study(story, tiny_bert)
    train = clean.splits[2][0]
    corrupted = _study(_corrupt_outside(story, train, text), tiny_bert)
    assert np.array_equal(corrupted.splits[2][0], train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the ridge selection may fill its state (few TRs)
        a, comp_a = clean.tune_fold(method, compression, train)
        b, comp_b = corrupted.tune_fold(method, compression, train)
    wa, wb = tuned_weights(a), tuned_weights(b)
    assert wa.keys() == wb.keys()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    base = tuned_weights(type(a)(tiny_bert.model, None, "", "", ""))
    assert any(not np.array_equal(wa[k], base[k]) for k in wa), "tuning changed no weight"
    # and the held-out data did reach the study: the corrupted story is not the clean one
    assert not np.allclose(clean.target, corrupted.target)


def test_text_windows_stop_at_the_start_of_their_run(story, tiny_bert):
    study = _study(story, tiny_bert)
    train, test = study.splits[2]
    tokens = study.tokens()
    word_trs = story.words["tr"].to_numpy()
    examples = training_examples(tokens, word_trs, train, np.zeros((len(train), 3)), context_tokens=200)
    held_tokens = set(np.flatnonzero(np.isin(word_trs[tokens.token_word], np.arange(test[0], test[-1] + 5))))
    for t, window in zip(examples.trs, examples.windows):
        end = tokens.word_last[np.searchsorted(word_trs, t, side="right") - 1] + 1
        positions = set(range(end - len(window), end))
        assert not positions & held_tokens, f"the window of TR {t} reads held-out words"
        assert np.array_equal(tokens.ids[end - len(window):end], window)
    assert set(examples.trs + 4) <= set(train) and set(examples.trs) <= set(train)


def _shared_signal_data(n_subjects=5, n_trs=400, n_rois=30, seed=0):
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n_trs, 1))
    fmri = rng.standard_normal((n_subjects, n_trs, n_rois))
    fmri[:, :, :5] += 1.5 * signal  # ROIs 0-4 share a signal across subjects
    return fmri


def test_ceiling_compression_keeps_the_rois_with_a_shared_signal():
    fmri = _shared_signal_data()
    train = np.r_[0:150, 250:400]
    comp = BrainCompressor("ceiling", n_state=5).fit(fmri.mean(0)[train], train, fmri_train=fmri[:, train])
    assert set(comp.rois_) == {0, 1, 2, 3, 4} and comp.n_passed_ >= 5
    states = comp.transform(fmri.mean(0)[train])
    assert states.shape == (len(train), 5)
    assert np.allclose(states.mean(0), 0, atol=1e-5) and np.allclose(states.std(0), 1, atol=1e-4)


def test_ridge_compression_selects_the_predictable_rois_by_circular_shifts_and_fdr():
    rng = np.random.default_rng(1)
    n_trs = 500
    X = rng.standard_normal((n_trs, 6))
    Y = rng.standard_normal((n_trs, 40))
    Y[:, 10:14] += 2 * np.roll(X[:, :4], 2, axis=0)  # delayed by 2 TRs: inside the FIR delays 1-4
    train = np.r_[10:250, 300:490]
    comp = BrainCompressor("ridge", n_state=4, n_shifts=200).fit(Y[train], train, X=X)
    assert set(comp.rois_) == {10, 11, 12, 13}
    assert comp.n_passed_ == 4 and (comp.q_[10:14] < 0.05).all()
    with pytest.warns(UserWarning, match="only 4 of the ROIs are predicted"):
        wide = BrainCompressor("ridge", n_state=6, n_shifts=200).fit(Y[train], train, X=X)
    assert set(wide.rois_[:4]) == {10, 11, 12, 13}


def test_pca_compression_is_fitted_on_training_trs_only():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(2)
    Y = rng.standard_normal((300, 20)) @ rng.standard_normal((20, 20))
    train = np.arange(0, 200)
    comp = BrainCompressor("pca", n_state=3).fit(Y[train], train)
    Z = (Y[train] - Y[train].mean(0)) / (Y[train].std(0) + 1e-8)
    reference = PCA(3).fit(Z).components_
    assert np.allclose(np.abs(np.sum(comp.components_ * reference, axis=1)), 1, atol=1e-6)
    moved = Y.copy()
    moved[200:] *= 100  # the rows outside training change nothing fitted
    again = BrainCompressor("pca", n_state=3).fit(moved[train], train)
    assert np.array_equal(again.components_, comp.components_)
    with pytest.raises(ValueError, match="BrainLM weights"):
        BrainCompressor("brainlm", n_state=3).fit(Y[train], train)


def test_tuning_on_all_trs_inflates_held_out_r(tiny_bert, tmp_path):
    """The leak contrast on a planted case: brain data unrelated to the text, so honest tuning cannot help, and a
    model tuned on every TR (the held-out block included) memorises the held-out responses."""

    demo = make_demo_dataset(tmp_path / "demo", n_subjects=3, n_trs=260, seed=4)
    story = load_story(demo)
    rng = np.random.default_rng(0)
    noise = {s: np.cumsum(rng.standard_normal(y.shape), axis=0) * 0.2 + rng.standard_normal(y.shape)
             for s, y in story.fmri.items()}  # slow, text-free responses shared by nobody but the subject
    shared = np.cumsum(rng.standard_normal((story.n_trs, 360)), axis=0) * 0.3
    story = dataclasses.replace(story, fmri={s: (y + shared).astype(np.float32) for s, y in noise.items()})
    config = dataclasses.replace(CONFIG, epochs=12, lr=1e-3, head_lr=3e-3)
    study = _study(story, tiny_bert, config=config)
    pretrained = study.baseline()
    honest, leaky = study.tuned("direct", "pca"), study.tuned("direct", "pca", leak=True)
    table = leak_table(pretrained, honest, leaky)
    r = dict(zip(table["tuning"], table["mean_r"]))
    assert r["tuned on ALL TRs (leak)"] > r["tuned on training TRs only"] + 0.1, table
    assert r["tuned on ALL TRs (leak)"] > r["pretrained"] + 0.1, table


def test_one_outer_fold_scores_like_the_full_evaluation(story):

    X = np.random.default_rng(0).standard_normal((story.n_trs, 8))
    full = evaluate_encoding(X, story.fmri, progress=False, cache=False)
    one = evaluate_encoding(X, story.fmri, cv=dataclasses.replace(full.cv, folds=[3]), progress=False, cache=False)
    assert one.r_folds.shape[0] == 1 and np.allclose(one.r_folds[0], full.r_folds[3], equal_nan=True)
    with pytest.raises(ValueError, match=r"folds must be fold numbers in 0..4"):
        dataclasses.replace(full.cv, folds=[5])


def test_bad_input_is_one_clear_sentence(story, tiny_bert):
    with pytest.raises(ValueError, match="has no masked-LM head .*mlm_head='tied'"):
        check_mlm_model(tiny_bert, "pretrained")
    with pytest.raises(ValueError, match="needs a tokenizer with a mask token"):
        check_mlm_model(standin("random-gpt2"), "tied")
    with pytest.raises(ValueError, match="n_state=400 is larger than the 360 ROIs available"):
        BrainCompressor("ceiling", n_state=400).fit(np.zeros((50, 360)), np.arange(50))
    study = _study(story, tiny_bert)
    with pytest.raises(ValueError, match="give only \\d+ tuning examples .* at least 24 are needed"):
        study.tune_fold("direct", "pca", study.splits[2][0][:20])
    with pytest.raises(ValueError, match="mask_rate must be between 0 and 1"):
        TuningConfig(mask_rate=1.5)
    with pytest.raises(ValueError, match="tune_subjects must name subjects of the data"):
        _study(story, tiny_bert, tune_subjects=["nobody"])


# --- controls, repeated runs and verdicts (pitfalls 24-25) ---------------------------------------------------------

def _planted_runs(effect=0.0, n_folds=5, n_seeds=3, n_subjects=8, seed=0):
    """Tidy runs of a method, its two controls and the pretrained model; the method = text-only control + effect."""
    rng = np.random.default_rng(seed)
    subject_level = rng.normal(0.05, 0.02, n_subjects)
    fold_level = rng.normal(0, 0.01, n_folds)
    rows = []
    for f in range(n_folds):
        rows += [{"model": "pretrained", "seed": -1, "fold": f, "subject": j, "scope": "all ROIs",
                  "mean_r": subject_level[j] + fold_level[f] + rng.normal(0, 0.005), "median_r": 0.0}
                 for j in range(n_subjects)]
        for s in range(n_seeds):
            for j in range(n_subjects):
                control = subject_level[j] + fold_level[f] + rng.normal(0, 0.005)
                spread = rng.normal(0, 0.003) if effect else 0.0  # the method equals its control when no effect
                for model, value in (("m", control + effect + spread), ("m text_only", control),
                                     ("m shuffled_brain", control + rng.normal(0, 0.002))):
                    rows.append({"model": model, "seed": s, "fold": f, "subject": j, "scope": "all ROIs",
                                 "mean_r": value, "median_r": 0.0})
    return pd.DataFrame(rows)


def test_verdict_is_no_difference_when_the_method_equals_a_control_and_follows_a_planted_effect():
    same = tuning_verdict(_planted_runs(0.0), "m").set_index("against")
    assert same.loc["text_only", "verdict"] == "no difference" and same.loc["text_only", "diff"] == 0
    assert same.loc["text_only", ["n_folds", "n_seeds", "n_subjects"]].tolist() == [5, 3, 8]
    for effect, expected in ((0.02, "helped"), (-0.02, "worse")):
        verdicts = tuning_verdict(_planted_runs(effect), "m").set_index("against")
        assert (verdicts["verdict"] == expected).all(), verdicts
        assert verdicts.loc["text_only", "ci_low"] <= effect <= verdicts.loc["text_only", "ci_high"]
    # a planted effect far inside the run-to-run spread is not called
    assert tuning_verdict(_planted_runs(0.0005), "m", against="shuffled_brain")["verdict"].iloc[0] == "no difference"


def test_the_interval_resamples_folds_seeds_and_subjects():
    rng = np.random.default_rng(3)
    fold_effects = np.zeros((5, 3, 10)) + rng.normal(0, 0.02, (5, 1, 1))  # shared by the seeds of a fold
    _, low, high = effect_interval(fold_effects + 0.01)
    # runs of one fold share its block: the interval is as wide as 5 fold effects say, not as 15 independent runs
    _, low_iid, high_iid = effect_interval((fold_effects + 0.01).reshape(15, 1, 10))
    assert high - low > 1.3 * (high_iid - low_iid)
    # listeners differ: an effect that varies only across subjects has an interval as wide as they say
    by_subject = np.zeros((5, 3, 10)) + rng.normal(0.01, 0.02, 10)
    mean, low, high = effect_interval(by_subject)
    se = by_subject[0, 0].std(ddof=1) / np.sqrt(10)
    assert low < mean < high and high - low > 2 * se


def test_shuffled_brain_shifts_by_at_least_the_minimum_inside_each_training_run():
    trs = np.r_[10:110, 150:260]  # two training runs around a held-out block
    white = np.random.default_rng(0).standard_normal((len(trs), 4))  # the data allow a shift of 4 TRs
    moved, shifts = shift_within_runs(white, trs, min_shift=20, random_state=4)
    shifted = np.concatenate([np.roll(np.arange(a, b), k) for (a, b), k in zip(((0, 100), (100, 210)), shifts)])
    assert np.array_equal(moved, white[shifted])
    start = 0
    for run, k in zip((np.arange(10, 110), np.arange(150, 260)), shifts):
        n = len(run)
        assert 20 <= k <= n - 20
        block = shifted[start:start + n]
        assert set(block) == set(range(start, start + n)), "a state left its training run"
        moved = np.abs(block - np.arange(start, start + n))
        assert np.minimum(moved, n - moved).min() >= 20
        start += n
    with pytest.raises(ValueError, match="min_shift=2 is shorter than the 4 TRs"):
        shift_within_runs(white, trs, min_shift=2)


def test_controls_use_the_methods_folds_windows_and_no_held_out_tr(story, tiny_bert):
    study = _study(story, tiny_bert)
    train = study.splits[2][0]
    own, own_config, _ = study.examples("direct", "pca", train)
    for method in ("direct", "brainaligner"):
        for control in ("text_only", "shuffled_brain"):
            ex, config, _ = study.examples(method, "pca", train, control=control, shift_seed=[0, 2])
            assert np.array_equal(ex.trs, own.trs) and all(np.array_equal(a, b) for a, b in zip(ex.windows, own.windows))
            assert dataclasses.replace(config, brain_weight=1.0) == own_config
            if control == "text_only":
                assert (config.brain_weight == 0) == (method == "direct")
                assert not ex.targets.any(), "a brain number reached the text-only control"
                ridge, _, _ = study.examples(method, "ceiling", train, control=control)
                assert np.array_equal(ridge.targets, ex.targets), "text-only runs differ between compressions"
            else:
                assert not np.allclose(ex.targets, own.targets)
    # the shuffled control's tuning is untouched by the held-out block's data
    corrupted = _study(_corrupt_outside(story, train, text=True), tiny_bert)
    a, _ = study.tune_fold("direct", "pca", train, control="shuffled_brain", shift_seed=[0, 2])
    b, _ = corrupted.tune_fold("direct", "pca", train, control="shuffled_brain", shift_seed=[0, 2])
    wa, wb = tuned_weights(a), tuned_weights(b)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_repeated_runs_score_method_and_controls_on_the_same_folds(story, tiny_bert):
    study = _study(story, tiny_bert, config=dataclasses.replace(CONFIG, epochs=1))
    study.folds = [1, 2, 3]
    runs = pd.concat([study.baseline_runs([1, 3]),
                      *(study.runs("direct", "pca", seeds=[0, 1], folds=[1, 3], control=c)
                        for c in (None, "text_only", "shuffled_brain"))])
    cells = runs.groupby("model")[["fold", "seed"]].apply(lambda d: sorted(set(map(tuple, d.to_numpy()))))
    assert cells["direct/pca"] == cells["direct/pca text_only"] == cells["direct/pca shuffled_brain"] \
        == [(1, 0), (1, 1), (3, 0), (3, 1)]
    verdicts = tuning_verdict(runs, "direct/pca")
    assert set(verdicts["against"]) == {"text_only", "shuffled_brain", "pretrained"}
    assert verdicts["verdict"].isin(["helped", "no difference", "worse"]).all()
    assert "direct/pca" in tuning_verdict_text(verdicts) and "reproduced" in literature_sentence(verdicts)


def test_bad_repeat_arguments_are_one_clear_sentence(story, tiny_bert):
    study = _study(story, tiny_bert)
    with pytest.raises(ValueError, match="seeds must be a non-empty list"):
        study.runs("direct", "pca", seeds=[])
    with pytest.raises(ValueError, match="seeds must be a non-empty list"):
        study.runs("direct", "pca", seeds=[-1])
    with pytest.raises(ValueError, match="folds must be fold numbers in 0..4"):
        study.runs("direct", "pca", folds=[])
    with pytest.raises(ValueError, match="folds must be fold numbers in 0..4"):
        study.runs("direct", "pca", folds=[7])
    with pytest.raises(ValueError, match="control must be one of"):
        study.runs("direct", "pca", control="no_brain")
    with pytest.raises(ValueError, match="min_shift must be None .* or a whole number of TRs >= 1"):
        _study(story, tiny_bert, min_shift=0)


@pytest.mark.parametrize("method,tune_layers", [("direct", 1), ("brainaligner", 1), ("brainaligner", 2)])
def test_cached_frozen_layers_give_the_full_forward_pass_weights_and_features(story, tiny_bert, method, tune_layers):
    """Training and extraction on the cached lower layers' states equal the full forward pass, run after run.

    The fast study first tunes another fold and the other method (its cache then holds states of other windows,
    other masks and the same story windows), then the fold compared with the full forward pass."""
    config = dataclasses.replace(CONFIG, epochs=1, tune_layers=tune_layers)
    slow = _study(story, tiny_bert, config=config, reuse_frozen=False)
    fast = _study(story, tiny_bert, config=config)
    other = "direct" if method == "brainaligner" else "brainaligner"
    for study, runs in ((slow, [(method, 2)]), (fast, [(other, 1), (method, 1), (other, 2), (method, 2)])):
        for m, k in runs:
            tuned, _ = study.tune_fold(m, "pca", study.splits[k][0])
        study.result_ = tuned_weights(tuned), study.features(tuned, cache=False)
    assert fast.frozen.hits > 0 and slow.frozen is None
    (wa, xa), (wb, xb) = slow.result_, fast.result_
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_allclose(wb[k], wa[k], rtol=1e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(xb, xa, rtol=1e-4, atol=1e-5)
    assert not np.allclose(xb, slow.baseline_features, atol=1e-4), "tuning changed no feature"


def test_top_layer_at_the_read_positions_equals_the_full_layer_there(story, tiny_bert):
    """The tuned top layer computed at the read positions only (after its self-attention) equals the full layer.

    Unit level: the read rows equal the full forward pass (float32; the same position-wise operations on fewer
    rows, so any difference is BLAS blocking, well under 1e-5 relative); the other rows are NaN. Extraction level:
    a study's tuned features read that way equal those of the full top layer, so the extractor told the model
    exactly the positions it reads (a wrong position would read NaN)."""
    import copy

    import torch

    from encoding_kit.brain_tuning import FrozenStates, TopLayers
    from encoding_kit.brain_tuning.model import encoder_of
    from encoding_kit.features.loaded import LoadedModel

    encoder = encoder_of(tiny_bert.model).eval()
    split = encoder.config.num_hidden_layers - 1
    ids = torch.randint(5, 100, (3, 12))
    attention = torch.ones_like(ids)
    attention[1, 9:] = 0  # a padded row
    rows = torch.zeros_like(ids, dtype=torch.bool)
    rows[0, [3, 7]], rows[1, 8], rows[2, [0, 11]] = True, True, True
    with torch.no_grad():
        full = encoder(input_ids=ids, attention_mask=attention, output_hidden_states=True).hidden_states[-1]
        top = TopLayers(copy.deepcopy(encoder), FrozenStates(encoder), split).eval()
        fast = top(ids, attention, read_positions=rows).hidden_states[-1]
    np.testing.assert_allclose(fast[rows].numpy(), full[rows].numpy(), rtol=1e-5, atol=1e-6)
    assert torch.isnan(fast[~rows]).all()

    study = _study(story, tiny_bert, config=dataclasses.replace(CONFIG, epochs=1, tune_layers=1))
    tuned, _ = study.tune_fold("direct", "pca", study.splits[2][0])
    assert tuned.model.computes_read_positions_only
    whole = LoadedModel(TopLayers(tuned.model.tuned_encoder, study.frozen, tuned.model.split,
                                  read_positions_only=False).eval(), tuned.processor, tuned.name, "tuned", tuned.family)
    fast, slow = study.features(tuned, cache=False), study.features(whole, cache=False)
    assert np.isfinite(fast).all()
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-6)


def test_the_pretrained_pass_records_the_frozen_states_a_fresh_computation_gives(story, tiny_bert):
    """The story windows' frozen states recorded by the pretrained model's extraction are what a fresh pass gives.

    The study's set-up extracts the pretrained features while recording: the tuned model's extraction then runs
    no lower layer (no miss) and its features equal those read from freshly computed states. Unit level: a
    recorded batch is read back at its own split only (another split is computed), equal to a fresh computation,
    and a pass in train mode (dropout) is not recorded."""
    import torch

    from encoding_kit.brain_tuning import FrozenStates, TopLayers
    from encoding_kit.brain_tuning.model import encoder_of
    from encoding_kit.features.loaded import LoadedModel

    study = _study(story, tiny_bert, config=dataclasses.replace(CONFIG, epochs=1, tune_layers=1))
    assert study.frozen.nbytes > 0 and study.frozen.misses == 0
    tuned, _ = study.tune_fold("direct", "pca", study.splits[2][0])
    misses = study.frozen.misses
    recorded = study.features(tuned, cache=False)
    assert study.frozen.misses == misses, "the tuned extraction recomputed story windows the set-up had recorded"
    encoder = encoder_of(study.loaded.model)
    fresh = FrozenStates(encoder)
    top = TopLayers(tuned.model.tuned_encoder, fresh, tuned.model.split).eval()
    again = study.features(LoadedModel(top, tuned.processor, tuned.name, "tuned", tuned.family), cache=False)
    assert fresh.misses > 0 and fresh.hits == 0
    np.testing.assert_allclose(recorded, again, rtol=1e-6, atol=1e-7)

    split = encoder.config.num_hidden_layers - 1
    ids = torch.randint(5, 100, (3, 12))
    attention = torch.ones_like(ids)
    attention[1, 9:] = 0
    store = FrozenStates(encoder)
    with torch.no_grad(), store.recording(split):
        encoder.eval()(input_ids=ids, attention_mask=attention)
    for at in (split, split - 1):
        got, hits = store(ids, attention, at), store.hits
        np.testing.assert_allclose(got.numpy(), FrozenStates(encoder)(ids, attention, at).numpy(), rtol=1e-6,
                                   atol=1e-7, err_msg=f"split {at}")
        assert hits == 1, f"split {at}: {'a miss at the recorded split' if at == split else 'read at another split'}"
    dropout = FrozenStates(encoder)
    try:
        with torch.no_grad(), dropout.recording(split):
            encoder.train()(input_ids=ids, attention_mask=attention)
    finally:
        encoder.eval()
    assert dropout.nbytes == 0, "a pass with dropout on was recorded"
