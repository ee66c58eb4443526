"""One executor layer for virtual trials: in this process, a spawned process pool, or dask.

In-memory trials (:func:`imiqsim.trial.run_trial`) and streamed ones
(:func:`imiqsim.trial.streaming.run_streaming`) both cut an arm into chunks of
patients and hand the chunks to :func:`execute`; both validate their inputs
with :func:`validate_run`. Results never depend on the executor, the worker
count or the chunk size: every patient's random stream derives from (seed,
patient index).

- ``workers == 1`` and no scheduler: the chunks run here, one after another.
- ``workers > 1``: local worker processes, *spawned* (forking a process whose
  compiled kernels already started OpenMP threads can hang), each with a
  single-threaded kernel, so W processes use W cores. At most ``2 * workers``
  chunks are queued at once. The workers never re-run the caller's main
  module (a plain script without an ``if __name__ == "__main__":`` guard
  works: the tasks are imiqsim functions, so the workers need only imiqsim).
- ``scheduler="tcp://host:8786"``, ``scheduler_file="scheduler.json"`` (as
  written by ``dask scheduler --scheduler-file``, dask-jobqueue or dask-mpi)
  or a ``dask.distributed.Client``: the chunks go to that dask cluster.

Items may be a lazy iterable (with ``total`` given): a streamed trial of a
billion patients never holds its list of chunks.

A failing chunk stops new submissions; the chunks already running finish (a
streamed run keeps their files), then the first error is raised.

Examples
--------
>>> from imiqsim.trial.executors import chunk_starts, execute
>>> chunk_starts(12, 5)
[(0, 5), (5, 5), (10, 2)]
>>> got = {}
>>> execute(abs, [-1, -2, 3], on_done=lambda i, r: got.update({i: r}))
>>> got
{0: 1, 1: 2, 2: 3}
"""

from __future__ import annotations

import multiprocessing.context as _mpc
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

from imiqsim.errors import InputError

__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_SEED",
    "MAX_WORKERS",
    "chunk_starts",
    "execute",
    "iter_chunk_starts",
    "read_scheduler_file",
    "validate_run",
]

#: the most local worker processes a trial may ask for
MAX_WORKERS = 256
#: the largest seed (stored as a signed 64-bit integer in NetCDF and Parquet files)
MAX_SEED = 2**63 - 1
#: how long to try reaching a dask scheduler
CONNECT_TIMEOUT = "20s"

T = TypeVar("T")
R = TypeVar("R")


# --------------------------------------------------------------------------- validation


def _whole(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _number_in(x: Any, lo: float, hi: float) -> bool:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(v)) and lo <= v <= hi


def validate_run(
    arms: Sequence[Any],
    *,
    patients: Any,
    seed: Any,
    workers: Any,
    chunk_size: Any,
    followup_years: Any,
    immunosuppressed_fraction: Any,
    max_patients: int | None = None,
) -> None:
    """Refuse bad trial inputs with an :class:`~imiqsim.errors.InputError` naming the field.

    ``max_patients``: a cap on patients per arm (in-memory trials without ``force``).

    Examples
    --------
    >>> validate_run(["ak-5pct"], patients=10, seed=1, workers=2, chunk_size=5,
    ...              followup_years=1.0, immunosuppressed_fraction=0.0)
    >>> validate_run(["ak-5pct"], patients=10, seed=1, workers=0, chunk_size=5,
    ...              followup_years=1.0, immunosuppressed_fraction=0.0)
    Traceback (most recent call last):
    ...
    imiqsim.errors.InputError: workers: got 0; a whole number from 1 to 256
    """
    if not arms:
        raise InputError("arms", list(arms), "at least one preset or scenario file")
    if not _whole(patients) or patients <= 0:
        raise InputError("patients", patients, "a positive whole number")
    if max_patients is not None and patients > max_patients:
        raise InputError("patients", patients, f"at most {max_patients} per arm without --force")
    if not _whole(seed) or not 0 <= seed <= MAX_SEED:
        raise InputError("seed", seed, f"a whole number from 0 to {MAX_SEED} (2**63 - 1)")
    if not _whole(chunk_size) or chunk_size < 1:
        raise InputError("chunk_size", chunk_size, "a positive whole number")
    if not _whole(workers) or not 1 <= workers <= MAX_WORKERS:
        raise InputError("workers", workers, f"a whole number from 1 to {MAX_WORKERS}")
    if not _number_in(followup_years, 0, 10):
        raise InputError("followup_years", followup_years, "a number of years from 0 to 10")
    if immunosuppressed_fraction is not None and not _number_in(immunosuppressed_fraction, 0, 1):
        raise InputError(
            "immunosuppressed_fraction", immunosuppressed_fraction, "a fraction in [0, 1]"
        )
    indications: dict[str, Any] = {}
    for a in arms:
        ind = getattr(a, "indication", None)
        if ind is None:
            from imiqsim.scenario import resolve

            ind = resolve(a).indication
        indications.setdefault(ind, getattr(a, "name", a))
    if len(indications) > 1:
        raise InputError(
            "arms",
            [str(getattr(a, "name", a)) for a in arms],
            "arms of one indication: the arms of a trial or comparison are the same virtual "
            f"patients (virtual twins), but these are {', '.join(sorted(indications))}; "
            "run one trial per indication",
        )


