"""The checkpoints the notebooks name, their download sizes, and whether the Hugging Face hub answers.

Read by :mod:`.models` (which names may get an offline stand-in, what the banner says) and by
:mod:`.fetch_models` (what ``python -m encoding_kit fetch --models`` downloads).
"""

from __future__ import annotations

import functools
import threading
import urllib.request

from ..core.runtime import environment

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
KNOWN_MODELS = {"gpt2", "gpt2-medium", "distilgpt2", "bert-base-uncased", "bert-base-cased", "roberta-base",
                "Qwen/Qwen2.5-0.5B", "facebook/wav2vec2-base", "microsoft/wavlm-base-plus",
                "facebook/hubert-base-ls960", "openai/whisper-tiny", "openai/whisper-base",
                "laion/clap-htsat-unfused", MINILM}
"""Names the notebooks use: offline, only these (and names in the local Hugging Face cache, bare model types
such as ``"gpt2"`` and ``"random-<model type>"``) get a stand-in. Offline the kit cannot tell a misspelt name
from a model that is not downloaded, and a misspelt name must not silently become a random model."""
CHECKPOINT_MB = {
    "gpt2": 548, "bert-base-uncased": 440, "Qwen/Qwen2.5-0.5B": 988, "facebook/wav2vec2-base": 380,
    "microsoft/wavlm-base-plus": 377, "facebook/hubert-base-ls960": 378, "openai/whisper-base": 290,
    "laion/clap-htsat-unfused": 615, MINILM: 91, "openai/whisper-tiny": 152,
}
"""Approximate download (MB) of each checkpoint the notebooks name: its weights in one format plus configs and
tokenizer files, from the model cards' file lists; shown when the hub cannot be asked."""
HUB_PROBE = "/gpt2/resolve/main/config.json"
"""A small file whose HEAD request tells whether the hub answers (not just accepts a TCP connection)."""


def size_text(name):
    """``"about 548 MB"`` for a known checkpoint, ``"size unknown"`` otherwise."""
    mb = CHECKPOINT_MB.get(name)
    return f"about {mb / 1000:.1f} GB" if mb and mb >= 1000 else (f"about {mb} MB" if mb else "size unknown")


def is_cached(name):
    """Whether the checkpoint's config is in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache  # lazy: heavy, and only asked about a name

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # not a valid repository id
        return False


@functools.cache
def hub_reachable(timeout=3.0, url=None):
    """Whether the Hugging Face hub answers a real request, within ``timeout`` s in all (remembered per process).

    A HEAD request for a small file (:data:`HUB_PROBE` under ``$HF_ENDPOINT``)
    must come back with the hub's ``X-Repo-Commit`` header: a network that
    accepts the connection but never answers, or answers something else (a
    captive portal, a proxy's error page), counts as offline. False when
    ``HF_HUB_OFFLINE=1``.
    """
    if environment("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    url = url or environment("HF_ENDPOINT", "https://huggingface.co").rstrip("/") + HUB_PROBE
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
