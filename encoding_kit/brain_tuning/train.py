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
    tune_context : int, optional
        Longest text window of the tuning examples, tokens (default
        ``context_tokens``): shorter windows make each training step cheaper;
        the features are still read with ``context_tokens``.
    subsample : float
        Fraction of the training windows drawn (without replacement, seeded)
        in each epoch; 1 trains on all of them.
    patience : int
        Early stopping: the number of checks of the inner validation loss
        without improvement after which training stops (and the weights of
        the best check are kept); 0 turns early stopping off. The
        validation block is the end of the fold's training TRs
        (:func:`.windows.inner_validation_split`), never the held-out block.
    check_every : int
        Training steps between two checks of the validation loss.
    val_trs : int
        TRs of the inner validation block (``patience`` > 0).
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
    tune_context: int | None = None
    subsample: float = 1.0
    patience: int = 0
    check_every: int = 16
    val_trs: int = 150

    def __post_init__(self):
        if not 0 < self.mask_rate < 1:
            raise ValueError(f"mask_rate must be between 0 and 1 (a fraction of tokens), got {self.mask_rate}")
        if not 0 < self.subsample <= 1:
            raise ValueError(f"subsample must be a fraction of the training windows in (0, 1], got {self.subsample!r}")
        names = ["epochs", "batch_size", "tune_layers", "context_tokens", "check_every", "val_trs"]
        for name in names + ["tune_context"] * (self.tune_context is not None):
            if int(getattr(self, name)) < 1 or int(getattr(self, name)) != getattr(self, name):
                raise ValueError(f"{name} must be a whole number >= 1, got {getattr(self, name)!r}")
        if int(self.patience) != self.patience or self.patience < 0:
            raise ValueError(f"patience must be a whole number >= 0 (0: no early stopping), got {self.patience!r}")

    @property
    def window_tokens(self):
        """Longest text window of the tuning examples, tokens."""
        return self.tune_context or self.context_tokens


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
        "windows": _windows_hash(examples), "device": torch_device(device).type, "torch": _torch_version(),
        **({} if examples.validation is None else {"validation": [hash_array(examples.validation.trs),
                                                                  hash_array(examples.validation.targets),
                                                                  _windows_hash(examples.validation)]})})


def _windows_hash(examples):
    return hash_array(np.concatenate([[len(w)] for w in examples.windows] + list(examples.windows)))


def tuned_weights(loaded_tuned):
    """The tuned encoder's parameters as float arrays, dict {name: array} (for comparing two tunings)."""
    net = loaded_tuned.model
    net = net.tuned_encoder if isinstance(net, TopLayers) else net
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def _torch_version():
    import torch

    return torch.__version__


def _train(model, examples, tokenizer, config, device, progress, desc):
    """The seeded training loop (AdamW, MLM loss + brain loss), with early stopping on ``examples.validation``."""
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
            drawn = max(1, int(round(config.subsample * n)))
            steps = [(e, b) for e in range(config.epochs) for b in range(0, drawn, config.batch_size)]
            stopper = _EarlyStopping(model, examples.validation, config, prefix, suffix, tokenizer, device) \
                if config.patience else None
            order = None
            for step, (_epoch, start) in enumerate(tqdm(steps, desc=desc, disable=not progress, leave=False)):
                if start == 0:
                    order = rng.permutation(n)[:drawn]
                batch = order[start:start + config.batch_size]
                inputs = _masked_batch(examples, batch, prefix, suffix, tokenizer, config.mask_rate, rng)
                tensors = [torch.as_tensor(a).to(device) for a in inputs]
                brain = torch.as_tensor(examples.targets[batch]).to(device)
                mlm_loss, brain_loss = model(*tensors, brain=brain)
                loss = mlm_loss + config.brain_weight * brain_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if stopper is not None and (step + 1) % config.check_every == 0 and stopper.check(step + 1):
                    break
            model.losses_ = (float(mlm_loss.detach()), float(brain_loss.detach()))
            model.steps_ = (step + 1, len(steps))
            if stopper is not None:
                stopper.finish(len(steps) if step + 1 == len(steps) else None)
        finally:
            torch.use_deterministic_algorithms(deterministic)
    model.eval()


class _EarlyStopping:
    """The inner validation loss, checked during training; keeps the weights of the best check.

    The validation examples' masks are drawn once (from their own seeded generator), so every check scores the
    same masked batches and the frozen layers' states of those batches are computed once.
    """

    def __init__(self, model, validation, config, prefix, suffix, tokenizer, device):
        import torch

        if validation is None or len(validation) == 0:
            raise ValueError("patience > 0 (early stopping) needs validation examples from an inner block of the "
                             "training TRs (TuningExamples.validation), found none")
        self.model, self.config, self.patience = model, config, int(config.patience)
        rng = np.random.default_rng([config.seed, 1])
        index = np.arange(len(validation))
        self.batches = []
        for start in range(0, len(validation), config.batch_size):
            batch = index[start:start + config.batch_size]
            inputs = _masked_batch(validation, batch, prefix, suffix, tokenizer, config.mask_rate, rng)
            self.batches.append(([torch.as_tensor(a).to(device) for a in inputs],
                                 torch.as_tensor(validation.targets[batch]).to(device), len(batch)))
        self.best, self.best_step, self.since, self.history = np.inf, 0, 0, []
        self.best_weights = self._weights()
        self.check(0)

    def _weights(self):
        return {k: v.detach().clone() for k, v in self.model.trainable().items()}

    def loss(self):
        """Mean validation loss (MLM + weighted brain loss) over the validation examples, float."""
        import torch

        total, count = 0.0, 0
        self.model.eval()
        with torch.no_grad():
            for tensors, brain, size in self.batches:
                mlm_loss, brain_loss = self.model(*tensors, brain=brain)
                total += float(mlm_loss + self.config.brain_weight * brain_loss) * size
                count += size
        self.model.train()
        return total / count

    def check(self, step):
        """Score the validation block after ``step`` steps; True when training should stop."""
        value = self.loss()
        self.history.append((step, value))
        if value < self.best:
            self.best, self.best_step, self.since = value, step, 0
            if step:
                self.best_weights = self._weights()
        else:
            self.since += 1
        return self.since >= self.patience

    def finish(self, last_step=None):
        """Check once more after the last step (if it was not a check) and restore the best weights."""
        import torch

        if last_step is not None and last_step % self.config.check_every:
            self.check(last_step)
        with torch.no_grad():
            for name, p in self.model.trainable().items():
                p.copy_(self.best_weights[name])
        self.model.early_stopping_ = {"best_step": self.best_step, "history": self.history}


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
