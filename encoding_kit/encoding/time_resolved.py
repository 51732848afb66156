"""Time-resolved encoder: a bidirectional LSTM over sub-TR frames, soft attention over time, output per ROI.

The design of the Whisper-ECoG study, on fMRI: the input of TR ``t`` is the
sequence of sub-TR speech-embedding frames of TRs ``t - 1 .. t - 4`` (frames
from :func:`encoding_kit.features.audio_frames.extract_frame_sequences`,
delayed by :func:`encoding_kit.encoding.cv.make_delays`), put in time order (oldest
first). A bidirectional LSTM reads it; an attention head (one per ROI group
by default, shared by the group's ROIs and subjects) scores each frame by
``position_logit[head, frame] + query[head] . h_frame`` (a learned
preference over time plus a content term from the LSTM state), a softmax over
frames gives the attention, and each ROI reads the attention-weighted sum of
the frames' own projections linearly (its own readout). What is summed comes
from each frame alone (not from the LSTM state, which has read the whole
sequence), so the attention says *which part of the window* drives a group
of ROIs; the LSTM decides *when* from the context. One head per group rather
than per ROI keeps the attention tensors small (with 360 per-ROI heads a
full-batch epoch took twice as long as the LSTM alone on a CPU);
``target_groups`` sets any other grouping, down to one head per target.

:class:`TimeResolvedFitter` plugs into :func:`encoding_kit.encoding.evaluate.evaluate_encoding`
as ``fitter=`` (the ridge's outer gapped folds, standardisation on training
TRs, early stopping on the last inner gapped block). Inside each fold it
reduces every frame with one PCA fitted on the training TRs' frames, so time
is never mixed before the network sees it.
"""

from __future__ import annotations

import numpy as np

from ..data.rois import roi_table
from .nonlinear import TorchFitter


def chronological_order(times):
    """Positions of a delayed frame sequence sorted oldest first (largest time before the TR end first)."""
    return np.argsort(-np.asarray(times), kind="stable")


def _time_resolved_module(n_frames, n_features, head_of_target, n_heads, hidden):
    import torch
    import torch.nn as nn

    class TimeResolvedEncoder(nn.Module):
        """BiLSTM over frames -> soft attention over frames per head -> linear readout per target.

        Every target reads the attention head of its label (its ROI group by
        default): the score of frame ``f`` for head ``g`` is
        ``position_logit[g, f] + query[g] . h_f`` with ``h_f`` the BiLSTM
        state; the head's context is the attention-weighted sum of the
        frames' own projections ``value(x_f)``, and target ``t`` predicts
        ``readout[t] . context[head(t)] + bias[t]``.
        """

        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(n_features, hidden, batch_first=True, bidirectional=True)
            self.value = nn.Linear(n_features, hidden)
            self.query = nn.Parameter(torch.randn(n_heads, 2 * hidden) * 0.1)
            self.position_logit = nn.Parameter(torch.zeros(n_heads, n_frames))
            self.readout = nn.Parameter(torch.randn(len(head_of_target), hidden) * 0.1)
            self.bias = nn.Parameter(torch.zeros(len(head_of_target)))
            self.register_buffer("head_of_target", torch.as_tensor(head_of_target, dtype=torch.long))

        def attention(self, x):
            """Frames (n, n_frames * n_features) -> weights of shape (n_frames, n, n_heads), summing to 1 over frames."""
            states, _ = self.lstm(x.reshape(x.shape[0], n_frames, n_features))
            scores = torch.matmul(states.transpose(0, 1), self.query.T) + self.position_logit.T[:, None, :]
            return torch.softmax(scores, dim=0)

        def forward(self, x):
            weights = self.attention(x)
            values = self.value(x.reshape(x.shape[0], n_frames, n_features))  # (n, n_frames, hidden)
            context = torch.einsum("fng,nfh->ngh", weights, values)  # (n, n_heads, hidden)
            return (context[:, self.head_of_target] * self.readout).sum(-1) + self.bias

    return TimeResolvedEncoder()


