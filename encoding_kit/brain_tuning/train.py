"""Fine-tuning a text encoder on brain data: the seeded training loop and the weight cache.

Training is deterministic for a given seed, device and torch version (seeded
torch and numpy generators, deterministic algorithms, fixed batch order), so
the same training examples give bit-identical weights: the test that held-out
TRs never reach tuning corrupts them and compares the weights.

The tuned weights are cached under ``features/tuned-<hash>/`` (one ``.npz``
with a checksum, written atomically, like the feature cache). The key is a
hash of the base model, every setting and the training examples themselves
(token ids and brain targets), so it depends on the training TRs only.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np

from ..core.progress import tqdm
from ..core.storage import cache_key, cache_root, hash_array, set_aside
from ..features.models import LoadedModel
from .frozen import TopLayers
from .model import BrainTunedLM, check_mlm_model


@dataclass
class TuningConfig:
    """Settings of one fine-tuning run.

    Attributes
    ----------
    epochs : int
    batch_size : int
    lr : float
        Learning rate of the tuned encoder layers. Higher than usual for BERT
        fine-tuning: only the top layers train, for a few hundred steps (on the
        demo's first 400 TRs, 1e-4 for one epoch changed no score by 0.001).
    head_lr : float
        Learning rate of the new parts (masked-LM head, brain input or head).
    tune_layers : int
        Top encoder layers trained (the others and the embeddings are frozen).
    mask_rate : float
        Fraction of each window's tokens masked for the MLM loss (80 % [MASK],
        10 % a random token, 10 % unchanged, as in BERT; at least one per window).
    brain_weight : float
        Weight of the brain-prediction loss (``direct``) against the MLM loss.
    context_tokens : int
        Longest text window, tokens (the features use the same).
    mlm_head : {"tied", "pretrained"}
        See :mod:`.model`.
    seed : int
    """

    epochs: int = 2
    batch_size: int = 16
    lr: float = 5e-4
    head_lr: float = 3e-3
    tune_layers: int = 2
    mask_rate: float = 0.3
    brain_weight: float = 1.0
    context_tokens: int = 32
    mlm_head: str = "tied"
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.mask_rate < 1:
            raise ValueError(f"mask_rate must be between 0 and 1 (a fraction of tokens), got {self.mask_rate}")
        for name in ("epochs", "batch_size", "tune_layers", "context_tokens"):
            if int(getattr(self, name)) < 1 or int(getattr(self, name)) != getattr(self, name):
                raise ValueError(f"{name} must be a whole number >= 1, got {getattr(self, name)!r}")


def tune_encoder(loaded, examples, method, config=None, cache=True, cache_dir=None, label="", device=None,
                 progress=True, frozen=None):
    """Fine-tune a copy of ``loaded`` on the examples; the tuned bare encoder, ready for text features.

    Parameters
    ----------
    loaded : LoadedModel
        The pretrained model (not modified).
    examples : TuningExamples
        Training TRs only (:func:`.windows.training_examples`).
    method : {"brainaligner", "direct"}
    config : TuningConfig, optional
    cache : bool
        Reuse / store the tuned weights under ``features/``.
    cache_dir : str or Path, optional
    label : str
        Readable part of the tuned model's name (e.g. the compression).
    device : str, optional
        Default cuda, then mps, then cpu (as for feature extraction).
    frozen : FrozenStates, optional
        The frozen lower layers' states of ``loaded``, shared between runs
        (:mod:`.frozen`): training and the returned model run only the tuned
        layers on them (the same values as the full forward pass).

    Returns
    -------
    LoadedModel
        Named ``"<base>+<method>[<label>]#<hash>"``: the hash makes its
        features a different feature-cache entry from every other tuning.
        With ``frozen``, its model is a :class:`.frozen.TopLayers`.
    """
    from ..core.runtime import torch_device

    config = config or TuningConfig()
    check_mlm_model(loaded, config.mlm_head)
    device = torch_device(device)
    key = tuning_key(loaded, examples, method, config, device)
    folder = cache_root(cache_dir) / key
    model = BrainTunedLM(copy.deepcopy(loaded.model), method, examples.targets.shape[1], config.tune_layers,
                         config.mlm_head)
    model.frozen_states = frozen
    stored = _load_weights(folder) if cache else None
    if stored is not None:
        _set_weights(model, stored)
    else:
        _train(model, examples, loaded.processor, config, device, progress, f"tuning {method} {label}")
        if cache:
            _save_weights(folder, model)
    encoder = model.release().cpu().eval()
    if frozen is not None:
        encoder = TopLayers(encoder, frozen, model.split).eval()
    name = f"{loaded.name}+{method}[{label}]#{key.split('-')[-1]}"
    # A tuned copy is its own model: named by its tuning key, never keyed as the stand-in it started from (its
    # first and last parameters, which the weights' hash samples, are frozen, so that hash cannot tell it apart).
    return LoadedModel(encoder, loaded.processor, name, "tuned", loaded.family)


def tuning_key(loaded, examples, method, config, device=None):
    """The cache key of one tuning run: base model, method, every setting and the examples themselves, str."""
    from ..core.runtime import torch_device
    from ..core.storage import weights_hash

    return cache_key("tuned", {
        "model": loaded.name, "source": loaded.source, "weights": weights_hash(loaded.model), "method": method,
        "config": dataclasses.asdict(config), "trs": hash_array(examples.trs), "targets": hash_array(examples.targets),
        "windows": hash_array(np.concatenate([[len(w)] for w in examples.windows] + list(examples.windows))),
        "device": torch_device(device).type, "torch": _torch_version()})


def tuned_weights(loaded_tuned):
    """The tuned encoder's parameters as float arrays, dict {name: array} (for comparing two tunings)."""
    net = loaded_tuned.model
    net = net.tuned_encoder if isinstance(net, TopLayers) else net
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def _torch_version():
    import torch

    return torch.__version__


