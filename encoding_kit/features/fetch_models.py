"""Pre-download every checkpoint the notebooks name (``python -m encoding_kit fetch --models``).

On a good connection, once: the files go to the Hugging Face cache
(``$HF_HOME``, default ``~/.cache/huggingface``), where ``load_model`` finds
them later without a network. The sizes are listed first (from the hub when it
answers, else the kit's table from the model cards); ``huggingface_hub``
shows a progress bar per file and resumes an interrupted file. Only the
files ``transformers`` reads are fetched: configs, tokenizer / feature
extractor files and one copy of the weights (safetensors when the repository
has them, else the PyTorch ``.bin``), not the TensorFlow, Flax, ONNX or Rust
copies.

Offline, each missing checkpoint fails with one sentence and nothing is
written.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.storage import PROJECT_ROOT
from .hub import CHECKPOINT_MB, KNOWN_MODELS, hub_reachable, is_cached, size_text  # noqa: F401 - re-exported

WANTED = re.compile(r"(\.json|\.txt|\.model|\.tiktoken|merges\.txt|vocab\.\w+|\.safetensors|\.bin)$")
SKIPPED = re.compile(r"(^|/)(tf_|flax_|rust_|onnx|coreml|openvino)|\.(h5|msgpack|ot|onnx|tflite)$")


def notebook_checkpoints(root=None):
    """Model names the notebooks and the assignment use, in order of first mention.

    A name counts when it appears quoted in ``assignment.py`` or
    ``notebooks/NN_*.py`` and is one of the kit's known models
    (:data:`encoding_kit.features.hub.KNOWN_MODELS`).

    Returns
    -------
    list of str
    """
    root = Path(root or PROJECT_ROOT)
    names = []
    for path in [root / "assignment.py", *sorted((root / "notebooks").glob("[0-9][0-9]_*.py"))]:
        if path.exists():
            for name in re.findall(r"[\"']([\w./-]+)[\"']", path.read_text()):
                if name in KNOWN_MODELS and name not in names:
                    names.append(name)
    return names


def files_to_fetch(files):
    """The files transformers reads, from a repository's file list (one copy of the weights).

    Parameters
    ----------
    files : list of (path, size in bytes or None)

    Returns
    -------
    list of (path, size)
    """
    kept = [(f, s) for f, s in files if WANTED.search(f) and not SKIPPED.search(f) and "/" not in f]
    if any(f.endswith(".safetensors") for f, _ in kept):
        kept = [(f, s) for f, s in kept if not f.endswith(".bin")]
    return kept


def _remote_files(name):
    from huggingface_hub import HfApi

    info = HfApi().model_info(name, files_metadata=True)
    return files_to_fetch([(s.rfilename, s.size) for s in info.siblings])


def fetch_models(names=None, root=None):
    """List the checkpoints with their sizes, then download the missing ones.

    Parameters
    ----------
    names : list of str, optional
        Default: :func:`notebook_checkpoints`.

    Returns
    -------
    dict {name: "cached" | "downloaded" | one-sentence reason it is not}
    """
    names = list(names or notebook_checkpoints(root))
    online = hub_reachable()
    plans, status = {}, {}
    print(f"{'checkpoint':<30} {'size':>12}  state")
    for name in names:
        cached = is_cached(name)
        size = size_text(name)
        if online and not cached:
            try:
                plans[name] = _remote_files(name)
                size = f"{sum(s or 0 for _, s in plans[name]) / 1e6:,.0f} MB"
            except Exception as exc:  # no such repository, or the hub failed for this one
                status[name] = f"{name}: the hub did not list its files ({type(exc).__name__}: {exc})"
        print(f"{name:<30} {size:>12}  {'in the cache' if cached else 'to download'}")
        if cached:
            status[name] = "cached"
    total = sum(CHECKPOINT_MB.get(n, 0) for n in names if status.get(n) != "cached")
    print(f"To download: about {total / 1000:.1f} GB (Hugging Face cache: $HF_HOME, default ~/.cache/huggingface)")
    for name in names:
        if name in status:
            continue
        if not online:
            status[name] = (f"{name}: not downloaded ({size_text(name)}): the Hugging Face hub is unreachable "
                            "(no network, a proxy, or HF_HUB_OFFLINE=1); run this again on a connected machine")
            continue
        status[name] = _download(name, plans[name])
    for state in status.values():
        if state not in ("cached", "downloaded"):
            print(state)
    return status


def _download(name, files):
    from huggingface_hub import hf_hub_download

    try:
        for path, _ in files:
            hf_hub_download(name, path)  # progress bar per file; an interrupted file resumes next time
    except Exception as exc:
        return f"{name}: download stopped ({type(exc).__name__}: {exc}); run the command again to resume"
    return "downloaded"
