"""A text encoder with the extra parts brain tuning trains: a masked-LM head, a brain input or a brain head.

Two methods (``method``):

* ``"brainaligner"`` (the BrainAligner study): masked-language-model
  fine-tuning in which a learned projection of the TR's compressed brain state
  is added to every token's hidden state where the tuned layers begin (the
  embeddings when every layer is tuned). At test time no brain state goes in:
  the features come from the text alone, as in the study.
* ``"direct"`` (Schwartz, Toneva & Wehbe 2019): a linear head predicts the
  TR's compressed brain state from the mean of the last layer's token states;
  the masked-LM loss is kept as a regulariser.

The masked-LM head. The kit loads text models as bare encoders
(``AutoModel``), and some checkpoints have no masked-LM head at all
(all-MiniLM-L6-v2 is a sentence-transformers encoder). With
``mlm_head="tied"`` (the default) the kit trains a new head in BERT's layout
(dense -> GELU -> LayerNorm -> decoder) whose decoder is the model's own input
word embeddings (tied, frozen when the embeddings are) plus a new bias; its
MLM loss therefore starts high and the first steps teach the head.
``mlm_head="pretrained"`` demands a ``*ForMaskedLM`` model that carries its
own head, and refuses any other in one sentence. Causal (decoder-only) models
and tokenizers without a mask token are refused for both: masked-LM training
needs a bidirectional encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from .frozen import top_only

METHODS = ("brainaligner", "direct")
MLM_HEADS = ("tied", "pretrained")


def has_mlm_head(net):
    """Whether a loaded transformers model carries its own masked-LM head (a ``*ForMaskedLM`` class)."""
    return type(net).__name__.endswith("ForMaskedLM") and net.get_output_embeddings() is not None


def check_mlm_model(loaded, mlm_head="tied"):
    """Refuse, in one sentence, a model that masked-LM tuning cannot train.

    Parameters
    ----------
    loaded : LoadedModel
    mlm_head : {"tied", "pretrained"}
    """
    from ..features.causality import causality

    if mlm_head not in MLM_HEADS:
        raise ValueError(f"mlm_head must be one of {MLM_HEADS}, got {mlm_head!r}")
    net, tok, name = loaded.model, loaded.processor, loaded.name
    if not hasattr(tok, "mask_token_id") or tok.mask_token_id is None:
        raise ValueError(f"masked-LM tuning needs a tokenizer with a mask token; the tokenizer of {name} has none "
                         "(a causal or audio model?): use a BERT-style encoder")
    if mlm_head == "pretrained" and not has_mlm_head(net):
        raise ValueError(f"{name} has no masked-LM head (it was loaded as {type(net).__name__}, a bare encoder); "
                         "pass mlm_head='tied' to train a new head tied to its input embeddings, or load a "
                         "*ForMaskedLM checkpoint")
    causal, why = causality(net)
    if causal:
        raise ValueError(f"masked-LM tuning needs a bidirectional encoder; {name} is causal ({why})")
    if not hasattr(encoder_of(net), "encoder") or not hasattr(encoder_of(net).encoder, "layer"):
        raise ValueError(f"{name} ({type(net).__name__}) has no BERT-style encoder.layer stack to tune")


def encoder_of(net):
    """The bare encoder inside a model (itself, or a ``*ForMaskedLM``'s base model)."""
    return net.base_model if has_mlm_head(net) else net


class TiedMLMHead(nn.Module):
    """BERT's masked-LM head with the decoder tied to the input word embeddings.

    Parameters
    ----------
    hidden : int
    embeddings : nn.Embedding of shape (vocab, hidden)
    eps : float
        LayerNorm epsilon.
    """

    def __init__(self, hidden, embeddings, eps=1e-12):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.embeddings = embeddings
        self.bias = nn.Parameter(torch.zeros(embeddings.weight.shape[0]))

    def forward(self, states):
        """Logits (n, vocab) from hidden states (n, hidden)."""
        return self.norm(nn.functional.gelu(self.dense(states))) @ self.embeddings.weight.T + self.bias


class BrainTunedLM(nn.Module):
    """A text encoder, its top ``tune_layers`` layers trainable, with the parts a method needs.

    Parameters
    ----------
    net : transformers model
        A bare encoder (``BertModel``-like) or, with ``mlm_head="pretrained"``,
        a ``*ForMaskedLM`` model.
    method : {"brainaligner", "direct"}
    n_state : int
        Size of the compressed brain state.
    tune_layers : int
        Top encoder layers that are trained (the rest and the embeddings are
        frozen); ``brainaligner`` adds the brain projection where they begin.
    mlm_head : {"tied", "pretrained"}
    """

    def __init__(self, net, method, n_state, tune_layers=2, mlm_head="tied"):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.net, self.method, self.mlm_head = net, method, mlm_head
        encoder = encoder_of(net)
        layers = encoder.encoder.layer
        if not 1 <= int(tune_layers) <= len(layers):
            raise ValueError(f"tune_layers must be in 1..{len(layers)} (the model's layers), got {tune_layers}")
        hidden = encoder.config.hidden_size
        for p in net.parameters():
            p.requires_grad_(False)
        self.tuned = list(layers[len(layers) - int(tune_layers):])
        for layer in self.tuned:
            for p in layer.parameters():
                p.requires_grad_(True)
        self.split = len(layers) - int(tune_layers)
        self.frozen = [encoder.embeddings, *layers[:self.split]]
        self.frozen_states = None  # a FrozenStates: run only the tuned layers on its cached states (same values)
        self.brain_in = nn.Linear(n_state, hidden) if method == "brainaligner" else None
        self.brain_out = nn.Linear(hidden, n_state) if method == "direct" else None
        eps = getattr(encoder.config, "layer_norm_eps", 1e-12)
        self.mlm = TiedMLMHead(hidden, encoder.get_input_embeddings(), eps) if mlm_head == "tied" else None
        self._offset = None
        self._hook = self.frozen[-1].register_forward_hook(self._add_brain)

    def _add_brain(self, module, inputs, output):
        if self._offset is None:
            return output
        if isinstance(output, tuple):
            return (output[0] + self._offset, *output[1:])
        return output + self._offset

    def train(self, mode=True):
        """Train mode for the tuned parts only (frozen layers keep their dropout off)."""
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def forward(self, ids, attention, content, labels, brain=None):
        """Losses of one batch.

        Parameters
        ----------
        ids, attention : long tensors of shape (batch, length)
            Input ids (masked for the MLM loss) and attention mask.
        content : bool tensor of shape (batch, length)
            The window's own tokens (not special, not padding), pooled by ``direct``.
        labels : long tensor of shape (batch, length)
            Original ids at masked positions, -100 elsewhere.
        brain : float tensor of shape (batch, n_state), optional
            Compressed brain states: input of ``brainaligner``, target of ``direct``.

        Returns
        -------
        mlm_loss, brain_loss : scalar tensors (brain_loss is 0 for ``brainaligner``)
        """
        offset = self.brain_in(brain)[:, None, :] if self.brain_in is not None else None
        masked = labels != -100
        if self.frozen_states is not None:
            below = self.frozen_states(ids, attention, self.split)
            # only the masked tokens of the top layer are read (MLM loss, no pooling): computed there only
            rows = masked if self.brain_out is None and self.mlm is not None else None
            with top_only(encoder_of(self.net), self.split, below, offset, read_rows=rows):
                out = self.net(input_ids=ids, attention_mask=attention, output_hidden_states=self.mlm is None)
        else:
            self._offset = offset
            try:
                out = self.net(input_ids=ids, attention_mask=attention, output_hidden_states=self.mlm is None)
            finally:
                self._offset = None
        if self.mlm is not None:
            states = out.last_hidden_state
            mlm_loss = nn.functional.cross_entropy(self.mlm(states[masked]), labels[masked])
        else:
            states = out.hidden_states[-1]
            mlm_loss = nn.functional.cross_entropy(out.logits[masked], labels[masked])
        brain_loss = states.new_zeros(())
        if self.brain_out is not None:
            weights = content.unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1)
            brain_loss = nn.functional.mse_loss(self.brain_out(pooled), brain)
        return mlm_loss, brain_loss

    def trainable(self):
        """Named parameters that training changes: the tuned layers and the new parts, dict {name: tensor}."""
        return {name: p for name, p in self.named_parameters() if p.requires_grad}

    def release(self):
        """Remove the brain-input hook; returns the bare encoder for feature extraction (text only)."""
        self._hook.remove()
        return encoder_of(self.net)