def _train(model, examples, tokenizer, config, device, progress, desc):
    """The seeded training loop (AdamW, MLM loss + brain loss)."""
    import torch

    from ..features.text import special_template

    prefix, suffix = special_template(tokenizer)
    rng = np.random.default_rng(config.seed)
    deterministic = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
        try:
            model.brain_in is not None and _reset(model.brain_in)
            model.brain_out is not None and _reset(model.brain_out)
            model.mlm is not None and _reset(model.mlm.dense)
            model.to(device).train()
            new = [p for n, p in model.trainable().items() if not n.startswith("net.")]
            tuned = [p for n, p in model.trainable().items() if n.startswith("net.")]
            optimizer = torch.optim.AdamW([{"params": tuned, "lr": config.lr},
                                           {"params": new, "lr": config.head_lr}], weight_decay=0.01)
            n = len(examples)
            steps = [(e, b) for e in range(config.epochs) for b in range(0, n, config.batch_size)]
            order = None
            for _epoch, start in tqdm(steps, desc=desc, disable=not progress, leave=False):
                if start == 0:
                    order = rng.permutation(n)
                batch = order[start:start + config.batch_size]
                inputs = _masked_batch(examples, batch, prefix, suffix, tokenizer, config.mask_rate, rng)
                tensors = [torch.as_tensor(a).to(device) for a in inputs]
                brain = torch.as_tensor(examples.targets[batch]).to(device)
                mlm_loss, brain_loss = model(*tensors, brain=brain)
                loss = mlm_loss + config.brain_weight * brain_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            model.losses_ = (float(mlm_loss.detach()), float(brain_loss.detach()))
        finally:
            torch.use_deterministic_algorithms(deterministic)
    model.eval()


def _reset(layer):
    """Re-initialise a new layer from the seeded generator (its construction drew from the global one)."""
    layer.reset_parameters()
    return True


def _masked_batch(examples, batch, prefix, suffix, tokenizer, mask_rate, rng):
    """Padded ids (with masks applied), attention, content and MLM labels, int64/bool arrays (batch, length)."""
    seqs = [np.concatenate([prefix, examples.windows[i], suffix]).astype(np.int64) for i in batch]
    length = max(len(s) for s in seqs)
    pad = tokenizer.pad_token_id or 0
    ids = np.full((len(seqs), length), pad, np.int64)
    attention = np.zeros((len(seqs), length), np.int64)
    content = np.zeros((len(seqs), length), bool)
    labels = np.full((len(seqs), length), -100, np.int64)
    vocab = len(tokenizer)
    for r, seq in enumerate(seqs):
        ids[r, :len(seq)], attention[r, :len(seq)] = seq, 1
        own = np.arange(len(prefix), len(seq) - len(suffix))
        content[r, own] = True
        chosen = own[rng.random(len(own)) < mask_rate]
        if chosen.size == 0 and own.size:
            chosen = own[[rng.integers(len(own))]]
        labels[r, chosen] = ids[r, chosen]
        roll = rng.random(len(chosen))
        ids[r, chosen[roll < 0.8]] = tokenizer.mask_token_id
        random_pos = chosen[(roll >= 0.8) & (roll < 0.9)]
        ids[r, random_pos] = rng.integers(0, vocab, len(random_pos))
    return ids, attention, content, labels


def _set_weights(model, stored):
    import torch

    params = model.trainable()
    missing = set(params) - set(stored)
    if missing:
        raise ValueError(f"the cached tuned weights lack {sorted(missing)[:3]}")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(torch.as_tensor(stored[name]))


def _save_weights(folder, model):
    from ..core.storage import atomic_write

    arrays = {name: p.detach().cpu().numpy() for name, p in model.trainable().items()}
    checksum = hash_array(np.concatenate([np.frombuffer(hash_array(a).encode(), np.uint8) for a in arrays.values()]))
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "weights.npz", lambda tmp: np.savez(tmp, sha1=checksum, **_safe_names(arrays)))


def _safe_names(arrays):
    return {name.replace(".", "__"): a for name, a in arrays.items()}


def _load_weights(folder):
    """The cached weights {name: array}, or ``None`` (missing, or damaged: set aside and recomputed)."""
    file = folder / "weights.npz"
    if not file.exists():
        return None
    try:
        with np.load(file, allow_pickle=False) as z:
            arrays = {k.replace("__", "."): z[k] for k in z.files if k != "sha1"}
            recorded = str(z["sha1"])
    except Exception as exc:  # truncated, not a zip, ...
        set_aside(file, f"{type(exc).__name__}: {exc}")
        return None
    checksum = hash_array(np.concatenate([np.frombuffer(hash_array(a).encode(), np.uint8) for a in arrays.values()]))
    if checksum != recorded:
        set_aside(file, "its arrays do not match their checksum")
        return None
    return arrays
