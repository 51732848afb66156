"""Hyperparameter search for the deep decoders with optuna, nested inside one outer training set.

The search sees only the outer training TRs. It splits them with the kit's
gapped inner folds and uses the last inner block for validation: every
trial trains on the inner-fit TRs, stops early on that block and is scored
by its validation loss there. The held-out test block of the outer fold is
never passed in, so it cannot influence the choice. The budget
(``n_trials``) and the sampler's seed (``TPESampler(seed=random_state)``,
the first half of the trials random, the rest proposed by TPE from them)
are fixed, so the same inputs give the same trials.

Trials are cached by content: each study's file (feature cache folder,
prefix ``deepsearch-``) is keyed by a hash of the training windows and
targets, the split, every training setting, the search space and the
torch version, and holds one entry per tried hyperparameter set. A re-run
replays the same trials from the file without training (TPE proposes the
same points from the same history), and a larger budget reuses the first
trials.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from ..core.runtime import torch_device
from ..core.storage import atomic_write, cache_key, cache_root, hash_array, set_aside
from ..core.validation import check_int
from ..encoding.cv import GappedKFold, positions
from .deep_models import DeepDecoder, check_architecture

SEARCH_VERSION = 1
"""Bump when the search space or the training loop changes, so old trials are not reused."""


@dataclass(frozen=True)
class DeepSearch:
    """How every deep decoder is tuned and trained: one value passed to the search and the evaluation.

    Parameters
    ----------
    n_trials : int
        optuna trial budget per model, subject and fold.
    max_epochs, patience : int
        Training limits of each trial (and of the final fit).
    random_state : int
        Seed of the sampler and of every training run.
    roi_components : int or None
        The networks read this many principal components of the subject's
        ROIs (fitted on the outer training TRs; ``None``: all ROIs).
    device : str, optional
        Default (:func:`encoding_kit.core.runtime.torch_device`): cuda, then mps, then cpu.
    n_jobs : int, optional
        Folds x subjects decoded in parallel processes on a CPU (default: 2
        when the machine has 2 cores, 1 for a search of fewer than
        :data:`encoding_kit.decoding.evaluation.WORKER_MIN_EPOCHS` epochs in
        all; each network trains on one thread). The numbers do not depend on
        it: every run is seeded.
    """

    n_trials: int = 4
    max_epochs: int = 40
    patience: int = 6
    random_state: int = 0
    roi_components: int | None = 32
    device: str | None = None
    n_jobs: int | None = None

    def __post_init__(self):
        for name in ("n_trials", "max_epochs", "patience"):
            check_int(getattr(self, name), name, 1)
        if self.roi_components is not None:
            check_int(self.roi_components, "roi_components", 1)

    def params(self):
        """What changes the numbers (for cache keys): every field but ``n_jobs``, the device as its type."""
        return {**{k: v for k, v in asdict(self).items() if k not in ("n_jobs", "device")},
                "device_type": torch_device(self.device).type}


def suggest_params(arch, trial):
    """Draw one hyperparameter set of ``arch`` from an optuna trial (the search space)."""
    params = {"lr": trial.suggest_float("lr", 1e-3, 5e-3, log=True),
              "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
              "dropout": trial.suggest_float("dropout", 0.0, 0.5)}
    if arch == "mlp":
        params["hidden"] = trial.suggest_categorical("hidden", [64, 128, 256])
        return params
    params["d_model"] = trial.suggest_categorical("d_model", [16, 32])
    params["n_layers"] = trial.suggest_int("n_layers", 1, 2)
    if arch == "transformer":
        params["pooling"] = trial.suggest_categorical("pooling", ["cls", "mean"])
    else:
        params["kernel"] = trial.suggest_categorical("kernel", [1, 3])
    return params


class TrialCache:
    """Scores of tried hyperparameter sets of one study, in one JSON file, written atomically.

    Parameters
    ----------
    path : pathlib.Path or None
        ``None``: nothing is read or written.
    """

    def __init__(self, path):
        self.path = path
        self.trials = self._read() if path is not None else {}

    def _read(self):
        if not self.path.exists():
            return {}
        try:
            trials = json.loads(self.path.read_text())["trials"]
            if not all({"val_loss", "best_epoch"} <= set(t) for t in trials.values()):
                raise ValueError("an entry lacks val_loss or best_epoch")
            return trials
        except Exception as exc:  # unreadable or altered: set aside and retrain
            set_aside(self.path, f"{type(exc).__name__}: {exc}")
            return {}

    @staticmethod
    def key(params):
        return json.dumps(params, sort_keys=True)

    def get(self, params):
        """``{"val_loss", "best_epoch"}`` of a stored trial, or ``None``."""
        return self.trials.get(self.key(params))

    def put(self, params, entry):
        self.trials[self.key(params)] = entry
        if self.path is not None:
            text = json.dumps({"trials": self.trials}, indent=1)
            atomic_write(self.path, lambda tmp: tmp.write_text(text))


def _check_search_args(windows, targets, train, cv):
    if not isinstance(cv, GappedKFold):
        raise TypeError(f"cv must be a GappedKFold (the inner folds; the last block validates), found {cv!r}")
    train = np.asarray(train)
    if len(windows) != len(targets):
        raise ValueError(f"windows have {len(windows)} TRs but targets have {len(targets)}")
    if train.size == 0 or train.min() < 0 or train.max() >= len(windows):
        raise ValueError(f"train must hold TR indices within 0..{len(windows) - 1}, found {train.size} indices"
                         + (f" from {train.min()} to {train.max()}" if train.size else ""))
    return train


def tune_decoder(arch, windows, targets, train, cv, search=None, cache=True):
    """Choose a decoder's hyperparameters with optuna on the inner gapped split of ``train``.

    Parameters
    ----------
    arch : {"mlp", "transformer", "cnn_transformer"}
    windows : array of shape (n_trs, n_window, n_rois)
    targets : array of shape (n_trs, n_targets)
    train : int array
        The outer training TR indices; only these rows are read.
    cv : GappedKFold
        The inner folds of ``train`` (the gap counted in TRs); the last block
        is the validation block.
    search : DeepSearch, optional
        Trial budget, training limits, seed and device (default ``DeepSearch()``).
    cache : bool or path
        Store and reuse trial scores (``True``: the feature cache folder).

    Returns
    -------
    dict
        ``params`` (best hyperparameters), ``best_epoch``, ``val_loss`` and
        ``trials`` (list of dicts: ``params``, ``val_loss``, ``best_epoch``).
    """
    import optuna

    check_architecture(arch)
    search = DeepSearch() if search is None else search
    train = _check_search_args(windows, targets, train, cv)
    n_trials, max_epochs, patience = search.n_trials, search.max_epochs, search.patience
    random_state, device = search.random_state, search.device
    try:
        fit_pos, val_pos = positions(cv.split_indices(train)[-1], train)
    except ValueError as exc:
        raise ValueError(f"inner cross-validation: {exc}") from exc
    fit_rows, val_rows = train[fit_pos], train[val_pos]
    rows = np.sort(np.concatenate([fit_rows, val_rows]))  # all the search may read
    win, tgt = np.asarray(windows[rows], np.float32), np.asarray(targets[rows], np.float32)
    fit_at, val_at = np.searchsorted(rows, fit_rows), np.searchsorted(rows, val_rows)
    trials = TrialCache(_study_path(arch, win, tgt, fit_at, val_at, max_epochs, patience, random_state, device, cache))

    def objective(trial):
        params = suggest_params(arch, trial)
        entry = trials.get(params)
        if entry is None:
            decoder = DeepDecoder(arch, params, max_epochs=max_epochs, patience=patience,
                                  random_state=random_state, device=device)
            decoder.fit(win[fit_at], tgt[fit_at], val=(win[val_at], tgt[val_at]))
            entry = {"val_loss": decoder.val_loss_, "best_epoch": decoder.best_epoch_}
            trials.put(params, entry)
        trial.set_user_attr("best_epoch", int(entry["best_epoch"]))
        trial.set_user_attr("params", params)
        return float(entry["val_loss"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # TPE's default is 10 random trials before it models anything: with a budget of a few trials, half are random
    sampler = optuna.samplers.TPESampler(seed=random_state, n_startup_trials=max(1, n_trials // 2))
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(objective, n_trials=n_trials, show_progress_bar=False)
    best = study.best_trial
    return {"params": best.user_attrs["params"], "best_epoch": best.user_attrs["best_epoch"], "val_loss": best.value,
            "trials": [{"params": t.user_attrs["params"], "val_loss": t.value,
                        "best_epoch": t.user_attrs["best_epoch"]} for t in study.trials]}


def _study_path(arch, win, tgt, fit_at, val_at, max_epochs, patience, random_state, device, cache):
    """The study's trial file, keyed by everything that changes a trial's score (``None`` without a cache)."""
    if cache is False or cache is None:
        return None
    import torch

    settings = {"version": SEARCH_VERSION, "arch": arch, "windows": hash_array(win), "targets": hash_array(tgt),
                "fit": hash_array(fit_at), "val": hash_array(val_at), "max_epochs": max_epochs, "patience": patience,
                "random_state": random_state, "device_type": torch_device(device).type, "torch": torch.__version__}
    return cache_root(None if cache is True else cache) / f"{cache_key('deepsearch', settings)}.json"
