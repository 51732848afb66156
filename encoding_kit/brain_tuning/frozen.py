"""The frozen lower layers of a tuned encoder, run once per distinct input and reused.

Brain tuning trains only the top ``tune_layers`` layers (and the new heads);
the embeddings and the layers below never change. Their output for a given
padded batch (token ids and attention mask) is therefore the same in every
run that feeds them that batch:

* the masked training batches of one seed, fold, mask rate and epoch count are
  the same for both methods, both controls and every compression (the masks
  and batch order come from the seed's generator and the windows only);
* the unmasked windows of the whole story, read for the tuned model's
  features, are the same for every run of a study (the baseline's windows).

:class:`FrozenStates` keeps those states, keyed by the batch's content (ids and
mask bytes), the split point, the device and the autocast state, so a hit is
always the same computation: nothing depends on knowing which runs share what.
:func:`top_only` then runs the model with its embeddings replaced by the
cached states and its layer stack cut to the tuned layers, through the
model's own forward (its attention-mask handling, pooler and heads unchanged).
"""

from __future__ import annotations

import contextlib
import hashlib

import torch
from torch import nn

DEFAULT_BUDGET_MB = 2048
"""Most memory the cached states take; later batches are computed but not kept (a cyclic run order would make a
least-recently-used cache miss every time, keeping the first ones gives the later cycles their hits)."""


def _layers_of(encoder):
    return encoder.encoder.layer


class _Given(nn.Module):
    """Stands in for the embeddings: returns the given states (plus an optional brain offset)."""

    def __init__(self, states, offset=None):
        super().__init__()
        self.states, self.offset = states, offset

    def forward(self, *args, **kwargs):
        return self.states if self.offset is None else self.states + self.offset


@contextlib.contextmanager
def top_only(encoder, split, states, offset=None):
    """Run ``encoder`` from layer ``split`` on: its embeddings return ``states`` and only layers ``split:`` run.

    Parameters
    ----------
    encoder : BERT-style bare encoder (``embeddings``, ``encoder.layer``)
    split : int
        Index of the first layer that runs (the layers below produced ``states``).
    states : tensor of shape (batch, length, hidden)
        Output of layer ``split - 1`` (of the embeddings when ``split`` is 0).
    offset : tensor broadcastable to ``states``, optional
        Added to ``states`` (BrainAligner's brain input).
    """
    embeddings, layers = encoder.embeddings, _layers_of(encoder)
    encoder.embeddings = _Given(states, offset)
    encoder.encoder.layer = nn.ModuleList(list(layers)[split:])
    try:
        yield
    finally:
        encoder.embeddings, encoder.encoder.layer = embeddings, layers


class FrozenStates:
    """Output of a frozen encoder's embeddings and lower layers, computed once per distinct padded batch.

    Parameters
    ----------
    encoder : BERT-style bare encoder
        The pretrained encoder whose lower layers every tuning keeps frozen (not modified).
    budget_mb : float
        Most memory kept (float32 states); batches past it are computed each time.
    """

    def __init__(self, encoder, budget_mb=DEFAULT_BUDGET_MB):
        self.encoder, self.budget = encoder, float(budget_mb) * 2 ** 20
        self._store, self.nbytes, self.hits, self.misses = {}, 0, 0, 0

    def __call__(self, ids, attention, split):
        """States after the first ``split`` layers, tensor (batch, length, hidden), for ids / mask (batch, length)."""
        key = self._key(ids, attention, split)
        states = self._store.get(key)
        if states is not None:
            self.hits += 1
            return states
        self.misses += 1
        states = self._compute(ids, attention, split)
        size = states.element_size() * states.nelement()
        if self.nbytes + size <= self.budget:
            self._store[key] = states
            self.nbytes += size
        return states

    def _key(self, ids, attention, split):
        digest = hashlib.sha1()
        for t in (ids, attention):
            a = t.detach().cpu().contiguous()
            digest.update(f"{tuple(a.shape)}{a.dtype}".encode())
            digest.update(a.numpy().tobytes())
        autocast = torch.is_autocast_enabled(ids.device.type) if hasattr(torch, "get_autocast_dtype") else None
        dtype = torch.get_autocast_dtype(ids.device.type) if autocast else None
        return int(split), str(ids.device), autocast, str(dtype), digest.hexdigest()

    def _compute(self, ids, attention, split):
        encoder = self.encoder.to(ids.device)
        was_training = encoder.training
        captured = []
        below = [encoder.embeddings, *list(_layers_of(encoder))[:split]]
        hook = below[-1].register_forward_hook(lambda m, i, out: captured.append(out[0] if isinstance(out, tuple)
                                                                                 else out))
        layers = _layers_of(encoder)
        encoder.encoder.layer = nn.ModuleList(list(layers)[:split])
        try:
            with torch.no_grad():
                encoder.eval()(input_ids=ids, attention_mask=attention)
        finally:
            hook.remove()
            encoder.encoder.layer = layers
            encoder.train(was_training)
        return captured[-1].detach()


class TopLayers(nn.Module):
    """A tuned encoder that reads its frozen lower layers' states from a :class:`FrozenStates`.

    Called like the encoder (``input_ids``, ``attention_mask``,
    ``output_hidden_states``); ``hidden_states`` has the encoder's length, its
    entries below ``split`` are ``None`` (those layers are the pretrained
    model's: read them from it).

    Parameters
    ----------
    tuned_encoder : BERT-style bare encoder
        The tuned copy (its lower layers equal the frozen ones).
    frozen : FrozenStates
    split : int
        First tuned layer.
    """

    def __init__(self, tuned_encoder, frozen, split):
        super().__init__()
        self.tuned_encoder, self.frozen, self.split = tuned_encoder, frozen, int(split)
        self.config = tuned_encoder.config

    def forward(self, input_ids, attention_mask, output_hidden_states=False, **kwargs):
        """The tuned encoder's output on the frozen layers' cached states: the layers below ``split`` are ``None``.

        Parameters
        ----------
        input_ids, attention_mask : int tensors of shape (batch, tokens)
        output_hidden_states : bool
            Ignored: the hidden states are always returned.

        Returns
        -------
        transformers model output
        """
        states = self.frozen(input_ids, attention_mask, self.split)
        with top_only(self.tuned_encoder, self.split, states):
            out = self.tuned_encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                                     **kwargs)
        out.hidden_states = (None,) * self.split + tuple(out.hidden_states)
        return out