class _BestPerTarget:
    """Early stopping per target: each target keeps its test prediction from its best validation epoch.

    One network serves every ROI, and most ROIs carry no signal: their
    validation loss rises from the first epoch while the driven ROIs still
    improve, so one stopping epoch for all would stop them all at once. Each
    target keeps its own best epoch (chosen on the inner validation block
    only), and each attention head the attention of the epoch where its
    targets' mean validation loss was lowest.
    """

    def __init__(self, n_targets, n_heads, head_of_target):
        self.loss = np.full(n_targets, np.inf)
        self.head_loss = np.full(n_heads, np.inf)
        self.head_of_target = head_of_target.cpu().numpy()
        self.head_epoch = np.zeros(n_heads, int)
        self.states = {}  # epoch -> the weights of that epoch, while some head keeps it as its best
        self.pred = None
        self.last_improved = 0

    def update(self, epoch, val_loss, model, X_test):
        """Record what improved at this epoch; True if any target did."""
        val_loss = val_loss.cpu().numpy()
        better = val_loss < self.loss - 1e-5
        per_head = np.bincount(self.head_of_target, val_loss) / np.bincount(self.head_of_target)
        heads = per_head < self.head_loss - 1e-5
        if better.any():
            pred = model(X_test).cpu().numpy()
            self.pred = pred if self.pred is None else self.pred
            self.pred[:, better] = pred[:, better]
            self.loss[better] = val_loss[better]
            self.last_improved = epoch
        if heads.any():
            self.head_loss[heads] = per_head[heads]
            self.head_epoch[heads] = epoch
            self.states[epoch] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.states = {e: w for e, w in self.states.items() if e in set(self.head_epoch)}
        return bool(better.any())

    def attention(self, model, X, X_test):
        """Each head's attention at its best epoch: training mean (n_heads, n_frames), test (n_frames, n_test, n_heads)."""
        train, test = None, None
        for epoch, weights in self.states.items():
            model.load_state_dict(weights)
            heads = self.head_epoch == epoch
            train_w, test_w = model.attention(X).mean(1).T.cpu().numpy(), model.attention(X_test).cpu().numpy()
            train = train_w if train is None else train
            test = test_w if test is None else test
            train[heads], test[:, :, heads] = train_w[heads], test_w[:, :, heads]
        return train, test


