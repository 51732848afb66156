"""Noise ceiling, circular-shift significance, FDR, fusion, nonlinear encoders, decoding."""

import numpy as np
import pandas as pd
import pytest

from encoding_kit.analysis.stats import (
    circular_shift_pvalues,
    columnwise_r,
    fdr_bh,
    fisher_mean,
    group_significance,
    loso_isc,
    noise_ceiling,
    normalized_r,
)
from encoding_kit.data.rois import roi_table
from encoding_kit.decoding.linear import evaluate_decoding, identification_accuracy
from encoding_kit.encoding.cv import make_delays
from encoding_kit.encoding.evaluate import evaluate_encoding
from encoding_kit.encoding.fusion import evaluate_fusion, variance_partitioning
from encoding_kit.encoding.nonlinear import LagAttentionFitter, MLPFitter, lag_attention_table
from encoding_kit.encoding.results import EncodingResult


def ar1(n, phi, rng, cols=1):
    x = rng.standard_normal((n, cols))
    for t in range(1, n):
        x[t] += phi * x[t - 1]
    return x


def test_loso_isc_matches_the_known_isc():
    rng = np.random.default_rng(0)
    n_subj, n = 20, 4000
    signal = rng.standard_normal((n, 2)) * [1.0, 0.0]
    fmri = {s: signal + rng.standard_normal((n, 2)) for s in range(n_subj)}
    isc = loso_isc(fmri)
    # signal var 1, noise var 1, 19 others: isc = 1 / sqrt(2 * (1 + 1/19)), below r(subject, signal) = 1 / sqrt(2)
    assert isc.shape == (20, 2)
    assert np.mean(isc[:, 0]) == pytest.approx(1 / np.sqrt(2 * (1 + 1 / 19)), abs=0.02)
    assert abs(np.mean(isc[:, 1])) < 0.02
    assert np.isnan(normalized_r(np.array([0.1]), np.array([0.01])))[0]


def shared_signal_subjects(rho, n_subj=25, n=2249, phi=0.5, slow=False, seed=0):
    """Subjects = gain * signal + AR(1) noise with r(subject, signal) = rho per column; returns (signal, fmri)."""
    rng = np.random.default_rng(seed)
    rho = np.asarray(rho, float)
    signal = ar1(n, 0.98 if slow else phi, rng, rho.size)
    signal = (signal - signal.mean(0)) / signal.std(0)
    fmri = {}
    for s in range(n_subj):
        noise = ar1(n, phi, rng, rho.size)
        noise = (noise - noise.mean(0)) / noise.std(0)
        variance = np.where(rho > 0, 1 / np.maximum(rho, 1e-9) ** 2 - 1, 1.0)
        fmri[s] = np.where(rho > 0, 1.0, 0.0) * signal + np.sqrt(variance) * noise
    return signal, fmri


def test_a_perfect_model_scores_one_and_a_half_as_good_model_one_half():
    """The ceiling estimates r(subject, shared signal); the LOSO ISC underestimates it and inflated r / ceiling."""
    rho = np.repeat([0.2, 0.3, 0.5, 0.0], 15)
    signal, fmri = shared_signal_subjects(rho)
    ceiling = noise_ceiling(fmri)
    rng = np.random.default_rng(9)
    half = signal + np.sqrt(3) * rng.standard_normal(signal.shape)  # r(half, signal) = 0.5
    perfect_r = np.stack([columnwise_r(signal, y) for y in fmri.values()])
    half_r = np.stack([columnwise_r(half, y) for y in fmri.values()])
    for value in (0.2, 0.3, 0.5):
        cols = rho == value
        assert np.nanmean(normalized_r(perfect_r, ceiling)[:, cols]) == pytest.approx(1.0, abs=0.05)
        assert np.nanmean(normalized_r(half_r, ceiling)[:, cols]) == pytest.approx(0.5, abs=0.04)
        assert np.mean(ceiling[:, cols]) == pytest.approx(value, rel=0.05)
    low = rho == 0.2  # what the leave-one-subject-out ISC reported: a perfect model above 1
    assert np.mean(perfect_r[:, low] / loso_isc(fmri)[:, low]) > 1.3
    assert np.isnan(ceiling[:, rho == 0]).all()  # no shared signal: no ceiling (not a noisy small number)
    two = noise_ceiling({s: fmri[s] for s in (0, 1)})  # one pair: sqrt(r_12)
    np.testing.assert_allclose(two[0], np.sqrt(np.where(columnwise_r(fmri[0], fmri[1]) > 0,
                                                        columnwise_r(fmri[0], fmri[1]), np.nan)))


