"""Ridge decoder and deep decoders on the same folds: identification accuracy with a permutation test.

For every outer gapped fold of :func:`.linear.evaluate_decoding` (same
trim, folds and gap, same in-fold PCA targets) and every subject:

1. the ridge decoder of :mod:`.decoding` (per-component alpha on the inner folds);
2. each deep decoder: optuna chooses its hyperparameters on the inner gapped
   split of the outer training set (:func:`.search.tune_decoder`), then
   it is retrained on the whole outer training set for the number of epochs
   the best trial stopped at, and decodes the held-out block.

Held-out blocks are scored as the ridge decoder scores them
(:func:`.linear.decoding_scores`), and :meth:`DeepDecodingResult.summary`
adds a permutation test of top-1 identification whose null pairs each
fold's decoded block with another fold's true block
(:func:`.identification.identification_permutation_test`). Predictions are
cached under a hash of the inputs and every setting (prefix
``deepdecoding-``), and the search's trials under their own keys, so a
re-executed notebook neither tunes nor trains again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from ..core.progress import tqdm
from ..core.run_log import timed_call
from ..core.runtime import torch_device
from ..core.storage import atomic_write, cache_key, cache_root, hash_array, set_aside
from ..core.validation import check_delays, check_int
from ..encoding.cv import DEFAULT_DELAYS, check_splitter, splitter_params
from ..encoding.fold_loop import OuterFolds, default_estimator, inner_splitter
from ..encoding.result_cache import CACHE_VERSION
from .deep_models import ARCHITECTURES, DeepDecoder, check_architecture, decoder_windows
from .identification import identification_permutation_test
from .linear import RidgeDecoderStore, decoding_scores, fold_targets, ridge_decode
from .search import SEARCH_VERSION, DeepSearch, tune_decoder


@dataclass
class DeepDecodingResult:
    """Held-out decoding of every model, subject and fold.

    Attributes
    ----------
    folds : DataFrame
        One row per model, subject and fold: ``r``, ``top1``, ``top10``,
        ``n_segments``, ``chance_top1``, ``chance_top10``, ``params`` (JSON of
        the chosen hyperparameters; ridge: ``{}``), ``epochs`` (of the final
        training) and ``search_loss`` (the best trial's loss on the inner
        validation block; ridge: NaN).
    blocks : dict {(model, subject): list of (pred, true)}
        Decoded and true components of each held-out block, arrays of shape
        (n_test_trs, n_components), in fold order.
    segment_trs : int
    """

    folds: pd.DataFrame
    blocks: dict = field(repr=False)
    segment_trs: int = 10

    def summary(self, n_permutations=1000, random_state=0):
        """One row per model and subject: mean scores over folds and the permutation p of top-1 accuracy.

        Parameters
        ----------
        n_permutations : int
            Most orders of the held-out blocks scored by the permutation test
            (:func:`.identification.identification_permutation_test`: each fold's
            decoded block paired with another fold's true block; all 120
            orders of 5 folds).
        random_state : int

        Returns
        -------
        DataFrame
            ``model``, ``subject``, ``r``, ``top1``, ``top10``,
            ``chance_top1``, ``chance_top10``, ``p_top1`` (NaN with fewer
            than 4 folds: too few orders), ``null_top1`` (mean accuracy of
            decoded blocks against the other folds' truths),
            ``n_permutations`` (orders scored), ``n_pairings`` (distinct
            orders).
        """
        rows = []
        scores = ["r", "top1", "top10", "chance_top1", "chance_top10"]
        means = self.folds.groupby(["model", "subject"], sort=False)[scores].mean()
        for (model, subject), row in means.iterrows():
            test = identification_permutation_test(self.blocks[model, subject], self.segment_trs, n_permutations,
                                                   random_state)
            rows.append({"model": model, "subject": subject, **row.to_dict(), "p_top1": test["p"],
                         "null_top1": test["null_mean"], "n_permutations": test["n_permutations"],
                         "n_pairings": test["n_pairings"]})
        return pd.DataFrame(rows)


@timed_call("networks")
def evaluate_deep_decoding(X, fmri, archs=ARCHITECTURES, n_components=20, delays=DEFAULT_DELAYS, cv=None,
                           segment_trs=10, search=None, progress=True, cache=True):
    """Decode stimulus feature PCs with the ridge decoder and the deep decoders on the same folds.

    Parameters
    ----------
    X : array of shape (n_trs, n_features)
        Stimulus features (the targets: ``n_components`` PCs fitted per fold).
    fmri : dict {subject: array (n_trs, n_rois)}
    archs : sequence of {"mlp", "transformer", "cnn_transformer"}
    n_components, delays, cv, segment_trs
        As in :func:`.linear.evaluate_decoding`; the window of a deep
        decoder is the ROIs at TRs ``t + delays``. The ridge decoder and the
        searches split each training set with the same inner splitter
        (:func:`encoding_kit.encoding.fold_loop.inner_splitter`).
    search : DeepSearch, optional
        Trial budget, training limits, seed, ROI components, device and
        parallel jobs of the deep decoders (default ``DeepSearch()``).
    progress : bool
    cache : bool

    Returns
    -------
    DeepDecodingResult
    """
    archs = [check_architecture(a) for a in archs]
    delays, cv, search = check_delays(delays), check_splitter(cv, delays), DeepSearch() if search is None else search
    n_components, segment_trs = check_int(n_components, "n_components", 1), check_int(segment_trs, "segment_trs", 2)
    X = np.asarray(X, dtype=np.float32)
    brains = {k: np.asarray(v, dtype=np.float32) for k, v in fmri.items()}
    if not brains or any(len(b) != len(X) for b in brains.values()):
        raise ValueError(f"fmri must map subjects to arrays with as many TRs as X ({len(X)}), found "
                         f"{ {k: len(b) for k, b in brains.items()} }")
    if max(delays) >= len(X):
        raise ValueError(f"the window reaches {max(delays)} TRs ahead but the data have only {len(X)} TRs")
    fitter = default_estimator(delays, getattr(cv, "gap", None))
    folds = OuterFolds.from_splitter(cv, len(X), inner_splitter(fitter, cv, delays))
    settings = {"version": [CACHE_VERSION, SEARCH_VERSION], "X": hash_array(X), "subjects": list(map(str, brains)),
                "brains": hash_array(np.stack(list(brains.values()))), "archs": archs, "n_components": n_components,
                "delays": delays, "cv": splitter_params(cv), "inner_cv": folds.inner_cv.params(),
                "segment_trs": segment_trs, **search.params(), **fitter.cache_params()}
    stored = cache_root() / f"{cache_key('deepdecoding', settings)}.npz" if cache else None
    if stored is not None and stored.exists():
        result = _load_result(stored, brains, segment_trs)
        if result is not None:
            return result
    jobs = [(k, subject) for k in range(len(folds.splits)) for subject in brains]
    # the ridge rows: evaluate_decoding's predictions on the same folds and targets when it stored them
    ridge_store = RidgeDecoderStore(X, brains, n_components, delays, cv, folds, fitter) if cache else None
    ridge_preds = ridge_store.load() if ridge_store is not None else None
    run = partial(_decode_fold, X=X, folds=folds, brains=brains, n_components=n_components, delays=delays,
                  fitter=fitter, archs=archs, search=search, cache=cache, ridge_preds=ridge_preds)
    workers = _n_jobs(search.n_jobs, search.device, epochs=len(jobs) * len(archs) * search.n_trials * search.max_epochs)
    done = Parallel(n_jobs=workers, return_as="generator")(delayed(run)(*job) for job in jobs)
    meta, blocks = [], {}
    for fold_rows in tqdm(done, total=len(jobs), desc="ridge and deep decoders (folds x subjects)",
                          disable=not progress, leave=False):
        for row in fold_rows:
            blocks.setdefault((row["model"], row["subject"]), []).append((row.pop("pred"), row.pop("true")))
            meta.append(row)
    meta = pd.DataFrame(meta).sort_values("fold", kind="stable").reset_index(drop=True)
    if ridge_store is not None and ridge_preds is None and "ridge" in meta["model"].values:
        ridge = meta[meta["model"] == "ridge"]
        ridge_store.save({(s, k): blocks["ridge", s][k][0] for s, k in zip(ridge["subject"], ridge["fold"])})
    result = DeepDecodingResult(_folds_table(meta, blocks, segment_trs), blocks, segment_trs)
    if stored is not None:
        _save_result(stored, meta, blocks)
    return result


def _folds_table(meta, blocks, segment_trs):
    """``meta`` (model, subject, fold, params, epochs) with the held-out scores of each block added."""
    scores = [decoding_scores(*blocks[row.model, row.subject][row.fold], segment_trs) for row in meta.itertuples()]
    table = pd.concat([meta[["model", "subject", "fold"]], pd.DataFrame(scores)], axis=1)
    return table.assign(params=meta["params"], epochs=meta["epochs"].astype(float),
                        search_loss=meta["search_loss"].astype(float))


WORKER_MIN_EPOCHS = 2000
"""Below this many training epochs in all (folds x subjects x architectures x trials x most epochs per run) the
decoders train in the process itself: each worker process first imports torch and the kit (about 5 s of CPU on a
2-core AMD EPYC), more than it saves on a small search (07's quick decoders, at most 600 epochs: 12.8 CPU s in the
process, 23.2 with two workers). Above it two workers pay even beside another notebook's kernel, as they take the
second core whenever it is free (07's decoders in the full demo run, 3 subjects and 2 trials, at most 2,700 epochs:
the notebook took 94 s more wall time with one worker than with two)."""


def _n_jobs(n_jobs, device, epochs=None):
    """Parallel workers: one per CPU core (at most 2 by default), 1 on a GPU or for a small search.

    Parameters
    ----------
    n_jobs : int or None
        Asked for (kept); None: the default.
    device : str or None
    epochs : int, optional
        Most training epochs of the whole search (jobs x architectures x trials x most epochs per run); below
        :data:`WORKER_MIN_EPOCHS` the default is 1. The numbers do not depend on it (every run is seeded).
    """
    if torch_device(device).type != "cpu":
        return 1
    if n_jobs is not None:
        return check_int(n_jobs, "n_jobs", 1)
    if epochs is not None and epochs < WORKER_MIN_EPOCHS:
        return 1
    return min(2, os.cpu_count() or 1)


def _decode_fold(k, subject, X, folds, brains, n_components, delays, fitter, archs, search, cache, ridge_preds=None):
    """Ridge and every deep decoder on fold ``k`` of one subject: rows with ``pred`` and ``true`` arrays.

    The outer folds are the engine's (:class:`.fold_loop.OuterFolds`); the (fold, subject) jobs run in
    parallel, each with its own hyperparameter search, so they are not a sequential :func:`.fold_loop.fold_predictions`.
    ``ridge_preds`` ({(subject, fold): array}, from :class:`.linear.RidgeDecoderStore`) replaces the ridge's fit.
    """
    train, test = folds.splits[k]
    targets = fold_targets(X, train, n_components)
    brain = brains[subject]
    ridge = (ridge_preds[subject, k] if ridge_preds is not None
             else ridge_decode(brain, targets, train, test, delays, fitter, folds.inner(train)))
    out = [{"model": "ridge", "subject": subject, "fold": k, "params": "{}", "epochs": np.nan, "search_loss": np.nan,
            "pred": ridge, "true": targets[test]}]
    windows = decoder_windows(brain, train, delays, search.roi_components)
    for arch in archs:
        pred, params, epochs, loss = _deep_decode(arch, windows, targets, train, test, folds.inner_cv, search, cache)
        out.append({"model": arch, "subject": subject, "fold": k, "params": json.dumps(params, sort_keys=True),
                    "epochs": epochs, "search_loss": loss, "pred": pred, "true": targets[test]})
    return out


def _deep_decode(arch, windows, targets, train, test, inner_cv, search, cache):
    """Tune on the inner split of ``train``, retrain on all of ``train``, decode ``test``.

    Returns
    -------
    (pred, params, epochs, search_loss)
    """
    tuned = tune_decoder(arch, windows, targets, train, inner_cv, search, cache)
    decoder = DeepDecoder(arch, tuned["params"], max_epochs=search.max_epochs, patience=search.patience,
                          random_state=search.random_state, device=search.device)
    decoder.fit(windows[train], targets[train], epochs=tuned["best_epoch"])
    return decoder.predict(windows[test]), tuned["params"], tuned["best_epoch"], tuned["val_loss"]


def _save_result(path, meta, blocks):
    text = meta.drop(columns="search_loss").assign(subject=meta["subject"].map(str)).to_json(orient="records")
    arrays = {"meta": np.array(text), "search_loss": meta["search_loss"].to_numpy(float)}  # floats kept exact
    for i, ((model, subject), pairs) in enumerate(blocks.items()):
        arrays[f"key_{i}"] = np.array(json.dumps([model, str(subject)]))
        for k, (pred, true) in enumerate(pairs):
            arrays[f"pred_{i}_{k}"], arrays[f"true_{i}_{k}"] = pred, true
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays))


def _load_result(path, brains, segment_trs):
    """The cached result, or ``None`` after setting an unreadable or incomplete one aside."""
    names = {str(k): k for k in brains}
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = pd.DataFrame(json.loads(str(z["meta"])))
            meta["subject"] = meta["subject"].map(lambda s: names[str(s)])
            meta["search_loss"] = z["search_loss"]
            blocks, i = {}, 0
            while f"key_{i}" in z:
                model, subject = json.loads(str(z[f"key_{i}"]))
                n = int(meta["fold"].max()) + 1
                blocks[model, names[subject]] = [(z[f"pred_{i}_{k}"], z[f"true_{i}_{k}"]) for k in range(n)]
                i += 1
        if len(blocks) != meta.groupby(["model", "subject"]).ngroups or not blocks:
            raise ValueError(f"{len(blocks)} stored models x subjects do not match the table")
        return DeepDecodingResult(_folds_table(meta, blocks, segment_trs), blocks, segment_trs)
    except Exception as exc:
        set_aside(path, f"{type(exc).__name__}: {exc}")
        return None


def plot_decoder_comparison(summary, out=None, alpha=0.05):
    """Top-1 identification accuracy per model: mean over subjects, each subject, chance and significance.

    Parameters
    ----------
    summary : DataFrame
        :meth:`DeepDecodingResult.summary`.
    out : path, optional
        PNG written there (atomically).
    alpha : float
        Subjects with ``p_top1 < alpha`` are counted under each bar.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    models = list(pd.unique(summary["model"]))
    fig, ax = plt.subplots(figsize=(1.4 * len(models) + 2, 3.2))
    for i, model in enumerate(models):
        rows = summary[summary["model"] == model]
        ax.bar(i, rows["top1"].mean(), color="tab:blue" if model == "ridge" else "tab:orange", alpha=0.7)
        ax.scatter(np.full(len(rows), i) + np.linspace(-0.15, 0.15, len(rows)), rows["top1"], color="k", s=12,
                   zorder=3)
    labels = [f"{m}\np<{alpha:g}: {int((summary.loc[summary['model'] == m, 'p_top1'] < alpha).sum())}"
              f"/{int((summary['model'] == m).sum())}" for m in models]
    ax.axhline(summary["chance_top1"].mean(), color="gray", ls="--", lw=1, label="chance")
    ax.set_xticks(range(len(models)), labels, fontsize=8)
    ax.set_ylabel("top-1 identification accuracy")
    ax.set_title("Segment identification (held-out folds; dots = subjects)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    if out is not None:
        atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=120))
    return fig
