"""The frozen lower layers of a tuned encoder, run once per distinct input and reused.

Brain tuning trains only the top ``tune_layers`` layers (and the new heads);
the embeddings and the layers below never change. Their output for a given
padded batch (token ids and attention mask) is therefore the same in every
run that feeds them that batch:

* the masked training batches of one seed, fold, mask rate and epoch count are
  the same for both methods, both controls and every compression (the masks
  and batch order come from the seed's generator and the windows only);
* the unmasked windows of the whole story, read for the tuned model's
  features, are the same for every run of a study (the baseline's windows):
  the pretrained model's own extraction of them records its states at the
  split as it passes (:meth:`FrozenStates.recording`), so they are never
  computed twice.

:class:`FrozenStates` keeps those states, keyed by the batch's content (ids and
mask bytes), the split point, the device and the autocast state, so a hit is
always the same computation: nothing depends on knowing which runs share what.
:func:`top_only` then runs the model with its embeddings replaced by the
cached states and its layer stack cut to the tuned layers, through the
model's own forward (its attention-mask handling, pooler and heads unchanged).

Feature extraction reads the top layer at a few positions of each window (each
word's last token: about 4 of a window's 34). :class:`TopLayers` takes those
positions (``read_positions``) and computes the top layer's self-attention at
every position (its keys and values need them all) but its attention output and
feed-forward block, position-wise, at the read positions only (:class:`AtRows`):
about a third of the top layer's cost. The other positions of that layer are
NaN, so reading one is loud. Training a ``brainaligner`` model with a tied
masked-LM head reads the top layer at the masked tokens only (about 30 % of
them) and computes it the same way there; its dropouts draw the mask of every
position and keep the computed rows' (``_RowDropout``), so a run draws
the same random numbers as with the full layer. ``direct`` pools every token
of the top layer and keeps it whole.
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


class _Gathered(nn.Module):
    """A position-wise module applied to the chosen rows only: (batch, length, h) inputs -> (1, n_rows, h)."""

    def __init__(self, module, rows):
        super().__init__()
        self.module, self.rows = module, rows

    def forward(self, states, residual):
        return self.module(states[self.rows][None], residual[self.rows][None])


class _RowLinear(nn.Module):
    """A linear map computed at chosen rows only: (batch, length, h) -> (batch, length, out), zeros elsewhere."""

    def __init__(self, linear, rows):
        super().__init__()
        self.linear, self.rows = linear, rows

    def forward(self, x):
        out = x.new_zeros((*x.shape[:-1], self.linear.out_features))
        out[self.rows] = self.linear(x[self.rows]).to(out.dtype)
        return out


class _RowDropout(nn.Module):
    """A dropout on chosen rows that draws the mask of the whole (batch, length, h) tensor, then keeps its rows.

    The same random numbers as the layer's own dropout over every position, so a layer computed at fewer rows
    in training draws what the full layer draws (and leaves the generator where the full layer leaves it).
    """

    def __init__(self, dropout, rows, shape):
        super().__init__()
        self.dropout, self.rows, self.shape = dropout, rows, tuple(shape)

    def forward(self, x):
        if not self.dropout.training or self.dropout.p == 0:
            return x
        noise = nn.functional.dropout(x.new_ones(self.shape), self.dropout.p, True)
        return x * noise[self.rows][None]


class AtRows(nn.Module):
    """A BERT-style layer computed after its self-attention at chosen positions only; NaN at the others.

    The self-attention's keys and values are computed at every position; its
    queries (``_RowLinear``), output projection, residual, LayerNorm and
    the feed-forward block are position-wise, and a row's attention output
    depends on its own query only, so computing them on the chosen rows gives
    those rows' values of the full layer (the other rows' queries are zero and
    their attention outputs never read). A layer without that structure
    (``attention.output``, ``feed_forward_chunk``) runs whole. In training,
    the two dropouts after the self-attention draw the masks of every
    position and keep the chosen rows' (``_RowDropout``): the same values
    and the same random numbers as the full layer.

    Parameters
    ----------
    layer : BERT-style encoder layer (``attention.output``, ``feed_forward_chunk``)
    rows : bool tensor of shape (batch, length)
        The positions computed.
    """

    def __init__(self, layer, rows):
        super().__init__()
        self.layer, self.rows = layer, rows

    @staticmethod
    def supports(layer):
        """Whether ``layer`` has the structure :class:`AtRows` needs (BERT, RoBERTa, ELECTRA, ...)."""
        attention = getattr(layer, "attention", None)
        return isinstance(getattr(attention, "output", None), nn.Module) and hasattr(layer, "feed_forward_chunk")

    def forward(self, hidden_states, *args, **kwargs):
        """The layer's output, tensor (batch, length, hidden): its values at ``rows``, NaN elsewhere."""
        if not self.supports(self.layer):
            return self.layer(hidden_states, *args, **kwargs)
        attention = self.layer.attention
        output = attention.output
        dropouts = [(m, m.dropout) for m in (output, getattr(self.layer, "output", None))
                    if isinstance(getattr(m, "dropout", None), nn.Dropout)]
        inner = getattr(attention, "self", None)
        query = getattr(inner, "query", None) if isinstance(getattr(inner, "query", None), nn.Linear) else None
        attention.output = _Gathered(output, self.rows)
        for module, dropout in dropouts:
            module.dropout = _RowDropout(dropout, self.rows, hidden_states.shape)
        if query is not None:
            inner.query = _RowLinear(query, self.rows)
        try:
            packed = self.layer(hidden_states, *args, **kwargs)
        finally:
            attention.output = output
            for module, dropout in dropouts:
                module.dropout = dropout
            if query is not None:
                inner.query = query
        packed = packed[0] if isinstance(packed, tuple) else packed
        out = torch.full_like(hidden_states, float("nan"))
        out[self.rows] = packed[0].to(out.dtype)
        return out