def test_ceiling_is_scored_on_the_folds_like_the_model():
    """Held-out r is a Fisher mean over folds; a ceiling from all TRs keeps the slow variance between folds."""
    rho = np.full(10, 0.4)
    signal, fmri = shared_signal_subjects(rho, n_subj=12, n=1500, slow=True, seed=1)
    blocks = np.array_split(np.arange(1500), 5)
    perfect_r = np.stack([fisher_mean(np.array([columnwise_r(signal[b], y[b]) for b in blocks]))
                          for y in fmri.values()])
    by_fold = noise_ceiling(fmri, blocks=blocks)
    assert np.mean(perfect_r / by_fold) == pytest.approx(1.0, abs=0.05)
    assert np.mean(perfect_r / noise_ceiling(fmri)) < 0.95  # the mismatch the blocks remove


def test_noise_ceiling_rarely_finds_signal_in_autocorrelated_noise():
    _, fmri = shared_signal_subjects(np.zeros(400), n_subj=25, n=1000, phi=0.8, seed=2)
    assert np.isfinite(noise_ceiling(fmri)).any(0).mean() < 0.01


def test_circular_shift_null_is_calibrated_on_autocorrelated_noise():
    rng = np.random.default_rng(1)
    pred = ar1(600, 0.8, rng, 400)
    y = ar1(600, 0.8, rng, 400)
    _, p = circular_shift_pvalues(pred, y, n_shifts=1000)
    assert 0.02 < np.mean(p < 0.05) < 0.09
    # Naive parametric p-values ignore autocorrelation and flag far more.
    from scipy import stats
    r = np.array([stats.pearsonr(pred[:, i], y[:, i])[0] for i in range(400)])
    naive_p = 2 * stats.norm.sf(np.abs(np.arctanh(r)) * np.sqrt(600 - 3))
    assert np.mean(naive_p < 0.05) > 2 * np.mean(p < 0.05)
    _, p_signal = circular_shift_pvalues(pred[:, :5], pred[:, :5] + 0.5 * y[:, :5])
    assert np.all(p_signal < 0.01)


def test_group_significance_and_fdr():
    rng = np.random.default_rng(2)
    r = rng.normal(0, 0.05, (25, 100))
    r[:, :10] += 0.3
    out = group_significance(r)
    assert out["significant"][:10].all() and out["significant"][10:].sum() <= 3
    assert np.all(out["q"] >= out["p"] - 1e-12)
    np.testing.assert_allclose(fdr_bh([0.01, 0.04, 0.03, np.nan]), [0.03, 0.04, 0.04, np.nan])


def two_spaces(n=500, seed=3):
    rng = np.random.default_rng(seed)
    A, B = rng.standard_normal((n, 4)), rng.standard_normal((n, 6))
    dA = make_delays(A, (1,)) @ rng.standard_normal((4, 2))
    fmri = {1: dA + 0.7 * rng.standard_normal((n, 2)), 2: dA + 0.7 * rng.standard_normal((n, 2))}
    return {"audio": A, "text": B}, fmri


