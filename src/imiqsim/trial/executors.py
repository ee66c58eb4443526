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
  chunks are queued at once.
- ``scheduler="tcp://host:8786"``: the chunks go to an existing
  dask.distributed cluster.

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

import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from imiqsim.errors import InputError

__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_WORKERS",
    "chunk_starts",
    "execute",
    "validate_run",
]

#: the most local worker processes a trial may ask for
MAX_WORKERS = 256
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
    if not _whole(seed) or seed < 0:
        raise InputError("seed", seed, "a non-negative whole number")
    if not _whole(chunk_size) or chunk_size < 1:
        raise InputError("chunk_size", chunk_size, "a positive whole number")
    if not _whole(workers) or not 1 <= workers <= MAX_WORKERS:
        raise InputError("workers", workers, f"a whole number from 1 to {MAX_WORKERS}")
    if not _number_in(followup_years, 0, 10):
        raise InputError("followup_years", followup_years, "a number of years from 0 to 10")
    if not _number_in(immunosuppressed_fraction, 0, 1):
        raise InputError(
            "immunosuppressed_fraction", immunosuppressed_fraction, "a fraction in [0, 1]"
        )


def chunk_starts(patients: int, chunk_size: int) -> list[tuple[int, int]]:
    """``(start, n)`` of each chunk of an arm, in patient order."""
    return [(s, min(chunk_size, patients - s)) for s in range(0, patients, chunk_size)]


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


# --------------------------------------------------------------------------- executors


def execute(
    task: Callable[[T], R],
    items: Sequence[T],
    *,
    on_done: Callable[[int, R], None],
    workers: int = 1,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    done: int = 0,
    total: int | None = None,
) -> None:
    """Run ``task(item)`` for every item; call ``on_done(index, result)`` here as each finishes.

    Parameters
    ----------
    task : callable
        A module-level function (it is pickled for worker processes and dask).
    items : sequence
        Its arguments, one per call.
    on_done : callable(index, result)
        Called in this process, in completion order. An exception it raises
        counts as a failure of that item.
    workers : int
        Local processes; 1 runs in this process. Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a dask.distributed scheduler.
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
    total = done + len(items) if total is None else total
    if not items:
        return
    if scheduler is not None:
        _run_dask(task, items, on_done, scheduler, progress, done, total)
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
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    workers = min(workers, len(items))
    ahead = 2 * workers  # bounded submission: at most this many items queued or running
    error: BaseException | None = None
    ex = ProcessPoolExecutor(
        max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init
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


def _run_dask(task, items, on_done, scheduler, progress, done, total) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError(
            "scheduler",
            scheduler,
            "needs dask.distributed installed: pip install 'dask[distributed]'",
        ) from None
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as exc:
        raise InputError(
            "scheduler",
            scheduler,
            f"the address of a running dask scheduler "
            f"(tcp://host:8786); could not connect: {type(exc).__name__}: {exc}",
        ) from None
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
        client.close()
    if error is not None:
        raise error
