"""Storage shared by every stage: atomic writes, hashes, cache keys and roots, damaged files set aside.

One mechanism for every cache of the kit. Features: one ``.npy`` per layer
under ``features/<kind>-<hash>/`` (``FeatureCache``); encoding results, decoding
tables and rendered maps use the same ``cache_key`` / ``hash_array`` keys, the
same ``atomic_write`` and the same ``set_aside`` for damaged files.

The key is a hash of everything that changes the result: the model name and
revision (or a hash of a loaded model's weights), the layers, every
extraction parameter, the precision (float32, or bf16 autocast: ``core.runtime.precision``) and a
hash of the words or the audio. A changed parameter gives a new key, so stale
features are never returned. Files are written to a temporary name and
renamed, so an interrupted run never leaves a half-written layer behind.

Each layer file holds its values and their SHA-1. A file that cannot be read
or whose values do not match their checksum (a disk fault, a hand edit, a
file copied from elsewhere) is reported in one line, moved aside (never
deleted) and recomputed. Temporary files left by killed writers are removed
once their process is gone (or after a day).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import time
import warnings
from pathlib import Path

import numpy as np

from .runtime import environment

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds encoding_kit/, data/, features/, results/


def _host_tag():
    """This machine's name as it appears in temporary names (letters, digits, ``-`` and ``_`` only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"


def temp_tag():
    """``<pid>@<host>``: the writer of a temporary file, so that only its own host judges whether it is alive."""
    return f"{os.getpid()}@{_host_tag()}"


def atomic_write(path, write):
    """Write a file through ``write(tmp_path)`` under a temporary name in its folder, then rename it.

    Readers never see a half-written file, and an interrupted write leaves
    the previous file (if any) in place. The temporary name keeps the suffix,
    so writers that pick the format from it (``np.save``, ``savefig``) work.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{temp_tag()}.tmp-{secrets.token_hex(4)}{path.suffix}")  # unique per writer
    try:
        write(tmp)
        os.replace(tmp, path)
    except PermissionError as exc:
        raise PermissionError(f"{path}: cannot be written ({exc.strerror or exc}); is the folder {path.parent} "
                              "read-only? Choose a writable folder.") from exc
    except Exception as exc:
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        if not full and "No space left on device" not in str(exc):  # libsndfile says it in its own error
            raise
        raise OSError(errno.ENOSPC, f"{path}: cannot be written (no space left on the device); the file was not "
                      f"changed. Free space on the disk of {path.parent} (or choose another folder) and run "
                      "again") from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # nothing was created in a read-only folder; never hide the first error
            pass
    return path



def atomic_folder(folder, write, complete):
    """Fill a folder through ``write(tmp_folder)`` under a temporary name beside it, then rename it into place.

    Readers never see a half-written folder. When another process placed
    the folder first, its copy is kept (``complete(folder)`` must then be
    true, else the error is raised).

    Parameters
    ----------
    folder : Path
    write : callable (Path) -> None
        Fills the empty temporary folder it is given.
    complete : callable (Path) -> bool
        Whether a folder holds a finished copy (e.g. its last file exists).

    Returns
    -------
    pathlib.Path
        ``folder``.
    """
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.{temp_tag()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        write(tmp)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished first
            if not complete(folder):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def place_new(source, target):
    """Move ``source`` to ``target`` only if ``target`` does not exist, in one step (never replaces a file).

    A hard link is made (it fails if the name exists, however late the file
    appeared), then ``source`` is removed. On file systems without hard
    links it falls back to a check and a rename.

    Raises
    ------
    FileExistsError
        ``target`` exists; ``source`` is left where it was.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "already exists", str(target)) from None
        os.replace(source, target)
        return
    os.unlink(source)


class FolderBusy(OSError):
    """Another process holds a folder's lock (:func:`folder_lock`)."""