def test_banded_ridge_and_partitioning_find_the_space_with_the_signal():
    spaces, fmri = two_spaces()
    res = evaluate_fusion(spaces, fmri, method="banded", delays=(1,), progress=False)
    assert np.all(res.r > 0.6) and res.params["spaces"] == ["audio", "text"]
    concat = evaluate_fusion(spaces, fmri, method="concat", delays=(1,), progress=False)
    assert np.all(concat.r > 0.6)
    reduced = evaluate_fusion(spaces, fmri, method="banded", delays=(1,), pca=3, n_iter=5, progress=False)
    assert np.all(reduced.r > 0.5)  # per-space PCA keeps the bands apart
    table = variance_partitioning(spaces, fmri, delays=(1,), progress=False)
    assert (table["unique_audio"] > 0.3).all() and (table["unique_text"].abs() < 0.05).all()
    assert (table["r2_text"] < 0.05).all()


def test_mlp_and_lag_attention_learn_and_attend_to_the_planted_lag():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((700, 3))
    y = np.zeros((700, 2))
    y[3:] = X[:-3] @ rng.standard_normal((3, 2))  # everything happens at lag 3
    fmri = {1: y + 0.5 * rng.standard_normal(y.shape)}
    mlp = evaluate_encoding(X, fmri, fitter=MLPFitter(hidden=32, max_epochs=150), progress=False)
    assert np.all(mlp.r > 0.5)
    att = LagAttentionFitter(n_lags=4, hidden=16, max_epochs=200, lr=3e-3)
    res = evaluate_encoding(X, fmri, fitter=att, progress=False)
    assert np.all(res.r > 0.5)
    weights = att.attention()
    assert weights.shape == (2, 4) and np.allclose(weights.sum(1), 1, atol=1e-5)
    assert np.all(weights.argmax(1) == 2)  # delays (1, 2, 3, 4): lag 3 is index 2


def test_lag_attention_fused_step_equals_plain_autograd():
    # the network's forward and backward are written out by hand (nonlinear._lag_mix_function): the output and
    # every parameter's gradient must equal autograd through the attention and a weighted sum
    import torch

    from encoding_kit.encoding.nonlinear import _lag_attention_module

    torch.manual_seed(0)
    net = _lag_attention_module(4, 5, 7, 6).double()
    with torch.no_grad():
        net.lag_logit.normal_()  # lags of unequal weight, as after training
    x, y = torch.randn(30, 20, dtype=torch.float64), torch.randn(30, 7, dtype=torch.float64)

    def plain(x):
        lags, weights = net.attention(x)
        return (weights * torch.matmul(net.value(lags).transpose(0, 1), net.readout.T)).sum(0) + net.bias

    grads = []
    for forward in (net, plain):
        net.zero_grad()
        out = forward(x)
        ((out - y) ** 2).mean().backward()
        grads.append([out.detach().clone()] + [p.grad.clone() for p in net.parameters()])
    for fused, reference in zip(*grads):
        np.testing.assert_allclose(fused.numpy(), reference.numpy(), rtol=1e-10, atol=1e-12)


def test_lag_attention_finds_the_lag_of_driven_targets_among_noise_targets():
    # 4 targets driven at lag 3 among 12 pure-noise targets, as in a brain where most ROIs are unpredictable
    rng = np.random.default_rng(6)
    X = ar1(900, 0.3, rng, 3)
    y = rng.standard_normal((900, 16))
    y[3:, :4] += 2 * X[:-3] @ rng.standard_normal((3, 4))
    att = LagAttentionFitter(n_lags=4, hidden=16, max_epochs=150)
    evaluate_encoding(X, {1: y}, fitter=att, progress=False)
    weights = att.attention()
    assert np.all(weights[:4].argmax(1) == 2)  # delays (1, 2, 3, 4): lag 3 is index 2
    assert weights[:4, 2].mean() > weights[4:, 2].mean() + 0.15


