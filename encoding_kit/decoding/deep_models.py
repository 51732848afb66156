"""Deep decoders: an MLP, a small transformer and a CNN-transformer hybrid over a window of TRs x ROIs.

Each decoder reads the ROI responses at TRs ``t + 1 .. t + 4`` (the ridge
decoder's delays) as a window of shape (n_window, n_rois) and predicts the
stimulus feature components of TR ``t``:

* ``"mlp"``: the flattened window -> one hidden layer -> targets;
* ``"transformer"`` (ViT-style): each TR of the window is a token, its ROI
  vector embedded linearly, plus a learned positional embedding; a class
  token (or the mean over tokens) feeds a linear read-out;
* ``"cnn_transformer"``: a temporal convolution over the window (ROIs as
  input channels) makes the tokens, then the same transformer.

:class:`DeepDecoder` trains one of them with mini-batch Adam on the mean
squared error of standardised targets, either stopping early on a
validation block or for a fixed number of epochs. Training is seeded (the
weights and the batch order), so a run is reproducible on one machine; it
uses a GPU when one is available.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..core.runtime import torch_device
from ..core.validation import check_int
from ..encoding.cv import make_delays

ARCHITECTURES = ("mlp", "transformer", "cnn_transformer")
"""The decoders :func:`build_decoder` makes, in the order the notebook shows them."""

DEFAULT_PARAMS = {
    "mlp": {"hidden": 128, "dropout": 0.2, "lr": 1e-3, "weight_decay": 1e-4},
    "transformer": {"d_model": 32, "n_layers": 1, "dropout": 0.1, "pooling": "cls", "lr": 3e-3, "weight_decay": 1e-4},
    "cnn_transformer": {"d_model": 32, "kernel": 3, "n_layers": 1, "dropout": 0.1, "lr": 3e-3, "weight_decay": 1e-4},
}
"""Hyperparameters used when none are searched; :mod:`.search` draws its own."""


@contextmanager
def torch_threads(n):
    """Run the block with ``n`` torch CPU threads, then restore the previous number."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_architecture(arch):
    """``arch`` if it is one of :data:`ARCHITECTURES`, else one clear ``ValueError``."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, found {arch!r}")
    return arch


def decoder_windows(brain, train, delays, n_components=None):
    """Windows of ROI responses for every TR, standardised (and optionally reduced) on training TRs.

    Parameters
    ----------
    brain : array of shape (n_trs, n_rois)
    train : int array
        Training TR indices: the mean, std and PCA come from these rows only.
    delays : sequence of int
        Window TRs after each decoded TR (the ridge decoder's delays).
    n_components : int, optional
        Keep this many principal components of the standardised ROIs (each
        scaled to unit variance on the training TRs); ``None`` keeps the ROIs.
        Fewer inputs make the networks several times faster to train.

    Returns
    -------
    float32 array of shape (n_trs, len(delays), n_rois or n_components)
        ``windows[t, j]`` is TR ``t + delays[j]``; zeros past the end of the data.
    """
    brain = np.asarray(brain, dtype=np.float32)
    if brain.ndim != 2:
        raise ValueError(f"brain must be an array of shape (n_trs, n_rois), found shape {brain.shape}")
    if max(delays) >= len(brain):
        raise ValueError(f"the window reaches {max(delays)} TRs ahead (delays {list(delays)}) but the data have "
                         f"only {len(brain)} TRs; use shorter delays or more TRs")
    x = (brain - brain[train].mean(0)) / (brain[train].std(0) + 1e-6)
    if n_components is not None and check_int(n_components, "n_components", 1) < x.shape[1]:
        from sklearn.decomposition import PCA

        pcs = PCA(n_components=min(n_components, len(train)), random_state=0).fit(x[train]).transform(x)
        x = pcs / (pcs[train].std(0) + 1e-6)
    delayed = make_delays(x, [-d for d in delays])  # blocks in delay order
    return delayed.reshape(len(brain), len(delays), x.shape[1]).astype(np.float32)


def _transformer_body(d_model, n_layers, dropout):
    import torch.nn as nn

    heads = 4 if d_model % 4 == 0 else 1
    layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=2 * d_model, dropout=dropout,
                                       batch_first=True, norm_first=True)
    # dropout on the two residual paths only: inside attention and the feed-forward block it cost ~1/3 of CPU time
    layer.self_attn.dropout, layer.dropout = 0.0, nn.Identity()
    return nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)


def build_decoder(arch, n_window, n_rois, n_targets, params):
    """The network of one architecture.

    Parameters
    ----------
    arch : {"mlp", "transformer", "cnn_transformer"}
    n_window, n_rois, n_targets : int
    params : dict
        Architecture hyperparameters (see :data:`DEFAULT_PARAMS`).

    Returns
    -------
    torch.nn.Module
        Maps windows of shape (n, n_window, n_rois) to (n, n_targets).
    """
    import torch
    import torch.nn as nn

    check_architecture(arch)
    if arch == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Dropout(params["dropout"]),
                             nn.Linear(n_window * n_rois, params["hidden"]), nn.GELU(),
                             nn.Dropout(params["dropout"]), nn.Linear(params["hidden"], n_targets))
    d_model = params["d_model"]

    class WindowTransformer(nn.Module):
        """Tokens = TRs of the window; learned positions; class token or mean pooling."""

        def __init__(self):
            super().__init__()
            if arch == "cnn_transformer":
                kernel = params["kernel"]
                self.stem = nn.Sequential(nn.Conv1d(n_rois, d_model, kernel, padding=kernel // 2), nn.GELU())
            else:
                self.stem = nn.Linear(n_rois, d_model)
            self.pooling = params.get("pooling", "mean")
            self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
            self.position = nn.Parameter(torch.randn(1, n_window + 1, d_model) * 0.02)
            self.body = _transformer_body(d_model, params["n_layers"], params["dropout"])
            self.norm = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, n_targets)

        def forward(self, x):
            if arch == "cnn_transformer":  # (n, window, rois) -> conv over time -> (n, window, d_model)
                tokens = self.stem(x.transpose(1, 2)).transpose(1, 2)[:, :n_window]
            else:
                tokens = self.stem(x)
            tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + self.position
            states = self.norm(self.body(tokens))
            return self.head(states[:, 0] if self.pooling == "cls" else states[:, 1:].mean(1))

    return WindowTransformer()


class DeepDecoder:
    """Train one deep decoder on windows (n, n_window, n_rois) -> targets (n, n_targets).

    Parameters
    ----------
    arch : {"mlp", "transformer", "cnn_transformer"}
    params : dict, optional
        Hyperparameters (default :data:`DEFAULT_PARAMS` of ``arch``).
    max_epochs : int
    patience : int
        Epochs without a better validation loss before stopping.
    batch_size : int
    random_state : int
    device : str, optional
        ``"cpu"``, ``"cuda"``; default: cuda when available.
    n_threads : int
        CPU threads while training. These networks are small: on 2 cores one
        thread per network (and networks in parallel across cores, as
        :func:`.evaluation.evaluate_deep_decoding` does) is much faster
        than two threads per network, which wait on each other.

    Attributes
    ----------
    best_epoch_ : int
        Epochs trained (the best validation epoch when stopped early).
    val_loss_ : float
        Validation MSE of standardised targets at ``best_epoch_`` (NaN without validation).
    """

    def __init__(self, arch, params=None, max_epochs=40, patience=6, batch_size=256, random_state=0, device=None,
                 n_threads=1):
        self.arch = check_architecture(arch)
        self.params = dict(DEFAULT_PARAMS[arch] if params is None else params)
        self.max_epochs = check_int(max_epochs, "max_epochs", 1)
        self.patience = check_int(patience, "patience", 1)
        self.batch_size = check_int(batch_size, "batch_size", 1)
        self.random_state = random_state
        self.device = device
        self.n_threads = check_int(n_threads, "n_threads", 1)

    def fit(self, windows, targets, val=None, epochs=None):
        """Fit; stop early on ``val = (windows, targets)`` or train exactly ``epochs`` epochs.

        Parameters
        ----------
        windows : array of shape (n, n_window, n_rois)
        targets : array of shape (n, n_targets)
        val : tuple of arrays, optional
        epochs : int, optional
            Used without ``val`` (default ``max_epochs``).

        Returns
        -------
        self
        """

        windows, targets = self._check(windows, targets)
        with torch_threads(self.n_threads):
            return self._fit(windows, targets, val, epochs)

    def _fit(self, windows, targets, val, epochs):
        import torch

        torch.manual_seed(self.random_state)
        self.device_ = torch_device(self.device)
        self.mean_, self.scale_ = targets.mean(0), targets.std(0) + 1e-6
        X, Y = self._tensor(windows), self._tensor((targets - self.mean_) / self.scale_)
        self.model_ = build_decoder(self.arch, windows.shape[1], windows.shape[2], targets.shape[1],
                                    self.params).to(self.device_)
        optimizer = torch.optim.AdamW(self.model_.parameters(), lr=self.params["lr"],
                                      weight_decay=self.params["weight_decay"])
        order = torch.Generator().manual_seed(self.random_state)
        if val is not None:
            val_X, val_y = self._check(*val)
            val_X, val_Y = self._tensor(val_X), self._tensor((val_y - self.mean_) / self.scale_)
        n_epochs = self.max_epochs if val is not None else check_int(epochs or self.max_epochs, "epochs", 1)
        best, best_state, waited, self.best_epoch_ = np.inf, None, 0, n_epochs
        for epoch in range(1, n_epochs + 1):
            self._train_epoch(X, Y, optimizer, order)
            if val is None:
                continue
            loss = self._loss(val_X, val_Y)
            if loss < best - 1e-5:
                best, waited, self.best_epoch_ = loss, 0, epoch
                best_state = {k: v.detach().clone() for k, v in self.model_.state_dict().items()}
            else:
                waited += 1
                if waited >= self.patience:
                    break
        if best_state is not None:
            self.model_.load_state_dict(best_state)
        self.val_loss_ = float(best) if val is not None else float("nan")
        return self

    def predict(self, windows):
        """Decoded targets, array of shape (n, n_targets)."""
        import torch

        windows = np.asarray(windows, dtype=np.float32)
        self.model_.eval()
        with torch.inference_mode(), torch_threads(self.n_threads):
            out = self.model_(self._tensor(windows)).cpu().numpy()
        return out * self.scale_ + self.mean_

    def _train_epoch(self, X, Y, optimizer, order):
        import torch

        self.model_.train()
        for batch in torch.randperm(len(X), generator=order).split(self.batch_size):
            batch = batch.to(self.device_)
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(self.model_(X[batch]), Y[batch]).backward()
            optimizer.step()

    def _loss(self, X, Y):
        import torch

        self.model_.eval()
        with torch.inference_mode():
            return torch.nn.functional.mse_loss(self.model_(X), Y).item()

    def _tensor(self, values):
        import torch

        return torch.as_tensor(np.asarray(values, np.float32), device=self.device_)

    @staticmethod
    def _check(windows, targets):
        windows, targets = np.asarray(windows, np.float32), np.asarray(targets, np.float32)
        if windows.ndim != 3 or targets.ndim != 2 or len(windows) != len(targets) or len(windows) < 2:
            raise ValueError(f"windows must have shape (n, n_window, n_rois) and targets (n, n_targets) with the "
                             f"same n >= 2, found {windows.shape} and {targets.shape}")
        return windows, targets