class TimeResolvedFitter(TorchFitter):
    """BiLSTM + soft attention over sub-TR frames, trained on the ridge's folds.

    Training follows :class:`encoding_kit.encoding.nonlinear.LagAttentionFitter`'s
    conventions (seeded Adam on MSE of the targets scaled by their training
    std, early stopping on the last inner gapped validation block) in
    shuffled mini-batches (a sequence model is too slow on a CPU for the
    hundreds of full-batch epochs Adam needs), with early stopping **per
    target** (:class:`_BestPerTarget`): training goes on while any target's
    validation loss improves, and each target keeps its best epoch's
    prediction.

    Parameters
    ----------
    times : array of shape (n_frames,)
        Seconds before the end of the predicted TR of each frame of a delayed
        row, in the column order of the delayed features
        (:func:`encoding_kit.features.audio_frames.frame_times`).
    frame_pca : int
        Components of the per-frame PCA, fitted on the training TRs of each fold.
    hidden : int
        LSTM state size per direction (and of the frame projections).
    target_groups : array of shape (n_targets,), optional
        The attention head of each target; default the kit's ROI groups when
        the targets are whole sets of 360 ROIs (one head per group, shared by
        the subjects), else one head per target.
    batch_size : int
    attention_lr : float
        Learning rate of the heads' preferences over time (higher than ``lr``:
        at ``lr`` they barely move from uniform within the epochs of training).
    **kwargs
        ``max_epochs``, ``patience``, ``lr``, ``weight_decay``, ``random_state``, ``device``.

    Attributes
    ----------
    attention_folds_ : list of arrays of shape (n_heads, n_frames)
        Mean attention of each head over each fold's training TRs, frames
        oldest first, at the head's best validation epoch.
    epochs_ : list of int
        Per fold, the last epoch at which any target improved.
    test_attention_ : list of arrays of shape (n_frames, n_heads)
        One per held-out TR (folds in order, as ``result.test_trs``).
    """

    cache_state_attrs = ("epochs_", "attention_folds_", "test_attention_")

    def __init__(self, times, frame_pca=16, hidden=16, target_groups=None, batch_size=128, attention_lr=3e-2,
                 max_epochs=60, patience=8, lr=1e-3, **kwargs):
        super().__init__(max_epochs=max_epochs, patience=patience, lr=lr, **kwargs)
        self.times = [float(t) for t in np.asarray(times, float)]
        self.frame_pca = int(frame_pca)
        self.hidden = int(hidden)
        self.target_groups = None if target_groups is None else [str(g) for g in target_groups]
        self.batch_size = int(batch_size)
        self.attention_lr = attention_lr
        self.attention_folds_ = []
        self.test_attention_ = []

    @property
    def order(self):
        return chronological_order(self.times)

    def sorted_times(self):
        """Frame times (s before the TR end), oldest first: the columns of the attention arrays."""
        return np.asarray(self.times)[self.order]

    def group_labels(self, n_targets):
        """The head label of each target (see ``target_groups``), array of shape (n_targets,)."""
        if self.target_groups is not None:
            if len(self.target_groups) != n_targets:
                raise ValueError(f"target_groups has {len(self.target_groups)} labels for {n_targets} targets")
            return np.asarray(self.target_groups)
        if n_targets % 360 == 0:
            return np.tile(roi_table()["group"].to_numpy(), n_targets // 360)
        return np.array([f"target_{i}" for i in range(n_targets)])

    def attention_labels(self, n_targets):
        """The heads, in the order of the last axis of ``test_attention_`` and the rows of ``attention_folds_``."""
        return list(dict.fromkeys(self.group_labels(n_targets)))

    def _frames(self, X):
        n_frames = len(self.times)
        if X.shape[1] % n_frames:
            raise ValueError(f"{X.shape[1]} feature columns are not a multiple of the {n_frames} frame times")
        return np.asarray(X, np.float32).reshape(len(X), n_frames, -1)[:, self.order]

    def _reduce_frames(self, X_train, X_test):
        """One PCA of the frames of the training TRs (whitened), applied to every frame of both sets."""
        from sklearn.decomposition import PCA

        train, test = self._frames(X_train), self._frames(X_test)
        n_frames, width = train.shape[1:]
        k = min(self.frame_pca, width, len(train) * n_frames)
        pca = PCA(k, whiten=True, random_state=self.random_state).fit(train.reshape(-1, width))
        return [pca.transform(a.reshape(-1, width)).reshape(len(a), n_frames * k).astype(np.float32)
                for a in (train, test)]

    def fit_predict(self, X_train, Y_train, X_test, cv):
        """Per-frame PCA on the training TRs, train with early stopping, predict, keep the attention.

        Parameters
        ----------
        X_train : array of shape (n_train, n_frames * n_features)
            Delayed frame features (blocks in the order of ``times``).
        Y_train : array of shape (n_train, n_targets)
        X_test : array of shape (n_test, n_frames * n_features)
        cv : list of (fit_positions, val_positions)
            Positions into the training rows; the last validation block stops training.

        Returns
        -------
        pred : array of shape (n_test, n_targets)
        alphas : array of shape (n_targets,), all NaN
        """
        import torch

        from ..core.runtime import torch_device

        torch.manual_seed(self.random_state)
        generator = torch.Generator().manual_seed(self.random_state)
        device = torch_device(self.device)
        train, test = self._reduce_frames(X_train, X_test)
        fit_pos, val_pos = cv[-1]
        scale = Y_train[fit_pos].std(0) + 1e-6
        X = torch.as_tensor(train, device=device)
        Y = torch.as_tensor(np.asarray(Y_train / scale, np.float32), device=device)
        labels = self.group_labels(Y.shape[1])
        heads = self.attention_labels(Y.shape[1])
        model = _time_resolved_module(len(self.times), train.shape[1] // len(self.times),
                                      [heads.index(g) for g in labels], len(heads), self.hidden).to(device)
        optimizer = torch.optim.Adam(self._param_groups(model), lr=self.lr, weight_decay=self.weight_decay)
        fit_idx, val_idx = torch.as_tensor(fit_pos), torch.as_tensor(val_pos, device=device)
        head_of_target = torch.as_tensor([heads.index(g) for g in labels], device=device)
        test_t = torch.as_tensor(test, device=device)
        keep = _BestPerTarget(Y.shape[1], len(heads), head_of_target)
        waited = 0
        for epoch in range(1, self.max_epochs + 1):
            model.train()
            for batch in fit_idx[torch.randperm(len(fit_idx), generator=generator)].split(self.batch_size):
                batch = batch.to(device)
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(model(X[batch]), Y[batch]).backward()
                optimizer.step()
            model.eval()
            with torch.inference_mode():
                val_loss = ((model(X[val_idx]) - Y[val_idx]) ** 2).mean(0)
                waited = 0 if keep.update(epoch, val_loss, model, test_t) else waited + 1
            if waited >= self.patience:
                break
        with torch.inference_mode():
            train_attention, test_attention = keep.attention(model, X, test_t)
        self.epochs_.append(keep.last_improved)
        self.attention_folds_.append(train_attention)
        self.test_attention_.extend(test_attention.transpose(1, 0, 2))
        return keep.pred * scale, np.full(Y_train.shape[1], np.nan)

    def _param_groups(self, model):
        rest = [p for name, p in model.named_parameters() if name != "position_logit"]
        return [{"params": rest}, {"params": [model.position_logit], "lr": self.attention_lr, "weight_decay": 0.0}]

    def attention(self):
        """Mean training attention over folds, array of shape (n_heads, n_frames), frames oldest first."""
        return np.mean(self.attention_folds_, axis=0)
