"""Hidden states of the lower layers of a text model without running the layers above them.

A request for layer 4 of a 30-layer model (notebook 05's context sweep) needs
the first four transformer blocks only: hidden state ``k`` is the input of
block ``k`` (0 = the embeddings), and no block above it changes it. Hooks on
the model's blocks record each block's input and output, and the forward pass
stops once the highest requested state is recorded. The states are the very
tensors ``output_hidden_states=True`` returns (``tests/test_text_features.py``
checks every text family's stand-in for equality), at the cost of
``top / n_layers`` of the blocks.

The last hidden state is not served this way: models apply a final layer norm
to it (GPT-2's ``ln_f``, Llama's ``norm``), so a request that includes it runs
the whole model.
"""

from __future__ import annotations

import contextlib


class _Stop(Exception):
    """Raised by the hook that recorded the last state asked for: it ends the forward pass."""


def transformer_blocks(net):
    """The model's list of transformer blocks (one per hidden layer), or ``None`` when it is not found unambiguously.

    Parameters
    ----------
    net : transformers model
        A text model whose ``config.num_hidden_layers`` counts its blocks.

    Returns
    -------
    torch.nn.ModuleList or None
        The only ``ModuleList`` of the model with ``num_hidden_layers`` entries; ``None`` for a model that is not a
        transformers model (a wrapper such as brain tuning's ``TopLayers`` may run some blocks differently, or not
        at all).
    """
    import torch
    from transformers import PreTrainedModel

    if not isinstance(net, PreTrainedModel):
        return None
    n = getattr(net.config, "num_hidden_layers", None)
    found = [m for m in net.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == n]
    return found[0] if n and len(found) == 1 else None


def can_stop_early(net, top):
    """Whether hidden states ``0..top`` of ``net`` can be read without running the blocks above ``top``."""
    return top < net.config.num_hidden_layers and transformer_blocks(net) is not None


@contextlib.contextmanager
def lower_states(net, top):
    """Record hidden states ``0..top`` of every forward pass inside the block, then stop the pass.

    Use as::

        with lower_states(net, top) as run:
            states = run(input_ids=ids, attention_mask=mask)

    Parameters
    ----------
    net : transformers model
        :func:`can_stop_early` must hold.
    top : int
        The highest hidden state wanted (below ``config.num_hidden_layers``).

    Yields
    ------
    callable ``(**inputs) -> list of torch.Tensor``
        Runs ``net(**inputs)`` up to block ``top - 1`` and returns hidden states ``0..top``, each
        ``(batch, tokens, hidden)``.
    """
    if not can_stop_early(net, top):
        raise ValueError(f"hidden state {top} of {type(net).__name__} cannot be read early (the last state, or no "
                         "unambiguous list of transformer blocks)")
    blocks = transformer_blocks(net)
    states = []

    def first_input(module, args, kwargs):
        states.append(args[0] if args else kwargs["hidden_states"])
        if top == 0:
            raise _Stop

    def block_output(module, args, output):
        states.append(output[0] if isinstance(output, tuple) else output)
        if len(states) > top:
            raise _Stop

    handles = [blocks[0].register_forward_pre_hook(first_input, with_kwargs=True)]
    handles += [blocks[i].register_forward_hook(block_output) for i in range(top)]

    def run(**inputs):
        states.clear()
        try:
            net(**inputs)
        except _Stop:
            pass
        if len(states) != top + 1:
            raise RuntimeError(f"{type(net).__name__}: recorded {len(states)} hidden states, expected {top + 1}")
        return list(states)

    try:
        yield run
    finally:
        for handle in handles:
            handle.remove()
