"""eSpeak NG through ctypes: one engine per process, each chunk of sentences in a fresh process.

The ``espeakng-loader`` wheel ships ``libespeak-ng.so`` and its
``espeak-ng-data``. In synchronous mode the synthesis callback hands over
16-bit samples at 22,050 Hz and events; word events carry the character
position (from 1), the length and the sample position of every word spoken.
:mod:`encoding_kit.demo.synthesis` turns them into word timings.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import numpy as np

ESPEAK_SR = 22050
WORD_EVENT, END_EVENT, LIST_TERMINATED = 1, 5, 0
AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_RATE, ESPEAK_PITCH = 1, 3
CHUNK_SENTENCES = 200
"""Sentences spoken per fresh process (part of what the output depends on, so fixed)."""


class SpeechUnavailable(RuntimeError):
    """eSpeak NG cannot be loaded on this platform."""


class _Event(ctypes.Structure):
    # espeak_EVENT (speak_lib.h); the trailing union is read as a pointer-sized id.
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class _Engine:
    lib: object
    callback: object
    samples: list
    events: list
    version: str


@functools.lru_cache(maxsize=1)
def espeak():
    """The process's eSpeak NG engine (initialised once, synchronous output).

    Raises
    ------
    SpeechUnavailable
        With one sentence naming what is missing.
    """
    try:
        import espeakng_loader
    except ImportError as exc:
        raise SpeechUnavailable("eSpeak NG is not available: the package espeakng-loader is not installed "
                                "(pip install espeakng-loader)") from exc
    try:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path()
    except (OSError, RuntimeError) as exc:
        raise SpeechUnavailable(f"eSpeak NG could not be loaded from the espeakng-loader package ({exc})") from exc
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), 0)
    if rate != ESPEAK_SR:
        raise SpeechUnavailable(f"eSpeak NG initialised at {rate} Hz; expected {ESPEAK_SR} Hz")
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p
    samples, events = [], []

    def on_audio(wav, n, event):
        if n > 0:
            samples.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while event[i].type != LIST_TERMINATED:
            if event[i].type in (WORD_EVENT, END_EVENT):
                events.append((event[i].type, event[i].text_position, event[i].length, event[i].sample))
            i += 1
        return 0

    callback = _CALLBACK(on_audio)
    lib.espeak_SetSynthCallback(callback)
    version = lib.espeak_Info(None).decode()
    return _Engine(lib, callback, samples, events, version)


def _speak_one(engine, text, voice, rate):
    """Samples (int16 at 22,050 Hz) and events [(type, char position (1-based), length, sample)] of one text."""
    engine.samples.clear()
    engine.events.clear()
    if engine.lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise ValueError(f"eSpeak NG has no voice {voice!r}; use e.g. 'en-us', 'en-us+m3' or 'en-us+f2'")
    engine.lib.espeak_SetParameter(ESPEAK_RATE, int(rate), 0)
    encoded = text.encode()
    status = engine.lib.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, 0, None, None)
    if status != 0:
        raise RuntimeError(f"eSpeak NG failed (status {status}) on the text {text[:60]!r}")
    wav = np.concatenate(engine.samples) if engine.samples else np.zeros(0, np.int16)
    return wav.astype(np.int16), list(engine.events)


def _speak_chunk(texts, voices, rates):
    """Speak texts in order in this (fresh) process: [(int16 samples, events)]."""
    engine = espeak()
    return [_speak_one(engine, t, v, r) for t, v, r in zip(texts, voices, rates)]


def speak_in_fresh_processes(texts, voices, rates, workers=None):
    """Speak every text; each chunk of ``CHUNK_SENTENCES`` is spoken by a new Python process.

    eSpeak NG keeps state between calls (its output for a sentence depends
    on what the process spoke before, by a few samples), so the same chunk
    spoken from the same fresh state is what makes the result reproducible,
    whatever the number of workers. Plain subprocesses (not multiprocessing)
    so a caller's script needs no ``if __name__ == "__main__"`` guard.
    """
    import os
    import pickle
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from ..core.runtime import child_environment, environment

    chunks = [slice(i, i + CHUNK_SENTENCES) for i in range(0, len(texts), CHUNK_SENTENCES)]
    root = str(Path(__file__).resolve().parents[2])  # the folder that holds encoding_kit/
    env = child_environment(PYTHONPATH=os.pathsep.join(filter(None, [root, environment("PYTHONPATH")])))
    command = [sys.executable, "-c", "from encoding_kit.demo.espeak import _worker; _worker()"]

    def run(chunk):
        job = pickle.dumps((texts[chunk], voices[chunk], rates[chunk]))
        done = subprocess.run(command, input=job, capture_output=True, env=env, check=False)
        if done.returncode != 0:
            raise SpeechUnavailable(f"the eSpeak NG worker process failed: {done.stderr.decode()[-500:]}")
        status, value = pickle.loads(done.stdout)
        if status == "error":
            raise value
        return value

    workers = workers or max(1, min(len(chunks), os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(workers) as pool:
        return [item for result in pool.map(run, chunks) for item in result]


def _worker():
    """Entry point of a worker process: pickled (texts, voices, rates) on stdin, ("ok", clips) on stdout."""
    import pickle
    import sys

    texts, voices, rates = pickle.loads(sys.stdin.buffer.read())
    try:
        result = ("ok", _speak_chunk(texts, voices, rates))
    except (ValueError, RuntimeError) as exc:
        result = ("error", exc)
    sys.stdout.buffer.write(pickle.dumps(result))