def chunk_starts(patients: int, chunk_size: int) -> list[tuple[int, int]]:
    """``(start, n)`` of each chunk of an arm, in patient order."""
    return list(iter_chunk_starts(patients, chunk_size))


def iter_chunk_starts(patients: int, chunk_size: int) -> Iterable[tuple[int, int]]:
    """:func:`chunk_starts` one chunk at a time (a billion patients: no list in memory)."""
    for s in range(0, patients, chunk_size):
        yield s, min(chunk_size, patients - s)


# --------------------------------------------------------------------------- worker side


def _worker_init() -> None:
    # runs in a freshly spawned worker before numba is imported there (nothing imported on the
    # way here loads numba): one kernel thread per process
    os.environ["NUMBA_NUM_THREADS"] = "1"
    # Ctrl-C reaches the whole process group: the main process handles it (and stops the workers)
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _single_threaded(task: Callable[[T], R], item: T) -> R:
    try:
        import numba

        numba.set_num_threads(1)  # per calling thread: also right for multi-threaded dask workers
    except Exception:  # pragma: no cover - numba always present in practice
        pass
    return task(item)


# --------------------------------------------------------------------------- a clean spawn

_PREP_LOCK = threading.Lock()


class _CleanSpawnProcess(_mpc.SpawnProcess):
    """A spawned process that does not re-run the caller's ``__main__``.

    multiprocessing's spawn normally re-imports the main script in every worker
    (so an unguarded ``run_trial(..., workers=2)`` at the top of a script starts
    itself again in each worker and fails). The tasks sent here are imiqsim
    functions, so the workers need no ``__main__``: the preparation data is
    sent without it.
    """

    @staticmethod
    def _Popen(process_obj):  # noqa: N802 - multiprocessing's name
        from multiprocessing import spawn

        with _PREP_LOCK:
            original = spawn.get_preparation_data

            def without_main(name):
                d = original(name)
                d.pop("init_main_from_path", None)
                d.pop("init_main_from_name", None)
                return d

            spawn.get_preparation_data = without_main
            try:
                return _mpc.SpawnProcess._Popen(process_obj)
            finally:
                spawn.get_preparation_data = original


class _CleanSpawnContext(_mpc.SpawnContext):
    Process = _CleanSpawnProcess


def _spawn_context() -> _mpc.SpawnContext:
    """The spawn context of local workers (:class:`_CleanSpawnProcess`)."""
    return _CleanSpawnContext()


# --------------------------------------------------------------------------- executors


def execute(
    task: Callable[[T], R],
    items: Iterable[T],
    *,
    on_done: Callable[[int, R], None],
    workers: int = 1,
    scheduler: Any = None,
    scheduler_file: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
    done: int = 0,
    total: int | None = None,
) -> None:
    """Run ``task(item)`` for every item; call ``on_done(index, result)`` here as each finishes.

    Parameters
    ----------
    task : callable
        A module-level function (it is pickled for worker processes and dask).
    items : iterable
        Its arguments, one per call: a sequence, or a lazy iterable (then give
        ``total``), consumed only as fast as the workers take them.
    on_done : callable(index, result)
        Called in this process, in completion order. An exception it raises
        counts as a failure of that item.
    workers : int
        Local processes; 1 runs in this process. Ignored with a scheduler.
    scheduler : str or dask.distributed.Client, optional
        Address of a dask.distributed scheduler, or a client (left open).
    scheduler_file : path, optional
        A dask scheduler file (JSON with the scheduler's ``address``).
    progress : callable(done, total), optional
        Called after each item.
    done, total : int
        Progress offset (items already done elsewhere) and total (default: ``done + len(items)``).

    Raises
    ------
    InputError
        dask is not installed, or the scheduler cannot be reached.
    Exception
        The first failure, after the items already running have finished.
    """
    if total is None:
        items = list(items)
        total = done + len(items)
    if scheduler is not None or scheduler_file is not None:
        _run_dask(task, items, on_done, (scheduler, scheduler_file), progress, done, total)
    elif workers == 1:
        _run_here(task, items, on_done, progress, done, total)
    else:
        _run_pool(task, items, on_done, workers, progress, done, total)


