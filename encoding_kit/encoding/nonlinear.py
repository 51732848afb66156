"""Nonlinear encoders, trained on exactly the ridge's folds.

Both plug into :func:`evaluate_encoding` as ``fitter=`` so the outer gapped
folds, the in-fold standardisation/PCA and the scoring are the ridge's own:

* :class:`MLPFitter`: delayed features -> hidden layer -> all targets;
* :class:`LagAttentionFitter`: the window of delayed TR features read as a
  sequence over lags by a small GRU, with soft attention over lags for every
  target; :func:`lag_attention_table` reads the weights per ROI group against
  the ROIs the network cannot predict (what fitting noise does to them).

Both stop early on the last inner validation block (a gapped, contiguous
part of the training data) and run on a GPU when one is available. Training
is seeded, so :func:`evaluate_encoding` caches their results (and the learned
attention) like the ridge's: a re-executed notebook does not retrain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.runtime import torch_device
from ..data.timebase import TR
from .cv import DEFAULT_DELAYS


class TorchFitter:
    """Shared training loop: full-batch Adam on MSE, early stopping on an inner block.

    Attributes
    ----------
    epochs_ : list of int
        The epoch kept by early stopping, one per outer fold.
    """

    cache_state_attrs = ("epochs_",)
    """Learned lists that :mod:`.result_cache` stores and restores with a cached result."""
    run_log_kind = "networks"
    """How :mod:`encoding_kit.core.run_log` counts its evaluations (ridge fitters: ``"ridge"``)."""

    def __init__(self, max_epochs=200, patience=15, lr=1e-3, weight_decay=1e-4, random_state=0, device=None):
        self.max_epochs = max_epochs
        self.patience = patience
        self.lr = lr
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device
        self.epochs_ = []

    def cache_params(self):
        """What changes the results: every setting, the seed, the device type and the torch version.

        Training is seeded, so on one machine a re-run gives the same numbers;
        a GPU or another torch version may differ in the last digits and gets
        its own cache entry.
        """
        import torch

        skip = set(self.cache_state_attrs) | {"device"}
        params = {k: v for k, v in vars(self).items() if k not in skip}
        return {**params, "device_type": torch_device(self.device).type, "torch": torch.__version__}

    def _build(self, n_features, n_targets):  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_predict(self, X_train, Y_train, X_test, cv):
        """Train on ``X_train`` minus the last inner validation block, stop early on it, predict.

        Returns
        -------
        pred : array of shape (n_test, n_targets)
        alphas : array of shape (n_targets,), all NaN (no ridge penalty)
        """
        import torch

        torch.manual_seed(self.random_state)
        device = torch_device(self.device)
        fit_pos, val_pos = cv[-1]
        scale = Y_train[fit_pos].std(0) + 1e-6
        X = torch.as_tensor(np.asarray(X_train, np.float32), device=device)
        Y = torch.as_tensor(np.asarray(Y_train / scale, np.float32), device=device)
        model = self._build(X.shape[1], Y.shape[1]).to(device)
        optimizer = torch.optim.Adam(self._param_groups(model), lr=self.lr, weight_decay=self.weight_decay)
        fit_idx = torch.as_tensor(fit_pos, device=device)
        val_idx = torch.as_tensor(val_pos, device=device)
        # the rows of every epoch, gathered once (not one copy of Y per epoch)
        X_fit, Y_fit, X_val, Y_val = X[fit_idx], Y[fit_idx], X[val_idx], Y[val_idx]
        best, best_state, waited = np.inf, None, 0
        for epoch in range(1, self.max_epochs + 1):
            model.train()
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(X_fit), Y_fit)
            loss.backward()
            optimizer.step()
            model.eval()
            with torch.inference_mode():
                val = torch.nn.functional.mse_loss(model(X_val), Y_val).item()
            if val < best - 1e-5:
                best, waited, best_epoch = val, 0, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                waited += 1
                if waited >= self.patience:
                    break
        model.load_state_dict(best_state)
        self.epochs_.append(best_epoch)
        model.eval()
        with torch.inference_mode():
            pred = model(torch.as_tensor(np.asarray(X_test, np.float32), device=device)).cpu().numpy()
        self._after_fit(model, X)
        return pred * scale, np.full(Y_train.shape[1], np.nan)

    def _param_groups(self, model):
        return [{"params": list(model.parameters())}]

    def _after_fit(self, model, X):
        pass


class MLPFitter(TorchFitter):
    """One-hidden-layer perceptron from delayed features to all targets.

    Parameters
    ----------
    hidden : int
        Hidden units (shared by all targets).
    dropout : float
    **kwargs
        Training settings (``max_epochs``, ``patience``, ``lr``, ...).
    """

    def __init__(self, hidden=128, dropout=0.2, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.dropout = dropout

    def _build(self, n_features, n_targets):
        import torch.nn as nn

        return nn.Sequential(nn.Dropout(self.dropout), nn.Linear(n_features, self.hidden), nn.GELU(),
                             nn.Dropout(self.dropout), nn.Linear(self.hidden, n_targets))


def _lag_attention_module(n_lags, n_features, n_targets, hidden):
    import torch
    import torch.nn as nn

    class LagAttention(nn.Module):
        """Soft attention over lags per target; a GRU over the lag sequence modulates it.

        The score of lag l for target t is ``lag_logit[t, l] + query[t] . h_l``:
        a learned lag preference plus a content term from the GRU state ``h_l``
        (which has read lags 1..l). What is read out at lag l comes from that
        lag's features alone (``value(x_l)``), so the weights say which lag
        drives the target.
        """

        def __init__(self):
            super().__init__()
            self.n_lags = n_lags
            self.gru = nn.GRU(n_features, hidden, batch_first=True)
            self.value = nn.Linear(n_features, hidden)
            self.query = nn.Parameter(torch.randn(n_targets, hidden) * 0.1)
            self.lag_logit = nn.Parameter(torch.zeros(n_targets, n_lags))
            self.readout = nn.Parameter(torch.randn(n_targets, hidden) * 0.1)
            self.bias = nn.Parameter(torch.zeros(n_targets))

        def attention(self, x):
            """Lags of shape (n, n_lags, n_features) and weights of shape (n_lags, n, n_targets)."""
            # make_delays stacks blocks in delay order: (n, lags * features) -> (n, lags, features)
            lags = x.reshape(x.shape[0], self.n_lags, -1)
            states, _ = self.gru(lags)
            # lag-major (n_lags, n, n_targets) tensors: one contiguous matmul per lag, ~3x faster than (n, t, l)
            scores = torch.matmul(states.transpose(0, 1), self.query.T) + self.lag_logit.T[:, None, :]
            return lags, torch.softmax(scores, dim=0)

        def forward(self, x):
            # sum_l w[l,n,t] * (value(x_l) . readout[t]), without an (n, t, hidden) tensor; the attention and
            # the mixing in one autograd step (_LagMix): the same numbers as `attention` and a weighted sum
            lags = x.reshape(x.shape[0], self.n_lags, -1)
            states, _ = self.gru(lags)
            return lag_mix(states.transpose(0, 1), self.query, self.lag_logit,
                           self.value(lags).transpose(0, 1), self.readout) + self.bias

    lag_mix = _lag_mix_function()
    return LagAttention()


def _lag_mix_function():
    """``lag_mix(states, query, lag_logit, values, readout)``: the attention-weighted read-out, fused.

    With ``states``, ``values`` of shape (n_lags, n, hidden), ``query``, ``readout`` of shape (n_targets, hidden)
    and ``lag_logit`` of shape (n_targets, n_lags), it returns ``sum_l w[l] * p[l]``, array (n, n_targets), with
    ``w = softmax_l(states @ query.T + lag_logit.T)`` and ``p = values @ readout.T``. Autograd through those
    separate operations keeps and walks several (n_lags, n, n_targets) tensors per step (the product, the
    softmax's output and gradient, the broadcast sum); here the backward pass is written out from the two saved
    ones (``w``, ``p``): ``dp = w g`` and ``ds = w (p - out) g`` (the softmax's Jacobian), then the matrix
    products. Same maths; the sums run in another order, so numbers agree to float32 rounding
    (``tests/test_nonlinear.py`` checks against the plain autograd version).
    """
    import torch
    from torch.autograd.function import once_differentiable

    class LagMix(torch.autograd.Function):
        @staticmethod
        def forward(ctx, states, query, lag_logit, values, readout):
            states, values = states.contiguous(), values.contiguous()
            weights = torch.matmul(states, query.T)
            weights += lag_logit.T[:, None, :]
            weights -= weights.amax(0)  # the softmax over lags, in place
            weights.exp_()
            weights /= weights.sum(0)
            per_lag = torch.matmul(values, readout.T)
            out = weights[0] * per_lag[0]
            for lag in range(1, len(weights)):
                out.addcmul_(weights[lag], per_lag[lag])
            ctx.save_for_backward(states, query, values, readout, weights, per_lag, out)
            return out

        @staticmethod
        @once_differentiable
        def backward(ctx, grad):
            states, query, values, readout, weights, per_lag, out = ctx.saved_tensors
            n_targets = grad.shape[1]
            d_per_lag = weights * grad
            d_scores = per_lag.sub_(out).mul_(d_per_lag)  # w (p - out) g; per_lag is not needed again: reused
            d_states = torch.matmul(d_scores, query)
            d_query = d_scores.reshape(-1, n_targets).T @ states.reshape(-1, states.shape[-1])
            d_logit = d_scores.sum(1).T
            d_values = torch.matmul(d_per_lag, readout)
            d_readout = d_per_lag.reshape(-1, n_targets).T @ values.reshape(-1, values.shape[-1])
            return d_states, d_query, d_logit, d_values, d_readout

    return LagMix.apply


class LagAttentionFitter(TorchFitter):
    """Time-resolved encoder: GRU over lags + soft attention over lags per target.

    Parameters
    ----------
    n_lags : int
        Number of delays the features were built with (``len(delays)``).
    hidden : int
        GRU state size.
    attention_lr : float
        Learning rate of the per-target lag preferences. Higher than ``lr``:
        with Adam a parameter moves by about its learning rate per epoch, and
        a lag preference must move by units of log-odds within the ~100
        epochs of training (at ``lr`` it stays uniform).
    **kwargs
        Training settings.

    Attributes
    ----------
    attention_folds_ : list of arrays of shape (n_targets, n_lags)
        Mean attention over training TRs, one array per outer fold.
    """

    cache_state_attrs = ("epochs_", "attention_folds_")

    def __init__(self, n_lags, hidden=32, attention_lr=3e-2, **kwargs):
        super().__init__(**kwargs)
        self.n_lags = n_lags
        self.hidden = hidden
        self.attention_lr = attention_lr
        self.attention_folds_ = []

    def _param_groups(self, model):
        rest = [p for name, p in model.named_parameters() if name != "lag_logit"]
        return [{"params": rest}, {"params": [model.lag_logit], "lr": self.attention_lr, "weight_decay": 0.0}]

    def _build(self, n_features, n_targets):
        if n_features % self.n_lags:
            raise ValueError(f"{n_features} delayed columns are not a multiple of n_lags={self.n_lags}")
        return _lag_attention_module(self.n_lags, n_features // self.n_lags, n_targets, self.hidden)

    def _after_fit(self, model, X):
        import torch

        with torch.inference_mode():
            _, weights = model.attention(X)
        self.attention_folds_.append(weights.mean(1).T.cpu().numpy())

    def attention(self):
        """Mean attention over folds, array of shape (n_targets, n_lags)."""
        return np.mean(self.attention_folds_, axis=0)


def lag_attention_table(fitter, result, delays=DEFAULT_DELAYS, tr=TR, reference_r=0.02):
    """Attention over lags per ROI group, against what the network learns from noise.

    A network that fits noise also moves its attention: it favours the lags
    least correlated with the others (the first and last), because mixing
    them gives it more freedom. ROIs it cannot predict (mean held-out r
    across subjects below ``reference_r``) show that pattern alone, so they
    are the reference; a group's *shift* from it is what its response adds.

    Parameters
    ----------
    fitter : LagAttentionFitter
        Fitted through :func:`evaluate_encoding` (its ``attention()`` has one
        row per subject and ROI, subjects first).
    result : EncodingResult
        The held-out scores of that fit, ``r`` of shape (n_subjects, n_rois).
    delays : sequence of int
        The delays the features were built with, in TRs.
    tr : float
        Repetition time in seconds.
    reference_r : float

    Returns
    -------
    pandas.DataFrame
        Tidy: one row per ROI group (and the reference) and lag, with
        ``weight`` (mean attention), ``shift`` (minus the reference),
        ``lag_s`` and ``n_rois``.
    """
    from ..data.rois import roi_table

    n_subjects, n_rois = result.r.shape
    weights = fitter.attention().reshape(n_subjects, n_rois, len(delays)).mean(0)
    mean_r = np.nanmean(result.r, axis=0)
    groups = roi_table()["group"].to_numpy()[:n_rois]
    reference = mean_r < reference_r
    if reference.any():
        baseline = weights[reference].mean(0)
    else:  # every ROI is predicted: compare with uniform attention
        baseline = np.full(len(delays), 1.0 / len(delays))
    rows = []
    named = [(g, groups == g) for g in pd.unique(groups)]
    for name, mask in named + [(f"reference (r < {reference_r:g})", reference)]:
        if not mask.any():
            continue
        mean = weights[mask].mean(0)
        for lag, w, b in zip(delays, mean, baseline):
            rows.append({"group": name, "lag_s": lag * tr, "weight": w, "shift": w - b, "n_rois": int(mask.sum())})
    return pd.DataFrame(rows)
