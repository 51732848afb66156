"""Layer and parameter sweeps as a notebook cell calls them: features of every layer, then held-out r per layer.

Each notebook cell calls one of these, so the notebooks stay a few lines per
cell and share one implementation (no copy-pasted pipelines).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..encoding.evaluate import evaluate_encoding
from ..features.audio import MOVED as AUDIO_MOVED
from ..features.audio import extract_audio_features
from ..features.extraction_run import accepts_moved_keywords
from ..features.families import family_of
from ..features.models import load_model
from ..features.text import MOVED as TEXT_MOVED
from ..features.text import extract_text_features, text_features_to_trs
from ..features.whisper_decoder import whisper_decoder_features
from ..features.whisper_input import WHISPER_DEFAULT


@accepts_moved_keywords(*TEXT_MOVED)
def text_layers(story, model, layers=None, context_tokens=200, mode="exact", word_pooling="last",
                tr_pooling="mean", run=None, **kwargs):
    """TR-level features of a text model for each layer: {layer: (n_trs, dim)}.

    Strided mode is used automatically only when asked; a stand-in is used (with a banner) when the model is
    unavailable offline. ``run`` (an :class:`~encoding_kit.features.extraction_run.ExtractionRun`) says how the
    extraction runs; ``kwargs`` are the other options of :func:`~encoding_kit.features.text.extract_text_features`
    (``stride``, ``transcript``, ``normalize_apostrophes``, ``tokenizer``).
    """
    loaded = load_model(model, allow_standin=True) if isinstance(model, str) else model
    words = extract_text_features(story.words, loaded, layers=layers, context_tokens=context_tokens, mode=mode,
                                  word_pooling=word_pooling, run=run, **kwargs)
    return text_features_to_trs(words, story.words, story.n_trs, tr_pooling)


@accepts_moved_keywords(*AUDIO_MOVED)
def audio_layers(story, model, layers=None, window_trs=2, frame_pooling="mean", whisper_input=WHISPER_DEFAULT,
                 run=None):
    """TR-level features of an audio model for each layer: {layer: (n_trs, dim)}.

    ``whisper_input`` applies to Whisper models only and is ignored for the others (they read the default), so a
    notebook parameter (``WHISPER_INPUT``, set by the laptop profile) can be passed whatever the model. ``run``
    (an :class:`~encoding_kit.features.extraction_run.ExtractionRun`) says how the extraction runs.
    """
    loaded = load_model(model, allow_standin=True) if isinstance(model, str) else model
    if not family_of(loaded).input_options:
        whisper_input = WHISPER_DEFAULT
    return extract_audio_features(story.wav, story.sr, story.n_trs, loaded, layers=layers, window_trs=window_trs,
                                  frame_pooling=frame_pooling, timebase=story.timebase, whisper_input=whisper_input,
                                  run=run)


@accepts_moved_keywords(*AUDIO_MOVED)
def decoder_layers(story, model, layers=None, window_trs=2, token_pooling="tr", whisper_input=WHISPER_DEFAULT,
                   tokenizer=None, run=None):
    """TR-level features of Whisper's decoder for each layer: {layer: (n_trs, dim)}.

    The decoder reads each TR window's words while hearing its audio
    (:func:`encoding_kit.features.whisper_decoder.whisper_decoder_features`); with the cache on, the
    encoder features of the same pass are stored too, so :func:`audio_layers` with the same window is free after it.
    ``tokenizer`` as in :func:`~encoding_kit.features.whisper_decoder.whisper_decoder_features`; ``run`` (an
    :class:`~encoding_kit.features.extraction_run.ExtractionRun`) says how the extraction runs.
    """
    loaded = load_model(model, allow_standin=True) if isinstance(model, str) else model
    return whisper_decoder_features(story.wav, story.sr, story.words, story.n_trs, loaded, layers=layers,
                                    window_trs=window_trs, token_pooling=token_pooling, whisper_input=whisper_input,
                                    tokenizer=tokenizer, timebase=story.timebase, run=run)


DEEP_LAYERS = 13
"""A layer sweep over more hidden states than this (a base-size checkpoint has 13; the demo's SmolLM2-135M stand-in
31) takes ``deep_every`` as its step (the demo run's trim, :data:`encoding_kit.run.profiles.DEMO`)."""


def layer_step(n_layers, every=1, deep_every=1):
    """The layer step of a sweep over ``n_layers`` hidden states: ``deep_every`` for a deep model when larger."""
    return max(every, deep_every) if n_layers > DEEP_LAYERS else every


def layer_sweep(features, story, model_name, ceiling=None, pca=None, every=1, deep_every=1, **kwargs):
    """Evaluate every layer; one tidy row per layer and subject.

    Parameters
    ----------
    features : dict {layer: array (n_trs, dim)}
    story : Story
    model_name : str
    ceiling : array (n_subjects, 360), optional
    pca : int, optional
        In-fold PCA (useful for wide layers on a laptop).
    every : int
        Evaluate every ``every``-th layer (and always the last), for quick runs.
    deep_every : int
        The step for a model with more than :data:`DEEP_LAYERS` hidden states, when larger than ``every``
        (the demo run's trim sets 2).

    Returns
    -------
    table : DataFrame
        Columns model, layer, subject, mean_r (ROI mean), norm_r (ROI-mean of
        r / ceiling), and one column per ROI group.
    results : dict {layer: EncodingResult}

    Examples
    --------
    Two "layers" of a toy model (the envelope, and the envelope with noise):

    >>> import numpy as np, utils
    >>> story = utils.load_story()
    >>> envelope = utils.audio_features(story.wav, story.sr, story.n_trs)["envelope"]
    >>> noisy = envelope + np.random.default_rng(0).standard_normal(envelope.shape)
    >>> table, results = utils.layer_sweep({0: envelope, 1: noisy}, story, "toy", cv=3)
    >>> print(table[["model", "layer", "subject"]].head(3).to_string(index=False))
    model  layer  subject
      toy      0        1
      toy      0        2
      toy      0        3
    >>> sorted(results)
    [0, 1]
    """
    from ..core.progress import tqdm

    rows, results = [], {}
    layers = list(features)
    every = layer_step(len(layers), every, deep_every)
    chosen = [k for i, k in enumerate(layers) if i % every == 0 or k == layers[-1]]
    for layer in tqdm(chosen, desc=f"{model_name} layers", leave=False):
        X = features[layer]
        res = evaluate_encoding(X, story.fmri, pca=pca, progress=False, **kwargs)
        results[layer] = res
        per_subject = res.roi_mean_r()
        norm = np.nanmean(res.normalized(ceiling), axis=1) if ceiling is not None else np.full(len(per_subject), np.nan)
        for s, subject in enumerate(res.subjects):
            rows.append({"model": model_name, "layer": layer, "subject": subject, "mean_r": per_subject[s],
                         "norm_r": norm[s]})
    return pd.DataFrame(rows), results




















def sweep_point(X, story, pca=None, **labels):
    """Score one setting of a sweep: one row per subject with its ROI-mean r.

    Parameters
    ----------
    X : array of shape (n_trs, n_features)
    story : Story
    pca : int, optional
        In-fold PCA of wider features.
    **labels
        The setting (e.g. ``context_tokens=200``), repeated on every row.

    Returns
    -------
    DataFrame with the label columns, ``subject`` and ``mean_r``

    Examples
    --------
    >>> import utils
    >>> story = utils.load_story()
    >>> X = utils.audio_features(story.wav, story.sr, story.n_trs)["log_mel"]
    >>> rows = utils.sweep_point(X, story, n_mels=32, n_folds=3)
    >>> list(rows.columns)
    ['n_mels', 'n_folds', 'subject', 'mean_r']
    """
    res = evaluate_encoding(X, story.fmri, pca=pca, progress=False)
    return pd.DataFrame({**labels, "subject": res.subjects, "mean_r": res.roi_mean_r()})


