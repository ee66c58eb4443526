"""One cache and loader for generated Numba modules (the model kernels and the field kernels).

A generated module is written once to the cache directory under a name that
ends in a hash of its source, then imported from there, so Numba's on-disk
cache (``cache=True``) works across processes and a change to any part of
the source gets a fresh module. Writes are atomic: parallel workers never
see half a file.

Cache location: ``$IMIQSIM_CACHE_DIR`` if set, else ``~/.cache/imiqsim``.

Examples
--------
>>> import tempfile, os
>>> os.environ["IMIQSIM_CACHE_DIR"] = tempfile.mkdtemp()
>>> mod = load_generated("imiqsim_doc_example", "ANSWER = 42\\n")
>>> mod.ANSWER, mod.__name__.startswith("imiqsim_doc_example_")
(42, True)
>>> load_generated("imiqsim_doc_example", "ANSWER = 42\\n") is mod
True
>>> del os.environ["IMIQSIM_CACHE_DIR"]
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["cache_dir", "load_generated"]


def cache_dir() -> Path:
    """The directory generated modules (and Numba's cache of them) live in."""
    d = os.environ.get("IMIQSIM_CACHE_DIR")
    return Path(d) if d else Path.home() / ".cache" / "imiqsim"


def load_generated(prefix: str, source: str, digits: int = 8) -> ModuleType:
    """Import the module with this source, writing it to the cache first if needed.

    Parameters
    ----------
    prefix : str
        Start of the module name (a Python identifier, e.g.
        ``"imiqsim_gen_<model fingerprint>"``); the name is ``prefix`` + ``_``
        + the first ``digits`` hex digits of the source's SHA-256.
    source : str
        The module's Python source.
    digits : int
        Length of the hash in the name.

    Returns
    -------
    ModuleType
        The imported module (the same object for the same source within a
        process).
    """
    modname = f"{prefix}_{hashlib.sha256(source.encode()).hexdigest()[:digits]}"
    if modname in sys.modules:
        return sys.modules[modname]
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{modname}.py"
    if not path.exists() or path.read_text() != source:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has a loader
        raise ImportError(f"cannot load generated module {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[modname]
        raise
    return mod