@contextlib.contextmanager
def top_only(encoder, split, states, offset=None, read_rows=None):
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
    read_rows : bool tensor of shape (batch, length), optional
        The positions read from the top layer: it is computed after its
        self-attention at those only (:class:`AtRows`; NaN elsewhere).
    """
    embeddings, layers = encoder.embeddings, _layers_of(encoder)
    encoder.embeddings = _Given(states, offset)
    stack = list(layers)[split:]
    if read_rows is not None:
        stack[-1] = AtRows(stack[-1], read_rows)
    encoder.encoder.layer = nn.ModuleList(stack)
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
        self._keep(key, states)
        return states

    @contextlib.contextmanager
    def recording(self, split):
        """Keep the states after the first ``split`` layers of every batch the encoder runs inside the block.

        The pretrained model's own feature extraction runs the story's windows through every layer; recording its
        states at the split stores what calling this object would compute for those padded batches (the same ids and
        mask, the same layers in eval mode, under the same autocast, which the key records), so the tuned models'
        extractions of the same windows read them instead of running the lower layers again. A pass whose lower
        layers are in train mode (dropout) or that has no attention mask is not recorded.

        Parameters
        ----------
        split : int
            Number of frozen layers (the first tuned layer's index), as when calling this object.
        """
        encoder = self.encoder
        below = [encoder.embeddings, *list(_layers_of(encoder))[:int(split)]]
        inputs = []

        def remember(module, args, kwargs):
            inputs.append((kwargs.get("input_ids", args[0] if args else None), kwargs.get("attention_mask")))

        def keep(module, args, output):
            ids, attention = inputs[-1] if inputs else (None, None)
            if ids is None or attention is None or any(m.training for m in below):
                return
            states = output[0] if isinstance(output, tuple) else output
            with torch.inference_mode(False):  # a plain tensor, usable outside inference mode
                self._keep(self._key(ids, attention, split), states.detach().clone())

        hooks = [encoder.register_forward_pre_hook(remember, with_kwargs=True), below[-1].register_forward_hook(keep)]
        try:
            yield self
        finally:
            for hook in hooks:
                hook.remove()

    def _keep(self, key, states):
        size = states.element_size() * states.nelement()
        if key not in self._store and self.nbytes + size <= self.budget:
            self._store[key] = states
            self.nbytes += size

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
    model's: read them from it). A caller that reads the top layer at a few
    positions passes them as ``read_positions`` (the text extractor does when
    the model's ``computes_read_positions_only`` is true): the top layer is
    then computed at those positions only after its self-attention, NaN at
    the others (:class:`AtRows`).

    Parameters
    ----------
    tuned_encoder : BERT-style bare encoder
        The tuned copy (its lower layers equal the frozen ones).
    frozen : FrozenStates
    split : int
        First tuned layer.
    read_positions_only : bool
        Accept ``read_positions`` (False: the top layer is always computed at every position).
    """

    def __init__(self, tuned_encoder, frozen, split, read_positions_only=True):
        super().__init__()
        self.tuned_encoder, self.frozen, self.split = tuned_encoder, frozen, int(split)
        self.config = tuned_encoder.config
        self.read_positions_only = bool(read_positions_only)

    @property
    def computes_read_positions_only(self):
        """Whether a caller may pass ``read_positions`` (the text extractor's protocol)."""
        return self.read_positions_only

    def forward(self, input_ids, attention_mask, output_hidden_states=False, read_positions=None, **kwargs):
        """The tuned encoder's output on the frozen layers' cached states: the layers below ``split`` are ``None``.

        Parameters
        ----------
        input_ids, attention_mask : int tensors of shape (batch, tokens)
        output_hidden_states : bool
            Ignored: the hidden states are always returned.
        read_positions : bool tensor of shape (batch, tokens), optional
            The positions the caller reads from the top layer (with ``read_positions_only``): the top layer's
            other positions are NaN.

        Returns
        -------
        transformers model output
        """
        states = self.frozen(input_ids, attention_mask, self.split)
        rows = None
        if read_positions is not None and self.read_positions_only:
            rows = torch.as_tensor(read_positions, dtype=torch.bool, device=states.device)
            if rows.shape != tuple(input_ids.shape):
                raise ValueError(f"read_positions has shape {tuple(rows.shape)}; expected the input's "
                                 f"{tuple(input_ids.shape)} (batch, tokens)")
        with top_only(self.tuned_encoder, self.split, states, read_rows=rows):
            out = self.tuned_encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                                     **kwargs)
        hidden = tuple(out.hidden_states)
        if rows is not None:  # the top layer's output is AtRows's (the inner layer returned the read rows only)
            hidden = hidden[:-1] + (out.last_hidden_state,)
        out.hidden_states = (None,) * self.split + hidden
        return out