@contextlib.contextmanager
def folder_lock(folder, name, what):
    """Hold the lock file ``folder/name`` (created with the folder) for the ``with`` block, or refuse at once.

    A ``filelock`` lock: released when the block ends or its process dies
    (even when killed), so a crash never leaves the folder locked. When the
    block ends with the lock file alone in the folder, the lock file is
    removed (and the folder too, if this call created it): a failed first
    run leaves no folder behind.

    Parameters
    ----------
    folder : Path
    name : str
        Lock file name, e.g. ``".demo.lock"``.
    what : str
        Says what holds it, completed by the folder: ``"a demo is being generated in"``.

    Raises
    ------
    FolderBusy
        Another process holds it: one line naming the folder and the lock file.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / name), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise FolderBusy(errno.EBUSY, f"{what} {folder} by another process right now (it holds {folder / name}); "
                         "wait for it to finish, or use another folder") from None
    try:
        yield folder
    finally:
        try:
            alone = [entry.name for entry in os.scandir(folder)] == [name]
            if alone:  # removed while held: a process waiting on this file sees it gone and retries (filelock 4)
                (folder / name).unlink()
        except OSError:
            alone = False
        lock.release()
        if alone and created:
            with contextlib.suppress(OSError):
                folder.rmdir()


_SHA1 = {}


def file_sha1(path):
    """SHA-1 of a file's bytes (remembered per path, size and modification time in this process)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA1:
        h = hashlib.sha1()
        with open(path, "rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
        _SHA1[key] = h.hexdigest()
    return _SHA1[key]


CACHE_ENV = "KIT_FEATURE_DIR"


def cache_root(path=None):
    """Cache folder: argument, then ``$KIT_FEATURE_DIR``, then ``features/``."""
    if path is not None:
        return Path(path)
    return Path(environment(CACHE_ENV) or PROJECT_ROOT / "features")


def hash_array(values):
    """Short stable hash of an array or a list of strings."""
    h = hashlib.sha1()
    if isinstance(values, np.ndarray):
        h.update(str((values.dtype.str, values.shape)).encode())
        h.update(np.ascontiguousarray(values).tobytes())
    else:
        h.update(json.dumps(list(map(str, values))).encode())
    return h.hexdigest()[:16]


STALE_TEMP_S = 24 * 3600
"""Temporary files older than this are removed even if their process id is in use again."""
_TEMP = re.compile(r"^\..+\.(\d+)(?:@([A-Za-z0-9_-]+))?\.tmp")  # the temporary names of every writer (temp_tag)


def set_aside(path, reason):
    """Move a damaged cache entry beside itself (``<name>.corrupt-<time>``) and say so in one line.

    Returns
    -------
    pathlib.Path
        Where it went.
    """
    path = Path(path)
    stamp, n = f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}", 1
    target = path.with_name(stamp)
    while target.exists():  # never replace an earlier damaged copy
        n += 1
        target = path.with_name(f"{stamp}-{n}")
    try:
        os.replace(path, target)
    except FileNotFoundError:  # another process set it aside first
        return target
    print(f"Cache entry {path} is damaged ({reason}); moved to {target.name} and recomputing.")
    return target


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(folder, max_age_s=STALE_TEMP_S):
    """Delete temporary files/folders of writers that died (process gone, or older than ``max_age_s``).

    A live writer's temporary file (its process still runs, and it is
    younger than ``max_age_s``) is left alone. Temporary names record the
    writer as ``<pid>@<host>`` (:func:`temp_tag`): a process id is looked up
    only when the writer ran on this host, so a cache folder shared by the
    nodes of a cluster never loses another node's live writer; another
    host's temporary file (or one without a host, from an older kit) is
    removed only once it is older than ``max_age_s``.

    Returns
    -------
    list of pathlib.Path
        What was removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = _TEMP.match(entry.name)
        if not match:
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        pid, host = int(match.group(1)), match.group(2)
        dead_here = host == _host_tag() and pid != os.getpid() and not _pid_alive(pid)
        if dead_here or age > max_age_s:
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    Path(entry.path).unlink(missing_ok=True)
            except OSError:  # a read-only folder: leave it (it is never read as a result)
                continue
            removed.append(Path(entry.path))
    return removed


_UNWRITABLE = set()


def cache_unwritable(folder, exc):
    """Say once per cache root that it cannot be written (read-only, missing, full): the kit goes on uncached.

    Parameters
    ----------
    folder : Path
        The cache entry that could not be stored.
    exc : OSError
    """
    root = str(Path(folder).parent)
    if root in _UNWRITABLE:
        return
    _UNWRITABLE.add(root)
    reason = exc.strerror or os.strerror(exc.errno) if exc.errno else str(exc)
    warnings.warn(f"cache folder {root} cannot be written ({reason}): going on without caching (results are "
                  f"computed but not stored). Set {CACHE_ENV} to a writable folder to cache them.", stacklevel=3)


def cache_key(kind, params):
    """Folder name for a parameter set: ``<kind>-<sha1 of sorted JSON params>``."""
    text = json.dumps(params, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha1(text.encode()).hexdigest()[:16]}"


class FeatureCache:
    """Load or store per-layer feature arrays under one key.

    Parameters
    ----------
    kind : str
        ``"text"``, ``"audio"``, ...; the folder prefix.
    params : dict
        Everything that changes the result (JSON-serialisable).
    root : str or Path, optional
    enabled : bool
        ``False`` turns the cache off (always recompute, never write).
    """

    def __init__(self, kind, params, root=None, enabled=True):
        self.folder = cache_root(root) / cache_key(kind, params)
        self.kind = kind
        self.params = params
        self.enabled = enabled
        self._missed_at = None  # when load() found nothing: save() then logs the extraction's time

    def _file(self, layer):
        return self.folder / f"layer_{int(layer):03d}.npz"

    def _read(self, layer):
        """The layer's array, or ``None`` after setting a damaged file aside."""
        file = self._file(layer)
        try:
            with np.load(file, allow_pickle=False) as z:
                values, recorded = z["values"], str(z["sha1"])
        except Exception as exc:  # truncated, not a zip, missing members, ...
            set_aside(file, f"{type(exc).__name__}: {exc}")
            return None
        if hash_array(values) != recorded:
            set_aside(file, f"its {values.dtype} array of shape {values.shape} does not match its checksum")
            return None
        return values

    def load(self, layers):
        """{layer: array} if every requested layer is cached and intact, else ``None``.

        A hit is logged as an extraction step answered by the cache, and a
        miss starts the clock of the extraction that :meth:`save` ends
        (:mod:`encoding_kit.core.run_log`).
        """
        start = time.perf_counter()
        out = None
        if self.enabled and all(self._file(layer).exists() for layer in layers):
            remove_stale_temps(self.folder)
            out = {layer: self._read(layer) for layer in layers}
            out = None if any(v is None for v in out.values()) else out
        if out is None:
            self._missed_at = start
        else:
            self._log("hit", time.perf_counter() - start)
        return out

    def missing(self, layers):
        """Requested layers that are not cached yet."""
        return [layer for layer in layers if not (self.enabled and self._file(layer).exists())]

    def save(self, features):
        """Write {layer: array} atomically; records the parameters beside them.

        A cache folder that cannot be written (read-only, missing and not
        creatable, a full disk) gives one warning per folder and turns this
        cache off; the layers already stored stay, the caller keeps its arrays.
        """
        if self._missed_at is not None:
            self._log("miss", time.perf_counter() - self._missed_at)
            self._missed_at = None
        if not self.enabled:
            return
        try:
            meta = self.folder / "params.json"
            if not meta.exists():
                text = json.dumps(self.params, indent=1, sort_keys=True, default=str)
                atomic_write(meta, lambda tmp: tmp.write_text(text))
            for layer, values in features.items():
                values = np.asarray(values)
                atomic_write(self._file(layer), lambda tmp, v=values: np.savez(tmp, values=v, sha1=hash_array(v)))
        except OSError as exc:  # read-only, missing or full cache folder: the features are still returned
            cache_unwritable(self.folder, exc)
            self.enabled = False


    def _log(self, cache, seconds):
        from .run_log import record

        record("extraction", seconds=round(seconds, 4), nested=False, cache=cache, feature=self.kind,
               model=self.params.get("model"), key=self.folder.name)


