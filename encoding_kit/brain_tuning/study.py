"""Brain-tuned vs pretrained text features, scored exactly like the baseline on the kit's outer folds.

For each chosen outer fold k (the blocks of :func:`~encoding_kit.encoding.evaluate.evaluate_encoding`):

1. the brain state is compressed (:class:`.compress.BrainCompressor`) from the
   fold's training TRs (the gapped complement of the held-out block);
2. a copy of the pretrained model is fine-tuned on the training TRs' text
   windows and states (:func:`.windows.training_examples`, :func:`.train.tune_encoder`);
3. the tuned model's features of the whole story (text only) go through the
   same per-ROI ridge as the pretrained model's, scored on block k only
   (``evaluate_encoding(..., folds=[k])``): the features of a model tuned on
   fold k's training TRs are not valid on any other block, which fold k's
   training TRs contain.

The pretrained baseline is scored on the same blocks. ``leak=True`` tunes on
every TR, held-out blocks included: the mistake, kept to show what it does.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..analysis.stats import fisher_mean, noise_ceiling
from ..encoding.cv import DEFAULT_DELAYS, gapped_splits, trimmed_indices
from ..encoding.evaluate import DEFAULT_TRIM, check_folds, evaluate_encoding
from ..encoding.results import EncodingResult
from ..features.models import load_model
from .compress import BrainCompressor
from .train import TuningConfig, tune_encoder
from .windows import training_examples


class BrainTuningStudy:
    """Tune one text model on brain data fold by fold and score it against the pretrained model.

    Parameters
    ----------
    story : Story
        From :func:`encoding_kit.data.story.load_story`.
    model : str or LoadedModel
        A BERT-style encoder (``load_model(..., allow_standin=True)`` for names).
    folds : sequence of int
        Outer folds tuned and scored (each tuning costs one fine-tuning run).
    layer : int, optional
        Hidden-state layer whose features are scored; default the last.
    n_state : int
        Size of the compressed brain state.
    tune_subjects : list, optional
        Subjects whose mean response tunes the model; default all. Every
        subject is scored.
    config : TuningConfig, optional
    pca : int, optional
        In-fold PCA of the features in the ridge (as in the other notebooks).
    n_folds, delays, trim : as in :func:`~encoding_kit.encoding.evaluate.evaluate_encoding`
    ridge_shifts : int
        Circular shifts of the ``"ridge"`` compression's ROI selection.
    cache : bool
        Tuned weights, features and encoding results cached by content.
    progress : bool
    """

    def __init__(self, story, model, folds=(2,), layer=None, n_state=16, tune_subjects=None, config=None, pca=None,
                 n_folds=5, delays=DEFAULT_DELAYS, trim=DEFAULT_TRIM, ridge_shifts=200, cache=True, progress=True):
        self.story, self.n_state, self.pca, self.cache, self.progress = story, n_state, pca, cache, progress
        self.loaded = load_model(model, allow_standin=True) if isinstance(model, str) else model
        self.config = config or TuningConfig()
        self.delays, self.trim, self.n_folds, self.ridge_shifts = tuple(delays), tuple(trim), n_folds, ridge_shifts
        n_layers = self.loaded.model.config.num_hidden_layers
        self.layer = n_layers if layer is None else int(layer)
        self.keep = trimmed_indices(story.n_trs, trim)
        self.splits = gapped_splits(self.keep, n_folds, max(self.delays))
        self.folds = check_folds(folds, n_folds)
        self.subjects = list(story.fmri)
        self.tune_subjects = self._check_tune_subjects(tune_subjects)
        self.target = np.mean([story.fmri[s] for s in self.tune_subjects], axis=0)
        self.baseline_features = self.features(self.loaded)
        self.ceiling = noise_ceiling(story.fmri, blocks=[self.splits[k][1] for k in self.folds])
        self.results, self.compressors = {}, {}
        self._tokens = None

    def _check_tune_subjects(self, tune_subjects):
        if tune_subjects is None:
            return list(self.subjects)
        chosen = [tune_subjects] if isinstance(tune_subjects, (str, int)) else list(tune_subjects)
        unknown = [s for s in chosen if s not in self.story.fmri]
        if unknown or not chosen:
            raise ValueError(f"tune_subjects must name subjects of the data ({', '.join(map(str, self.subjects))}); "
                             f"found {unknown or 'none'}")
        return chosen

    def features(self, loaded):
        """TR-level features of ``loaded`` at the study's layer, array (n_trs, hidden), the baseline's way."""
        from ..run.sweeps import text_layers

        return text_layers(self.story, loaded, layers=[self.layer], context_tokens=self.config.context_tokens,
                           mode="tr", progress=False)[self.layer]

    def evaluate(self, features_by_fold):
        """Score fold-specific features on their own held-out block; one EncodingResult over the folds.

        Parameters
        ----------
        features_by_fold : dict {fold: array (n_trs, n_features)}
        """
        parts = [evaluate_encoding(X, self.story.fmri, delays=self.delays, n_folds=self.n_folds, pca=self.pca,
                                   trim=self.trim, folds=[k], progress=False, cache=self.cache)
                 for k, X in sorted(features_by_fold.items())]
        return combine_folds(parts)

    def baseline(self):
        """The pretrained model's features, scored on the study's folds."""
        if "pretrained" not in self.results:
            self.results["pretrained"] = self.evaluate(dict.fromkeys(self.folds, self.baseline_features))
        return self.results["pretrained"]

    def tuned(self, method, compression, mask_rate=None, leak=False):
        """Tune on each study fold's training TRs (every TR with ``leak``) and score the tuned features.

        Parameters
        ----------
        method : {"brainaligner", "direct"}
        compression : {"ceiling", "ridge", "pca", "brainlm"}
        mask_rate : float, optional
            Overrides the config's MLM mask rate.
        leak : bool
            Tune on all TRs, the held-out blocks included (the mistake).

        Returns
        -------
        EncodingResult
            ``params`` records method, compression, mask_rate and leak.
        """
        config = self.config if mask_rate is None else dataclasses.replace(self.config, mask_rate=float(mask_rate))
        key = (method, compression, config.mask_rate, bool(leak))
        if key in self.results:
            return self.results[key]
        features = {}
        for k in self.folds:
            train = self.keep if leak else self.splits[k][0]
            tuned, compressor = self.tune_fold(method, compression, train, config, f"{compression} fold {k}"
                                               + (" ALL TRs" if leak else ""))
            self.compressors[(*key, k)] = compressor
            features[k] = self.features(tuned)
        result = self.evaluate(features)
        result.params.update(method=method, compression=compression, mask_rate=config.mask_rate, leak=bool(leak))
        self.results[key] = result
        return result

    def tune_fold(self, method, compression, train, config=None, label=""):
        """Compress and tune on the TRs ``train`` only; (tuned LoadedModel, fitted BrainCompressor)."""
        config = config or self.config
        train = np.asarray(train, dtype=int)
        compressor = BrainCompressor(compression, self.n_state, n_shifts=self.ridge_shifts, delays=self.delays,
                                     pca=self.pca)
        fmri_train = np.stack([self.story.fmri[s][train] for s in self.subjects])
        compressor.fit(self.target[train], train, fmri_train=fmri_train, X=self.baseline_features)
        examples = training_examples(self.tokens(), self.story.words["tr"].to_numpy(), train,
                                     compressor.transform(self.target[train]), self.delays, config.context_tokens)
        tuned = tune_encoder(self.loaded, examples, method, config, cache=self.cache, label=label,
                             progress=self.progress)
        return tuned, compressor

    def tokens(self):
        """The story tokenized once with the model's tokenizer (tokenless words filled)."""
        if self._tokens is None:
            from ..features.text import tokenize_story
            from ..features.text_windows import fill_tokenless_words

            self._tokens = tokenize_story(list(self.story.words["word"]), self.loaded.processor)
            if (self._tokens.word_last < 0).any():
                fill_tokenless_words(self._tokens)
        return self._tokens


def combine_folds(parts):
    """One EncodingResult from results that each scored some outer folds (Fisher-z mean over all of them)."""
    r_folds = np.concatenate([p.r_folds for p in parts])
    with np.errstate(invalid="ignore"):
        r2 = np.nanmean(np.stack([p.r2 for p in parts]), axis=0)
    first = parts[0]
    params = {**first.params, "folds": sorted(k for p in parts for k in p.params.get("folds", []))}
    return EncodingResult(r=fisher_mean(r_folds, axis=0), r_folds=r_folds, r2=r2,
                          alphas=np.concatenate([p.alphas for p in parts]), subjects=first.subjects,
                          roi_names=first.roi_names, test_trs=np.concatenate([p.test_trs for p in parts]),
                          params=params)