def test_lag_attention_table_subtracts_the_unpredicted_rois():
    driven = (roi_table()["group"] == "early_auditory").to_numpy()

    class Fitted:  # stands for a fitted LagAttentionFitter: 2 subjects x 360 ROIs, 4 lags
        def attention(self):
            w = np.tile([0.4, 0.1, 0.1, 0.4], (2, 360, 1))  # what noise fitting gives
            w[:, driven] = [0.1, 0.1, 0.6, 0.2]  # early auditory driven at lag 3
            return w.reshape(720, 4)

    r = np.where(driven, 0.3, 0.0) * np.ones((2, 1))
    result = EncodingResult(r=r, r_folds=r[None], r2=r, alphas=r[None], subjects=[1, 2],
                                  roi_names=[str(i) for i in range(360)], test_trs=np.arange(5))
    table = lag_attention_table(Fitted(), result)
    reference = table[table["group"].str.startswith("reference")]
    assert reference["n_rois"].iloc[0] == 360 - driven.sum() and np.allclose(reference["shift"], 0)
    assert list(reference["lag_s"]) == [1.5, 3.0, 4.5, 6.0]
    auditory = table[table["group"] == "early_auditory"]
    assert np.allclose(auditory["shift"], [-0.3, 0.0, 0.5, -0.2])
    assert np.allclose(table[table["group"] == "language"]["shift"], 0)


def test_identification_and_decoding_beat_chance():
    rng = np.random.default_rng(5)
    true = rng.standard_normal((100, 3))
    perfect = identification_accuracy(true, true, segment_trs=10)
    assert perfect["top1"] == 1.0 and perfect["n_segments"] == 10
    X = ar1(800, 0.5, rng, 6)
    brain = make_delays(X, (2,)) @ rng.standard_normal((6, 30)) + 0.5 * rng.standard_normal((800, 30))
    table = evaluate_decoding(X, {1: brain}, n_components=4, progress=False)
    assert table["top1"].mean() > 3 * table["chance_top1"].mean()
    assert table["r"].mean() > 0.5


def test_decoding_table_is_cached_by_inputs_and_settings(tmp_path, monkeypatch):
    import encoding_kit.decoding.linear as decoding

    monkeypatch.setenv("KIT_FEATURE_DIR", str(tmp_path))
    rng = np.random.default_rng(6)
    X = ar1(300, 0.5, rng, 4)
    brains = {"sub-01": rng.standard_normal((300, 8)), 2: rng.standard_normal((300, 8))}
    first = evaluate_decoding(X, brains, n_components=3, progress=False)
    assert len(list(tmp_path.glob("decoding-*.csv"))) == 1
    monkeypatch.setattr(decoding, "fold_predictions", lambda *a, **k: (_ for _ in ()).throw(AssertionError("refit")))
    again = evaluate_decoding(X, brains, n_components=3, progress=False)
    pd.testing.assert_frame_equal(first, again, check_exact=False, rtol=1e-12)
    assert list(again["subject"].unique()) == ["sub-01", 2]  # the caller's keys, not their text
    for changed in (dict(n_components=2), dict(segment_trs=5), dict(cache=True, X=X + 1)):
        with pytest.raises(AssertionError, match="refit"):
            evaluate_decoding(changed.pop("X", X), brains, progress=False, **{"n_components": 3, **changed})
    with pytest.raises(AssertionError, match="refit"):
        evaluate_decoding(X, {**brains, 2: brains[2] + 1}, n_components=3, progress=False)


def test_noise_ceilings_at_several_evidence_levels_equal_one_call_each():
    """One pass over the pairwise ISCs gives each level's ceiling (brain tuning's compression asks for two)."""
    from encoding_kit.analysis.stats import noise_ceiling, noise_ceilings

    rng = np.random.default_rng(3)
    signal = rng.standard_normal((300, 1)) * np.linspace(0, 0.6, 40)  # ROIs from no shared signal to a strong one
    fmri = np.stack([signal + rng.standard_normal((300, 40)) for _ in range(6)])
    blocks = [np.arange(0, 140), np.arange(160, 300)]
    for kwargs in ({}, {"blocks": blocks}):
        strict, lenient = noise_ceilings(fmri, (3.0, 0.0), **kwargs)
        np.testing.assert_array_equal(strict, noise_ceiling(fmri, min_z=3.0, **kwargs))
        np.testing.assert_array_equal(lenient, noise_ceiling(fmri, min_z=0.0, **kwargs))
        assert np.isnan(strict).sum() > np.isnan(lenient).sum()