def processor_hash(processor):
    """Hash of a tokenizer's or feature extractor's settings (part of the cache key).

    A tokenizer is hashed with its vocabulary (every token and its id), not only its size: two tokenizers of one
    size that split the story differently (a tokenizer trained locally for a stand-in can differ between processes)
    must not share cached features.
    """
    try:
        settings = processor.to_dict()  # feature extractors
    except AttributeError:
        settings = {"class": type(processor).__name__, "vocab": len(processor),
                    "specials": getattr(processor, "all_special_tokens", []), "tokens": vocabulary_hash(processor)}
    return hash_array([repr(sorted(settings.items(), key=lambda kv: kv[0]))])


def vocabulary_hash(tokenizer):
    """Hash of a tokenizer's tokens and their ids (``get_vocab()``); ``None`` when it has no vocabulary to read."""
    try:
        vocab = tokenizer.get_vocab()
    except (AttributeError, NotImplementedError):
        return None
    return hash_array(sorted(f"{token}\t{index}" for token, index in vocab.items()))


def weights_hash(net):
    """Hash of a sample of a model's first and last parameters (part of the cache key: tells weights apart)."""
    params = list(net.parameters())
    sample = np.concatenate([params[0].detach().float().flatten()[:4096].cpu().numpy(),
                             params[-1].detach().float().flatten()[:4096].cpu().numpy()])
    return hash_array(sample)
