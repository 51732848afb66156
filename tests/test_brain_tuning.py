"""Brain tuning (notebook 08): held-out TRs never reach tuning, the three compressions, the leak contrast, bad input.

Fast: a tiny random BERT (``standin("random-bert")``) and small synthetic or demo data.
"""

import dataclasses
import warnings

import numpy as np
import pytest

from encoding_kit.brain_tuning import (
    BrainCompressor,
    BrainTuningStudy,
    TuningConfig,
    check_mlm_model,
    leak_table,
    training_examples,
    tuned_weights,
)
from encoding_kit.data.story import load_story
from encoding_kit.demo.generate import make_demo_dataset
from encoding_kit.encoding.evaluate import evaluate_encoding
from encoding_kit.features.models import standin

CONFIG = TuningConfig(epochs=2, batch_size=8, context_tokens=24, tune_layers=2)


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
    one = evaluate_encoding(X, story.fmri, folds=[3], progress=False, cache=False)
    assert one.r_folds.shape[0] == 1 and np.allclose(one.r_folds[0], full.r_folds[3], equal_nan=True)
    with pytest.raises(ValueError, match="folds must be outer fold numbers in 0..4"):
        evaluate_encoding(X, story.fmri, folds=[5], progress=False, cache=False)


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
