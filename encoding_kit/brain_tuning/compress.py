"""The compressed brain state a text model is tuned on, fitted on training TRs only.

The BrainAligner study compressed whole-brain fMRI three ways; here are the
same three for 360 ROIs (``method``):

* ``"ceiling"``: the ``n_state`` ROIs with the highest noise ceiling (the ROI
  analogue of the study's highest-explainable-variance voxels), estimated with
  :func:`encoding_kit.analysis.stats.noise_ceiling` on the training TRs of every subject;
* ``"ridge"``: the ``n_state`` ROIs best predicted by a ridge model of the
  pretrained model's features, selected inside the training TRs: a gapped
  cross-validation over the training TRs gives held-out predictions, each ROI
  is tested with circular shifts and the p-values are FDR-corrected;
* ``"pca"``: the first ``n_state`` principal components of all ROIs (in place
  of the study's BrainLM foundation model);
* ``"brainlm"``: BrainLM itself, where its weights can be loaded.

Every statistic (means, scales, ceilings, ridge fits, components) comes from
the rows of the training TRs; ``transform`` then maps any rows with it.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..core.validation import check_int
from ..encoding.cv import DEFAULT_DELAYS, DEFAULT_N_SPLITS, GappedKFold

COMPRESSIONS = ("ceiling", "ridge", "pca", "brainlm")
BRAINLM = "vandijklab/brainlm"


class BrainCompressor:
    """Compress each TR's brain state (n_rois,) to ``n_state`` numbers, fitted on training TRs.

    Parameters
    ----------
    method : {"ceiling", "ridge", "pca", "brainlm"}
    n_state : int
        Size of the compressed state (ROIs kept, or components).
    fdr : float
        FDR level of the ``"ridge"`` selection.
    n_shifts : int
        Circular shifts of the ``"ridge"`` selection's significance test.
    delays : sequence of int
        FIR delays of the ``"ridge"`` selection's encoding model.
    pca : int, optional
        In-fold PCA of the features in the ``"ridge"`` selection.
    random_state : int

    Attributes
    ----------
    rois_ : int array of shape (n_state,)
        Kept ROIs (``"ceiling"``, ``"ridge"``), best first.
    scores_ : array of shape (n_rois,)
        What the ROIs were ranked by (mean ceiling, or inner held-out r).
    n_passed_ : int
        ROIs with a measurable ceiling, or FDR-significant ridge predictions.
    components_ : array of shape (n_state, n_rois)
        Principal axes (``"pca"``).
    """

    def __init__(self, method="pca", n_state=16, fdr=0.05, n_shifts=200, delays=DEFAULT_DELAYS, pca=None,
                 random_state=0):
        if method not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {method!r}")
        self.method, self.n_state = method, check_int(n_state, "n_state", 1)
        self.fdr, self.n_shifts, self.delays, self.pca = fdr, n_shifts, tuple(delays), pca
        self.random_state = random_state

    def describe(self):
        """The settings that change the fitted compression (part of the tuning cache key)."""
        return {"method": self.method, "n_state": self.n_state, "fdr": self.fdr, "n_shifts": self.n_shifts,
                "delays": list(self.delays), "pca": self.pca, "random_state": self.random_state}

    def fit(self, Y_train, train_trs, fmri_train=None, X=None):
        """Fit on the training TRs.

        Parameters
        ----------
        Y_train : array of shape (n_train, n_rois)
            The tuning target (mean of the tuning subjects) at the training TRs.
        train_trs : int array of shape (n_train,)
            The training TRs (sorted), for gaps and contiguous runs.
        fmri_train : array of shape (n_subjects, n_train, n_rois), optional
            Every subject at the training TRs (``"ceiling"``).
        X : array of shape (n_trs, n_features), optional
            Pretrained features on the story's TR grid (``"ridge"``); only the
            training TRs' rows (and their delays, which stay inside the
            training TRs' runs after the outer gap) enter the fit.

        Returns
        -------
        self
        """
        Y_train = np.asarray(Y_train, dtype=np.float64)
        n_train, n_rois = Y_train.shape
        if self.n_state > n_rois:
            raise ValueError(f"the brain state size n_state={self.n_state} is larger than the {n_rois} ROIs "
                             f"available; use n_state <= {n_rois}")
        self.mean_ = Y_train.mean(0)
        self.scale_ = Y_train.std(0) + 1e-8
        if self.method == "brainlm":
            raise load_brainlm_error(n_rois)
        if self.method == "pca":
            self._fit_pca((Y_train - self.mean_) / self.scale_, n_train)
        elif self.method == "ceiling":
            self._fit_ceiling(fmri_train)
        else:
            self._fit_ridge(Y_train, np.asarray(train_trs, dtype=int), X)
        states = self._project(Y_train)
        self.state_mean_, self.state_scale_ = states.mean(0), states.std(0) + 1e-8
        return self

    def transform(self, Y):
        """Compressed, standardised states, float32 array of shape (n, n_state), from rows (n, n_rois)."""
        return ((self._project(np.asarray(Y, dtype=np.float64)) - self.state_mean_) / self.state_scale_).astype(
            np.float32)

    def _project(self, Y):
        Z = (Y - self.mean_) / self.scale_
        return Z @ self.components_.T if self.method == "pca" else Z[:, self.rois_]

    def _fit_pca(self, Z, n_train):
        from sklearn.decomposition import PCA

        if self.n_state > n_train:
            raise ValueError(f"n_state={self.n_state} principal components need at least as many training TRs; "
                             f"found {n_train}")
        pca = PCA(n_components=self.n_state, random_state=self.random_state).fit(Z)
        self.components_, self.explained_variance_ratio_ = pca.components_, pca.explained_variance_ratio_
        self.n_passed_ = self.n_state

    def _fit_ceiling(self, fmri_train):
        from ..analysis.stats import noise_ceilings, quiet_nan_warnings

        if fmri_train is None or len(fmri_train) < 2:
            raise ValueError("compression='ceiling' needs every subject's training TRs (fmri_train, at least 2 "
                             "subjects) for the inter-subject noise ceiling")
        with quiet_nan_warnings():
            # the lenient ceiling ranks the rest, if needed; one pass over the pairwise ISCs gives both
            measurable, lenient = (np.nanmean(c, axis=0) for c in noise_ceilings(fmri_train, (3.0, 0.0)))
        self.n_passed_ = int(np.isfinite(measurable).sum())
        self.scores_ = np.where(np.isfinite(measurable), measurable, np.nan)
        order = np.lexsort((-np.nan_to_num(lenient, nan=-np.inf), -np.nan_to_num(measurable, nan=-np.inf)))
        self.rois_ = order[: self.n_state]
        self._warn_short("have a measurable noise ceiling in the training TRs", "the next by their lenient ceiling")

    def _fit_ridge(self, Y_train, train_trs, X):
        from ..analysis.stats import circular_shift_pvalues, fdr_bh

        if X is None:
            raise ValueError("compression='ridge' needs the pretrained features X (n_trs, n_features)")
        pred, obs = inner_heldout_predictions(X, Y_train, train_trs, self.delays, self.pca)
        r, p = circular_shift_pvalues(pred, obs, n_shifts=self.n_shifts, random_state=self.random_state)
        q = fdr_bh(p)
        self.scores_, self.q_ = r, q
        self.n_passed_ = int((np.nan_to_num(q, nan=1.0) < self.fdr).sum())
        significant = np.nan_to_num(q, nan=1.0) < self.fdr
        order = np.lexsort((-np.nan_to_num(r, nan=-np.inf), ~significant))
        self.rois_ = order[: self.n_state]
        self._warn_short(f"are predicted at FDR q < {self.fdr}", "the next best predicted")

    def _warn_short(self, what, filled):
        if self.n_passed_ < self.n_state:
            warnings.warn(f"only {self.n_passed_} of the ROIs {what}; the brain state of {self.n_state} ROIs is "
                          f"filled with {filled}", stacklevel=3)


def inner_heldout_predictions(X, Y_train, train_trs, delays=DEFAULT_DELAYS, pca=None, n_folds=DEFAULT_N_SPLITS):
    """Held-out ridge predictions of the training TRs from a gapped CV inside them.

    Parameters
    ----------
    X : array of shape (n_trs, n_features)
    Y_train : array of shape (n_train, n_rois)
        Rows of ``train_trs``.
    train_trs : int array of shape (n_train,)
    delays : sequence of int
    pca : int, optional
    n_folds : int

    Returns
    -------
    pred, obs : arrays of shape (n_scored, n_rois)
        Predictions and data of every inner held-out block, each block centred
        (for a circular-shift test of the concatenated series).
    """
    from ..encoding.estimators import GappedRidgeCV
    from ..encoding.fold_loop import OuterFolds, fold_predictions, make_encoding_pipeline

    gap = max(abs(int(d)) for d in delays)
    train_trs = np.asarray(train_trs)
    Y = np.zeros((len(X), Y_train.shape[1]), np.float32)  # only the training TRs are ever read
    Y[train_trs] = Y_train
    cv = GappedKFold(n_folds, gap)  # blocks of the training TRs, the gap measured in TRs across the outer hole
    splits = cv.split_indices(train_trs)
    folds = OuterFolds(splits, np.sort(np.concatenate([test for _, test in splits])), GappedKFold(DEFAULT_N_SPLITS, gap), cv)
    pipeline = make_encoding_pipeline(GappedRidgeCV(backend="numpy"), delays, pca)
    preds, obs = [], []
    for fold in fold_predictions(pipeline, X, Y, folds, progress=False):
        y_val = Y[fold.test]
        preds.append(fold.pred - fold.pred.mean(0))
        obs.append(y_val - y_val.mean(0))
    return np.concatenate(preds), np.concatenate(obs)


def load_brainlm_error(n_rois):
    """The sentence ``compression="brainlm"`` raises: its weights are missing, or they do not fit the ROIs.

    BrainLM (a masked autoencoder trained on UK Biobank fMRI) reads time
    series in the 424 parcels of the A424 atlas; the course's 360 HCP-MMP ROIs
    are not that input, and the kit ships no mapping between the two atlases.
    """
    try:
        from huggingface_hub import try_to_load_from_cache

        found = isinstance(try_to_load_from_cache(BRAINLM, "config.json"), str)
    except Exception:  # no hub package, or an invalid cache
        found = False
    if not found:
        return ValueError(f"compression='brainlm' needs the BrainLM weights ({BRAINLM}), which are not in the local "
                          "Hugging Face cache (the kit does not download them); use compression='pca', the kit's "
                          "stand-in for a learned whole-brain compression")
    return ValueError(f"compression='brainlm': the BrainLM weights are cached, but BrainLM reads the 424 parcels of "
                      f"the A424 atlas and these data have {n_rois} HCP-MMP ROIs; the kit has no mapping between "
                      "the atlases, so use compression='pca'")
