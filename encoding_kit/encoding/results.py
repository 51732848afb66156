"""The result of an encoding evaluation: scores, summaries, tidy tables, files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.storage import atomic_write
from ..data.rois import area_group
from .cv import held_out_blocks, splitter_from_params
from .scores import normalized_r, quiet_nan_warnings


@dataclass
class EncodingResult:
    """Held-out scores of one feature set for every subject and ROI.

    Attributes
    ----------
    r : array of shape (n_subjects, n_rois)
        Held-out Pearson r, folds combined in Fisher z space; NaN for
        constant ROIs.
    r_folds : array of shape (n_folds, n_subjects, n_rois)
    r2 : array of shape (n_subjects, n_rois)
        Held-out R^2 averaged over folds (used by variance partitioning).
    alphas : array of shape (n_folds, n_subjects, n_rois)
        Ridge penalty chosen per fold, subject and ROI (NaN for non-ridge models).
    subjects : list
    roi_names : list of str
    test_trs : int array of shape (n_test,)
        TR indices that were held out (all trimmed TRs, each once).
    predictions : array of shape (n_test, n_subjects, n_rois), or None
    params : dict
        Settings of the evaluation (``params["cv"]``: the splitter's settings).
    cv : splitter, optional
        The outer folds the result was scored on (:class:`.cv.GappedKFold`
        or another splitter): the noise ceiling and the significance tests
        read their held-out blocks from it (:meth:`fold_blocks`).
    """

    r: np.ndarray
    r_folds: np.ndarray
    r2: np.ndarray
    alphas: np.ndarray
    subjects: list
    roi_names: list
    test_trs: np.ndarray
    predictions: np.ndarray | None = None
    params: dict = field(default_factory=dict)
    cv: object = None

    def fold_blocks(self):
        """Positions (into ``test_trs``) of each outer fold's held-out block, from the result's splitter.

        Returns
        -------
        list of int arrays
        """
        cv = self.cv if self.cv is not None else splitter_from_params(self.params.get("cv"))
        if cv is None or "n_trs" not in self.params:
            raise ValueError("this result does not record its splitter (cv) and the number of TRs; "
                             "evaluate it again with evaluate_encoding(..., cv=...)")
        return [np.searchsorted(self.test_trs, block) for block in held_out_blocks(cv, self.params["n_trs"])]

    def roi_mean_r(self):
        """Mean r over ROIs for each subject, array of shape (n_subjects,) (NaN ROIs excluded)."""
        with quiet_nan_warnings():
            return np.nanmean(self.r, axis=1)

    def mean_r(self):
        """The assignment's number: (mean, std) across subjects of the ROI-mean r."""
        per_subject = self.roi_mean_r()
        return float(np.nanmean(per_subject)), float(np.nanstd(per_subject, ddof=1) if len(per_subject) > 1 else 0.0)

    def normalized(self, ceiling):
        """r / noise ceiling, array of shape (n_subjects, n_rois)."""
        return normalized_r(self.r, ceiling)

    def summary(self, ceiling=None):
        """Mean +- std across subjects, overall and per ROI group.

        Parameters
        ----------
        ceiling : array of shape (n_subjects, n_rois), optional
            Noise ceiling (see :func:`noise_ceiling`); adds normalised scores.

        Returns
        -------
        DataFrame
            One row per scope (``all`` then each ROI group) with columns
            ``scope, n_rois, mean_r, std_r, median_r`` (+ ``mean_norm_r,
            std_norm_r, mean_ceiling`` with a ceiling). ``mean_r`` / ``std_r``
            are the mean and std across subjects of each subject's ROI-mean r;
            the normalised and ceiling columns average only the ROIs that have
            a ceiling (NaN for a scope with none).
        """
        groups = np.array([area_group(n[2:]) if n[:2] in ("L_", "R_") else "other" for n in self.roi_names])
        norm = self.normalized(ceiling) if ceiling is not None else None
        rows = []
        with quiet_nan_warnings():
            for scope in ["all", *dict.fromkeys(groups)]:
                cols = np.ones(len(groups), bool) if scope == "all" else groups == scope
                per_subject = np.nanmean(self.r[:, cols], axis=1)
                row = {"scope": scope, "n_rois": int(cols.sum()), "mean_r": np.nanmean(per_subject),
                       "std_r": np.nanstd(per_subject, ddof=1) if len(per_subject) > 1 else 0.0,
                       "median_r": np.nanmedian(self.r[:, cols])}
                if norm is not None:
                    per_subject_norm = np.nanmean(norm[:, cols], axis=1)
                    row.update(mean_norm_r=np.nanmean(per_subject_norm),
                               std_norm_r=np.nanstd(per_subject_norm, ddof=1) if len(per_subject) > 1 else 0.0,
                               mean_ceiling=np.nanmean(ceiling[:, cols]))
                rows.append(row)
        return pd.DataFrame(rows)

    def roi_scores(self, ceiling=None):
        """Tidy table, one row per subject and ROI.

        Returns
        -------
        DataFrame with columns subject, roi, name, group, r, r2, alpha
        (geometric mean over folds) and, with a ceiling, ceiling and norm_r.
        """
        n_subj, n_rois = self.r.shape
        with quiet_nan_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.exp(np.nanmean(np.log(self.alphas), axis=0))
        table = pd.DataFrame({
            "subject": np.repeat(self.subjects, n_rois),
            "roi": np.tile(np.arange(n_rois), n_subj),
            "name": np.tile(self.roi_names, n_subj),
            "group": np.tile([area_group(n[2:]) for n in self.roi_names], n_subj),
            "r": self.r.ravel(), "r2": self.r2.ravel(), "alpha": alpha.ravel(),
        })
        if ceiling is not None:
            table["ceiling"] = np.asarray(ceiling).ravel()
            table["norm_r"] = self.normalized(ceiling).ravel()
        return table

    def save(self, folder, name, tidy=True):
        """Write ``<name>_rois.csv`` (tidy, unless ``tidy=False``), ``<name>.npz`` (arrays) and ``<name>.json``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if tidy:
            self.roi_scores().to_csv(folder / f"{name}_rois.csv", index=False)
        arrays = {"r": self.r, "r_folds": self.r_folds, "r2": self.r2, "alphas": self.alphas,
                  "subjects": np.asarray(self.subjects), "roi_names": np.asarray(self.roi_names),
                  "test_trs": self.test_trs}
        if self.predictions is not None:
            arrays["predictions"] = self.predictions
        _atomic_savez(folder / f"{name}.npz", arrays)
        (folder / f"{name}.json").write_text(json.dumps(self.params, indent=1))
        return folder / f"{name}.npz"

    @classmethod
    def load(cls, folder, name):
        """Read a result written by :meth:`save`."""
        folder = Path(folder)
        with np.load(folder / f"{name}.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        params_file = folder / f"{name}.json"
        params = json.loads(params_file.read_text()) if params_file.exists() else {}
        return cls(r=arrays["r"], r_folds=arrays["r_folds"], r2=arrays["r2"], alphas=arrays["alphas"],
                   subjects=arrays["subjects"].tolist(), roi_names=arrays["roi_names"].tolist(),
                   test_trs=arrays["test_trs"], predictions=arrays.get("predictions"),
                   params=params, cv=splitter_from_params(params.get("cv")))


def _atomic_savez(path, arrays):
    atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))