def _run_here(task, items, on_done, progress, done, total) -> None:
    for i, item in enumerate(items):
        on_done(i, task(item))  # an exception propagates: every earlier item is done
        done += 1
        if progress:
            progress(done, total)


def _run_pool(task, items, on_done, workers, progress, done, total) -> None:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    if isinstance(items, Sequence):
        if not items:
            return
        workers = min(workers, len(items))
    ahead = 2 * workers  # bounded submission: at most this many items queued or running
    error: BaseException | None = None
    ex = ProcessPoolExecutor(
        max_workers=workers, mp_context=_spawn_context(), initializer=_worker_init
    )
    try:
        queue = iter(enumerate(items))
        pending: dict = {}

        def top_up() -> None:
            for i, item in queue:
                pending[ex.submit(_single_threaded, task, item)] = i
                if len(pending) >= ahead:
                    break

        top_up()
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for f in finished:
                i = pending.pop(f)
                try:
                    on_done(i, f.result())
                except Exception as exc:
                    error = error or exc
                    continue
                done += 1
                if progress:
                    progress(done, total)
            if error is None:
                top_up()
            # after an error: submit nothing more, let the running items finish
    except BaseException:  # KeyboardInterrupt, ...: stop now; what finished is kept
        procs = list((getattr(ex, "_processes", None) or {}).values())
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            try:
                p.terminate()
            except Exception:
                pass
        raise
    ex.shutdown(wait=True)
    if error is not None:
        raise error


def read_scheduler_file(path: str | os.PathLike, field: str = "scheduler_file") -> str:
    """The scheduler address in a dask scheduler file (JSON with ``"address"``).

    Raises
    ------
    InputError
        The file is missing, not JSON, or has no address.
    """
    import json
    from pathlib import Path

    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))["address"]
        if not isinstance(value, str) or not value:
            raise TypeError("the address is not a string")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            field,
            str(path),
            "a dask scheduler file (JSON with the scheduler's address, as written by "
            f"`dask scheduler --scheduler-file`); {type(exc).__name__}: {exc}",
        ) from None
    return value


def _dask_client(scheduler: Any, scheduler_file: Any) -> tuple[Any, bool]:
    """The client to use, and whether it is ours to close."""
    if scheduler is not None and not isinstance(scheduler, (str, os.PathLike)):
        if not (hasattr(scheduler, "submit") and hasattr(scheduler, "scheduler_info")):
            raise InputError(
                "scheduler",
                type(scheduler).__name__,
                "a dask scheduler address (tcp://host:8786) or a dask.distributed.Client",
            )
        return scheduler, False
    if scheduler is not None and scheduler_file is not None:
        raise InputError(
            "scheduler_file", str(scheduler_file), "either a scheduler address or a scheduler file"
        )
    field, value = ("scheduler", scheduler) if scheduler is not None else ("scheduler_file", None)
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            field,
            scheduler if scheduler is not None else str(scheduler_file),
            "needs dask.distributed installed: pip install 'dask[distributed]'",
        ) from None
    if scheduler_file is not None:
        value = read_scheduler_file(scheduler_file)
    try:
        client = Client(value, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as exc:
        raise InputError(
            field,
            scheduler if scheduler is not None else str(scheduler_file),
            f"a running dask scheduler (tcp://host:8786); could not connect to {value}: "
            f"{type(exc).__name__}: {exc}",
        ) from None
    return client, True


def _run_dask(task, items, on_done, where, progress, done, total) -> None:
    client, own = _dask_client(*where)
    from distributed import as_completed

    error: BaseException | None = None
    try:
        info = client.scheduler_info()
        slots = sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()) or 1
        ahead = max(2, 2 * slots)
        tag = uuid.uuid4().hex[:8]
        index_of: dict[str, int] = {}

        def submit(i: int, item):
            key = f"imiqsim-chunk-{tag}-{i}"
            index_of[key] = i
            return client.submit(_single_threaded, task, item, key=key, pure=False)

        queue = iter(enumerate(items))
        first = []
        for i, item in queue:
            first.append(submit(i, item))
            if len(first) >= ahead:
                break
        if not first:
            return
        ac = as_completed(first, loop=client.loop)
        n_pending = len(first)
        for fut in ac:
            n_pending -= 1
            try:
                result = fut.result()
                on_done(index_of[fut.key], result)
            except Exception as exc:
                error = error or exc
            else:
                done += 1
                if progress:
                    progress(done, total)
            finally:
                fut.release()
            if error is None:
                for i, item in queue:
                    ac.add(submit(i, item))
                    n_pending += 1
                    if n_pending >= ahead:
                        break
    finally:
        if own:
            client.close()
    if error is not None:
        raise error
