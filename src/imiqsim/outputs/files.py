"""How every writer writes: paths checked up front, files written whole (temp + rename), the
directory locked while a run writes there, data files first and pictures after (a picture never
loses data).

>>> from imiqsim.outputs.files import figure_step
>>> messages = []
>>> figure_step(lambda: 1 / 0, "draw x.png", messages.append) is None
True
>>> messages
['could not draw x.png (ZeroDivisionError: division by zero); data files were written']
>>> figure_step(lambda: "x.png", "draw x.png", messages.append)
'x.png'
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

from imiqsim.errors import ImiqsimError, InputError

__all__ = [
    "LOCK_NAME",
    "atomic_path",
    "check_output_dir",
    "check_output_file",
    "figure_step",
    "lock_dir",
    "output_dir",
    "write_bytes_atomic",
    "write_text_atomic",
]

T = TypeVar("T")


def figure_step(
    draw: Callable[[], T], what: str, on_error: Callable[[str], None] | None = None
) -> T | None:
    """Run a figure or report step after the data files are on disk.

    Parameters
    ----------
    draw : callable
        Draws and writes the picture; its result is returned.
    what : str
        The step in words, for the message (``"draw out/cascade.png"``).
    on_error : callable, optional
        Receives one line when the step fails; the data files stay and None
        is returned. Without it the failure is raised. A user error
        (:class:`imiqsim.errors.ImiqsimError`) is always raised.
    """
    if on_error is None:
        return draw()
    try:
        return draw()
    except ImiqsimError:
        raise
    except Exception as exc:  # a plotting failure must not lose the data already written
        on_error(f"could not {what} ({type(exc).__name__}: {exc}); data files were written")
        return None


# --------------------------------------------------------------------------- output paths


def _probe_writable(directory: Path, field: str, shown: str) -> None:
    """Create and delete a small file in ``directory``: the one honest test of writability."""
    probe = directory / f".imiqsim-probe-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(
            field, shown, f"a writable location (cannot write in {directory}: {exc.strerror})"
        ) from None


def _as_path(path: str | os.PathLike | None, field: str) -> Path:
    if path is None or (isinstance(path, str) and not path.strip()):
        raise InputError(field, "" if path is None else path, "a path (it is empty)")
    if isinstance(path, str) and "\x00" in path:
        raise InputError(field, path, "a path without NUL characters")
    return Path(path).expanduser()


def check_output_dir(path: str | os.PathLike | None, field: str = "out_dir") -> Path:
    """Check (before any work) that ``path`` can be an output directory, and create it.

    Refused: an empty path, an existing file, a location that cannot be
    created or written (a read-only filesystem, ``/proc``, no permission).
    Missing parents are created.

    Parameters
    ----------
    path : path or str
        The directory wanted.
    field : str
        Its name in messages (``"--out"`` from the command line).

    Returns
    -------
    Path
        The directory, which now exists.

    Raises
    ------
    InputError
        Naming ``field``, the path and what is wanted.

    Examples
    --------
    >>> check_output_dir("", "--out")
    Traceback (most recent call last):
    ...
    imiqsim.errors.InputError: --out: got ''; a path (it is empty)
    """
    p = _as_path(path, field)
    shown = str(path)
    if p.exists() and not p.is_dir():
        raise InputError(field, shown, "a directory (this is an existing file)")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(field, shown, "a directory (a parent of it is a file)") from None
    except OSError as exc:
        allowed = f"a directory that can be created ({exc.strerror})"
        raise InputError(field, shown, allowed) from None
    _probe_writable(p, field, shown)
    return p


def check_output_file(path: str | os.PathLike | None, field: str = "out") -> Path:
    """Check (before any work) that a file can be written at ``path``; create its parent.

    Refused: an empty path, an existing directory, a parent that is a file or
    cannot be created, a location that cannot be written.

    Returns
    -------
    Path
        The file path (the file itself is not created).

    Raises
    ------
    InputError

    Examples
    --------
    >>> import tempfile
    >>> check_output_file(tempfile.gettempdir(), "--out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    imiqsim.errors.InputError: --out: got '...'; a file path (this is an existing directory)
    """
    p = _as_path(path, field)
    shown = str(path)
    if p.is_dir() or shown.endswith(os.sep):
        raise InputError(field, shown, "a file path (this is an existing directory)")
    parent = p.parent
    if parent.exists() and not parent.is_dir():
        raise InputError(field, shown, f"a file in a directory ({parent} is a file)")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            field, shown, f"a file in a directory that can be created ({exc.strerror})"
        ) from None
    if p.exists() and not os.access(p, os.W_OK):
        raise InputError(field, shown, "a file that may be overwritten (it is read-only)")
    _probe_writable(parent, field, shown)
    return p


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary name beside ``path``; on success rename it to ``path``.

    A file that exists under its final name is therefore complete: a run
    killed mid-write leaves at most a ``.tmp-*`` file, never a half file.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "x.txt").read_text(), sorted(p.name for p in d.iterdir())
    ('done', ['x.txt'])
    """
    final = Path(path)
    tmp = final.with_name(f"{final.name}.tmp-{uuid.uuid4().hex}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            try:
                tmp.unlink()
            except OSError:
                pass


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_path`; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


#: the lock file every run holds while it writes into its output directory
LOCK_NAME = ".lock"


def lock_dir(out: str | os.PathLike, field: str = "out_dir") -> IO[str]:
    """Take the exclusive lock on ``out/.lock`` held while a run writes there.

    Returns the open lock file (closing it releases the lock; the kernel
    releases it too when the process dies, so a killed run never leaves a
    stale lock).

    Raises
    ------
    InputError
        Another run holds the lock.
    """
    fh = open(Path(out) / LOCK_NAME, "a+")
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        return fh
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise InputError(
            field,
            str(out),
            "a directory no other run is using: another imiqsim run is "
            "writing to it now; wait for it to finish, or choose another directory",
        ) from None
    except OSError:  # a filesystem without flock support: go on unlocked
        pass
    return fh


#: a streamed run's directory holds this file (imiqsim.trial.streaming.MANIFEST_NAME)
STREAMED_RUN_MARKER = "manifest.json"


@contextmanager
def output_dir(path: str | os.PathLike | None, field: str = "out_dir") -> Iterator[Path]:
    """Check, create and lock an output directory for one in-memory run's files.

    Refuses a directory that holds a streamed run (its ``manifest.json``: the
    files of two runs must not mix) or that another run is writing to now.
    The lock is held until the block ends.
    """
    p = check_output_dir(path, field)
    if (p / STREAMED_RUN_MARKER).exists():
        raise InputError(
            field,
            str(path),
            "a directory without a streamed run (this one holds one: manifest.json); "
            "choose another directory",
        )
    fh = lock_dir(p, field)
    try:
        yield p
    finally:
        fh.close()
