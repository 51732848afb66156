"""Brain-tuned vs pretrained text features, scored exactly like the baseline on the kit's outer folds.

For each chosen outer fold k (the blocks of :func:`~encoding_kit.encoding.evaluate.evaluate_encoding`):

1. the brain state is compressed (:class:`.compress.BrainCompressor`) from the
   fold's training TRs (the gapped complement of the held-out block);
2. a copy of the pretrained model is fine-tuned on the training TRs' text
   windows and states (:func:`.windows.training_examples`, :func:`.train.tune_encoder`);
3. the tuned model's features of the whole story (text only) go through the
   same per-ROI ridge as the pretrained model's, scored on block k only
   (``evaluate_encoding(..., cv=GappedKFold(..., folds=[k]))``): the features of a model tuned on
   fold k's training TRs are not valid on any other block, which fold k's
   training TRs contain.

The pretrained baseline is scored on the same blocks. ``leak=True`` tunes on
every TR, held-out blocks included: the mistake, kept to show what it does.

Repeated runs (:meth:`BrainTuningStudy.runs`): one run is one seed on one
outer fold; the controls of :mod:`.controls` run on exactly the same folds,
windows, epochs, compression, head and seeds (a method and its controls with
the same seed draw the same masks, batch order and new-head initialisation).
Each run's held-out r is cached by the run's content (the tuned weights' key),
so a re-run reuses it; :mod:`.verdict` turns the runs into intervals and verdicts.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pandas as pd

from ..analysis.stats import noise_ceiling, quiet_nan_warnings
from ..core.storage import FeatureCache, hash_array
from ..encoding.cv import DEFAULT_DELAYS, check_fold_subset
from ..encoding.evaluate import evaluate_encoding
from ..features.extraction_run import ExtractionRun
from ..features.models import load_model
from .compress import BrainCompressor
from .controls import autocorrelation_min_shift, check_control, check_min_shift, check_seeds, controlled
from .folds import combine_folds, outer_folds, study_splitter
from .frozen import FrozenStates, TopLayers
from .model import encoder_of
from .report import planted_classes
from .train import TuningConfig, tune_encoder, tuning_key
from .windows import inner_validation_split, training_examples


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
    cv : None, int or GappedKFold
        The outer folds (:func:`study_splitter`; recorded in every result).
    delays : sequence of int
        As in :func:`~encoding_kit.encoding.evaluate.evaluate_encoding`.
    ridge_shifts : int
        Circular shifts of the ``"ridge"`` compression's ROI selection.
    cache : bool
        Tuned weights, features and encoding results cached by content.
    progress : bool
    min_shift : int, optional
        Smallest circular shift of the shuffled-brain control; default the
        shortest the training brain data's autocorrelation allows, and a
        smaller one is refused (:func:`.controls.autocorrelation_min_shift`).
    reuse_frozen : bool
        Compute the frozen lower layers' states once per distinct input batch
        and run only the tuned layers on them, in training and in feature
        extraction (:mod:`.frozen`; the same values as the full forward pass).
        The pretrained model's extraction of the story's windows records their
        states (when its features are not read from the cache).
    extract_batch : int
        Windows per forward pass when the pretrained or a tuned model's
        features are extracted (the same batches: the tuned extractions
        find the pretrained pass's frozen states).
    """

    def __init__(self, story, model, folds=(2,), layer=None, n_state=16, tune_subjects=None, config=None, pca=None,
                 cv=None, delays=DEFAULT_DELAYS, ridge_shifts=200, cache=True, progress=True,
                 min_shift=None, reuse_frozen=True, extract_batch=16):
        self.min_shift = check_min_shift(min_shift)
        self.extract_batch = int(extract_batch)
        self._compressors = {}
        self.story, self.n_state, self.pca, self.cache, self.progress = story, n_state, pca, cache, progress
        self.loaded = load_model(model, allow_standin=True) if isinstance(model, str) else model
        self.config = config or TuningConfig()
        self.delays, self.ridge_shifts = tuple(delays), ridge_shifts
        self.cv = study_splitter(cv, self.delays)
        self.n_folds = self.cv.n_splits
        n_layers = self.loaded.model.config.num_hidden_layers
        self.layer = n_layers if layer is None else int(layer)
        self.keep, self.splits = outer_folds(self.cv, story.n_trs)
        self.folds = check_fold_subset(folds, self.n_folds)
        self.subjects = list(story.fmri)
        self.tune_subjects = self._check_tune_subjects(tune_subjects)
        self.target = np.mean([story.fmri[s] for s in self.tune_subjects], axis=0)
        self.frozen = FrozenStates(encoder_of(self.loaded.model)) if reuse_frozen else None
        split = n_layers - self.config.tune_layers
        with self.frozen.recording(split) if self.frozen is not None and split >= 0 else contextlib.nullcontext():
            self.baseline_features = self.features(self.loaded)  # its pass keeps the story windows' frozen states
        self.ceiling = noise_ceiling(story.fmri, blocks=[self.splits[k][1] for k in self.folds])
        self.results, self.compressors, self.run_r = {}, {}, {}
        self._tokens, self._features, self._fold_memo, self._score_key = None, (None, None), {}, None

    def _check_tune_subjects(self, tune_subjects):
        if tune_subjects is None:
            return list(self.subjects)
        chosen = [tune_subjects] if isinstance(tune_subjects, (str, int)) else list(tune_subjects)
        unknown = [s for s in chosen if s not in self.story.fmri]
        if unknown or not chosen:
            raise ValueError(f"tune_subjects must name subjects of the data ({', '.join(map(str, self.subjects))}); "
                             f"found {unknown or 'none'}")
        return chosen

    def features(self, loaded, cache=None):
        """TR-level features of ``loaded`` at the study's layer, array (n_trs, hidden), the baseline's way.

        ``cache=False`` for tuned models: the feature cache stores every layer of a model, and a tuned model is
        scored on one fold (its scores are cached instead, :meth:`run_scores`).
        """
        from ..run.sweeps import text_layers

        if isinstance(loaded.model, TopLayers) and self.layer <= loaded.model.split:
            return self.baseline_features  # below the tuned layers: the pretrained model's own states
        run = ExtractionRun(progress=False, cache=self.cache if cache is None else cache, batch_size=self.extract_batch)
        return text_layers(self.story, loaded, layers=[self.layer], context_tokens=self.config.context_tokens,
                           mode="tr", run=run)[self.layer]

    def evaluate(self, features_by_fold):
        """Score fold-specific features on their own held-out block; one EncodingResult over the folds.

        Parameters
        ----------
        features_by_fold : dict {fold: array (n_trs, n_features)}
        """
        parts = [evaluate_encoding(X, self.story.fmri, delays=self.delays, cv=dataclasses.replace(self.cv, folds=[k]),
                                   pca=self.pca, progress=False, cache=self.cache)
                 for k, X in sorted(features_by_fold.items())]
        return combine_folds(parts)

    def baseline(self):
        """The pretrained model's features, scored on the study's folds."""
        if "pretrained" not in self.results:
            self.results["pretrained"] = self.evaluate(dict.fromkeys(self.folds, self.baseline_features))
        return self.results["pretrained"]

    def tuned(self, method, compression, mask_rate=None, leak=False, control=None, seed=None):
        """Tune on each study fold's training TRs (every TR with ``leak``) and score the tuned features.

        Parameters
        ----------
        method : {"brainaligner", "direct"}
        compression : {"ceiling", "ridge", "pca", "brainlm"}
        mask_rate : float, optional
            Overrides the config's MLM mask rate.
        leak : bool
            Tune on all TRs, the held-out blocks included (the mistake).
        control : {None, "text_only", "shuffled_brain"}
            A control run instead of the method (:mod:`.controls`).
        seed : int, optional
            Overrides the config's seed.

        Returns
        -------
        EncodingResult
            ``params`` records method, compression, mask_rate, leak, control and seed.
        """
        config = self.run_config(mask_rate, seed)
        key = (method, compression, config.mask_rate, bool(leak), check_control(control), config.seed)
        if key in self.results:
            return self.results[key]
        features = {}
        for k in self.folds:
            train = self.keep if leak else self.splits[k][0]
            tuned, compressor = self.tune_fold(method, compression, train, config, f"{compression} fold {k}"
                                               + (" ALL TRs" if leak else ""), control, self._shift_seed(config, k, leak))
            self.compressors[(*key, k)] = compressor
            features[k] = self.features(tuned, cache=False)
        result = self.evaluate(features)
        result.params.update(method=method, compression=compression, mask_rate=config.mask_rate, leak=bool(leak),
                             control=control, seed=config.seed)
        self.results[key] = result
        return result

    def run_config(self, mask_rate=None, seed=None):
        """The study's config with a run's mask rate and seed."""
        changes = {} if mask_rate is None else {"mask_rate": float(mask_rate)}
        if seed is not None:
            changes["seed"] = check_seeds([seed])[0]
        return dataclasses.replace(self.config, **changes)

    def _shift_seed(self, config, fold, leak):
        return [config.seed, self.n_folds if leak else int(fold)]

    def runs(self, method, compression, seeds=(0,), folds=None, control=None, mask_rate=None, leak=False,
             label=None):
        """Held-out scores of repeated tuning runs, one per seed and outer fold.

        Each run tunes on one fold's training TRs (all TRs with ``leak``) with
        one seed and is scored on that fold's held-out block, like the
        pretrained model (:meth:`baseline_runs`).

        Parameters
        ----------
        method, compression, control, mask_rate, leak : as in :meth:`tuned`
        seeds : sequence of int
            Training seeds (new heads, masks, batch order; the shuffled control's shifts).
        folds : sequence of int, optional
            Outer folds; default the study's.
        label : str, optional
            The rows' ``model``; default ``"<method>/<compression>"`` with the control and ``[ALL TRs]``.

        Returns
        -------
        DataFrame
            Tidy rows (model, method, compression, control, mask_rate, leak,
            seed, fold, subject, scope, mean_r, median_r): ``scope`` is
            ``"all ROIs"`` and, on the demo, its planted ROI classes.
        """
        seeds, folds = check_seeds(seeds), self.check_run_folds(folds)
        check_control(control)
        label = label or (f"{method}/{compression}" + (f" {control}" if control else "") + (" [ALL TRs]" * leak))
        frames = []
        for seed in seeds:
            config = self.run_config(mask_rate, seed)
            for k in folds:
                r = self.run_scores(method, compression, k, config, control, leak)
                self.run_r.setdefault(label, {})[(seed, k)] = r
                frames.append(self._rows(r, model=label, method=method, compression=compression,
                                         control=control or "none", mask_rate=config.mask_rate, leak=bool(leak),
                                         seed=seed, fold=k))
        return pd.concat(frames, ignore_index=True)

    def baseline_runs(self, folds=None):
        """The pretrained model's rows in the shape of :meth:`runs` (``seed`` -1: nothing is trained)."""
        frames = []
        for k in self.check_run_folds(folds):
            r = self.run_r.setdefault("pretrained", {})[(-1, k)] = self.fold_scores(self.baseline_features, k,
                                                                                   "pretrained")
            frames.append(self._rows(r, model="pretrained", method="pretrained", compression="none", control="none",
                                     mask_rate=np.nan, leak=False, seed=-1, fold=k))
        return pd.concat(frames, ignore_index=True)

    def mean_r(self, label):
        """Held-out r of a model's runs (:meth:`runs` or :meth:`baseline_runs`), mean over runs, (n_subjects, n_rois)."""
        if label not in self.run_r:
            raise ValueError(f"no runs of model {label!r} yet; run so far: {sorted(self.run_r)}")
        return np.mean(list(self.run_r[label].values()), axis=0)

    def check_run_folds(self, folds):
        """Outer folds of a repeated run (default the study's), checked like ``evaluate_encoding``'s."""
        return self.folds if folds is None else check_fold_subset(folds, self.n_folds)

    def run_scores(self, method, compression, fold, config, control=None, leak=False):
        """Held-out r of one tuning run on one outer fold, array (n_subjects, n_rois); cached by the run's content."""
        train = self.keep if leak else self.splits[fold][0]
        examples, run_config, _ = self.examples(method, compression, train, config, control,
                                                self._shift_seed(config, fold, leak))
        key = tuning_key(self.loaded, examples, method, run_config)
        store = FeatureCache("tuned-scores", {"tuning": key, "fold": int(fold), **self._score_params()},
                             enabled=self.cache)
        cached = store.load([0])
        if cached is not None:
            return cached[0]
        if self._features[0] != key:  # a model tuned on all TRs is scored on every fold: extracted once
            tuned = tune_encoder(self.loaded, examples, method, run_config, cache=self.cache, progress=self.progress,
                                 frozen=self.frozen,
                                 label=f"{compression} fold {fold}{' ALL TRs' * leak} seed {run_config.seed}")
            self._features = (key, self.features(tuned, cache=False))
        r = self.fold_scores(self._features[1], fold)
        store.save({0: r})
        return r

    def fold_scores(self, X, fold, memo=None):
        """Held-out r of features ``X`` (n_trs, n_features) on outer fold ``fold``, array (n_subjects, n_rois)."""
        if memo is not None and (memo, fold) in self._fold_memo:
            return self._fold_memo[(memo, fold)]
        result = evaluate_encoding(X, self.story.fmri, delays=self.delays, cv=dataclasses.replace(self.cv, folds=[fold]),
                                   pca=self.pca, progress=False, cache=self.cache and memo is not None)
        if memo is not None:
            self._fold_memo[(memo, fold)] = result.r_folds[0]
        return result.r_folds[0]

    def _score_params(self):
        if self._score_key is None:
            self._score_key = {"layer": self.layer, "delays": list(self.delays), "cv": self.cv.params(),
                               "pca": self.pca, "subjects": [str(s) for s in self.subjects],
                               "fmri": hash_array(np.stack([self.story.fmri[s] for s in self.subjects]))}
        return self._score_key

    def _rows(self, r, **columns):
        rows = []
        scopes = {"all ROIs": np.ones(r.shape[1], bool)}
        if self.story.truth is not None and r.shape[1] == 360:
            scopes.update(planted_classes(self.story.truth))
        with quiet_nan_warnings():
            for s, subject in enumerate(self.subjects):
                for scope, mask in scopes.items():
                    rows.append({**columns, "subject": subject, "scope": scope, "mean_r": np.nanmean(r[s, mask]),
                                 "median_r": np.nanmedian(r[s, mask])})
        return pd.DataFrame(rows)

    def tune_fold(self, method, compression, train, config=None, label="", control=None, shift_seed=0):
        """Compress and tune on the TRs ``train`` only; (tuned LoadedModel, fitted BrainCompressor).

        ``control`` (``"text_only"``, ``"shuffled_brain"``; see :mod:`.controls`) changes only the brain term;
        ``shift_seed`` seeds the shuffled control's shifts.
        """
        examples, config, compressor = self.examples(method, compression, train, config, control, shift_seed)
        tuned = tune_encoder(self.loaded, examples, method, config, cache=self.cache, label=label,
                             progress=self.progress, frozen=self.frozen)
        return tuned, compressor

    def compressor(self, compression, train):
        """The compression fitted on the TRs ``train`` (fitted once per training set: it has no seed)."""
        train = np.asarray(train, dtype=int)
        key = (compression, hash_array(train))
        if key not in self._compressors:
            compressor = BrainCompressor(compression, self.n_state, n_shifts=self.ridge_shifts, delays=self.delays,
                                         pca=self.pca)
            fmri_train = np.stack([self.story.fmri[s][train] for s in self.subjects])
            compressor.fit(self.target[train], train, fmri_train=fmri_train, X=self.baseline_features)
            self._compressors[key] = compressor
        return self._compressors[key]

    def data_min_shift(self, compression, fold):
        """The shuffled control's shortest allowed shift on fold ``fold``'s training TRs, from their autocorrelation.

        :func:`.controls.autocorrelation_min_shift` of the compressed brain states of the training TRs (the
        held-out block is not read), int.
        """
        train = self.splits[check_fold_subset([fold], self.n_folds)[0]][0]
        return autocorrelation_min_shift(self.compressor(compression, train).transform(self.target[train]), train,
                                         self.delays)

    def examples(self, method, compression, train, config=None, control=None, shift_seed=0):
        """The training examples and config of one run: (TuningExamples, TuningConfig, BrainCompressor).

        With early stopping (``config.patience``), the examples' ``validation`` holds the inner validation
        block's examples (:func:`.windows.inner_validation_split`): the end of the training TRs, never tuned on.
        """
        config = config or self.config
        train = np.asarray(train, dtype=int)
        compressor = self.compressor(compression, train)
        states, config = controlled(control, method, compressor.transform(self.target[train]), train, config,
                                    self.min_shift, shift_seed, self.delays)
        tokens, word_trs = self.tokens(), self.story.words["tr"].to_numpy()
        if not config.patience:
            return training_examples(tokens, word_trs, train, states, self.delays, config.window_tokens), config, \
                compressor
        fit, val = inner_validation_split(train, config.val_trs, max(self.delays))
        rows = np.searchsorted(train, fit), np.searchsorted(train, val)
        examples = training_examples(tokens, word_trs, fit, states[rows[0]], self.delays, config.window_tokens)
        examples.validation = training_examples(tokens, word_trs, val, states[rows[1]], self.delays,
                                                config.window_tokens, min_examples=1)
        return examples, config, compressor

    def tokens(self):
        """The story tokenized once with the model's tokenizer (tokenless words filled)."""
        if self._tokens is None:
            from ..features.text import tokenize_story
            from ..features.text_windows import fill_tokenless_words

            self._tokens = tokenize_story(list(self.story.words["word"]), self.loaded.processor)
            if (self._tokens.word_last < 0).any():
                fill_tokenless_words(self._tokens)
        return self._tokens
