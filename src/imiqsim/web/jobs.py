"""A small pool of spawned worker processes whose running jobs can be cancelled.

The dashboard's simulations run here, off the web server's event loop, so a page stays
responsive while a trial runs. Workers are started with the ``spawn`` method (Numba's threading
layer is not fork-safe).
A job that is still queued is simply dropped on :meth:`Job.cancel`; a running one is stopped by
ending its worker process, which the pool replaces at once.

A job is ``fn(*args, progress=callback)`` where ``fn`` is a module-level function (it is
pickled by reference) and ``callback(done, total)`` reports progress back to the server.

Examples
--------
>>> from imiqsim.web.jobs import WorkerPool
>>> pool = WorkerPool(1)                           # doctest: +SKIP
>>> job = pool.submit(max, 2, 3)                   # doctest: +SKIP
>>> job.result(timeout=60)                         # doctest: +SKIP
3
>>> pool.close()                                   # doctest: +SKIP
"""

from __future__ import annotations

import collections
import inspect
import itertools
import multiprocessing as mp
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

__all__ = ["Job", "JobFailed", "WorkerPool"]


class JobFailed(RuntimeError):
    """A job raised an unexpected exception in its worker; the message carries its traceback."""


def _rebuild_error(kind: str, payload: Any) -> BaseException:
    # exceptions are sent as plain data: an InputError cannot be unpickled from its args
    if kind == "input":
        from imiqsim.errors import InputError

        field, value, allowed = payload
        return InputError(field, value, allowed)
    if kind == "imiqsim":
        from imiqsim.errors import ImiqsimError

        return ImiqsimError(payload)
    return JobFailed(payload)


def _worker_main(conn, warm_up: Callable[[], Any] | None) -> None:
    """Entry point of a worker process: run jobs received on ``conn`` until it closes."""
    if warm_up is not None:
        try:
            warm_up()
        except Exception:  # a failed warm-up only costs the first job its compile time
            traceback.print_exc()
    conn.send(("ready", None, None))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        job_id, fn, args, kwargs = msg

        def progress(done: int, total: int, _id: int = job_id) -> None:
            conn.send(("progress", _id, (int(done), int(total))))

        try:
            if "progress" in inspect.signature(fn).parameters:
                kwargs = {**kwargs, "progress": progress}
            result = fn(*args, **kwargs)
        except Exception as exc:
            from imiqsim.errors import ImiqsimError, InputError

            if isinstance(exc, InputError):
                value = exc.value
                try:
                    import pickle

                    pickle.dumps(value)
                except Exception:
                    value = repr(value)
                conn.send(("error", job_id, ("input", (exc.field, value, exc.allowed))))
            elif isinstance(exc, ImiqsimError):
                conn.send(("error", job_id, ("imiqsim", str(exc))))
            else:
                conn.send(("error", job_id, ("other", traceback.format_exc())))
            continue
        conn.send(("done", job_id, result))


class Job:
    """A submitted job: a future, its progress and a way to cancel it."""

    def __init__(self, job_id: int, pool: WorkerPool, call: tuple):
        self.id = job_id
        self.future: Future = Future()
        self.progress: tuple[int, int] = (0, 0)
        self._pool = pool
        self._call = call

    def done(self) -> bool:
        """True once the job finished, failed or was cancelled."""
        return self.future.done()

    def cancelled(self) -> bool:
        return self.future.cancelled()

    def result(self, timeout: float | None = None) -> Any:
        """The job's return value (raises its error, or CancelledError)."""
        return self.future.result(timeout)

    def cancel(self) -> bool:
        """Stop the job: drop it from the queue, or end the worker running it."""
        return self._pool._cancel(self)


class _Worker:
    def __init__(self, ctx, warm_up):
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, warm_up), daemon=True)
        self.process.start()
        child.close()
        self.job: Job | None = None
        self.ready = False
        self.send_lock = threading.Lock()


class WorkerPool:
    """``size`` spawned worker processes; jobs run first come, first served.

    Parameters
    ----------
    size : int
        Number of worker processes (1 to 64).
    warm_up : callable, optional
        Module-level function each worker runs once when it starts (e.g. load the compiled
        kernel), before it takes jobs.
    """

    def __init__(self, size: int, warm_up: Callable[[], Any] | None = None):
        if not isinstance(size, int) or not 1 <= size <= 64:
            from imiqsim.errors import InputError

            raise InputError("workers", size, "a whole number from 1 to 64")
        self.size = size
        self._ctx = mp.get_context("spawn")
        self._warm_up = warm_up
        self._lock = threading.RLock()
        self._queue: collections.deque[Job] = collections.deque()
        self._ids = itertools.count(1)
        self._workers: list[_Worker] = []
        self._closed = False
        for _ in range(size):
            self._start_worker()

    # ------------------------------------------------------------------ public API

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
        """Queue ``fn(*args, **kwargs)``; returns its :class:`Job` at once."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            job = Job(next(self._ids), self, (fn, args, kwargs))
            self._queue.append(job)
            self._dispatch()
        return job

    def busy(self) -> int:
        """Jobs running now plus jobs waiting."""
        with self._lock:
            return sum(w.job is not None for w in self._workers) + len(self._queue)

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Block until every worker has started and warmed up (True) or ``timeout`` passes."""
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if all(w.ready for w in self._workers):
                    return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Cancel everything and end the worker processes."""
        with self._lock:
            self._closed = True
            queued = list(self._queue)
            self._queue.clear()
            workers = list(self._workers)
            self._workers.clear()
        for job in queued:
            job.future.cancel()
        for w in workers:
            if w.job is not None:
                w.job.future.cancel()
            try:
                with w.send_lock:
                    w.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
            w.process.join(timeout=2)
            if w.process.is_alive():
                w.process.terminate()
                w.process.join(timeout=2)

    # ------------------------------------------------------------------ internals

    def _start_worker(self) -> _Worker:
        w = _Worker(self._ctx, self._warm_up)
        self._workers.append(w)
        threading.Thread(target=self._read, args=(w,), daemon=True).start()
        return w

    def _dispatch(self) -> None:
        # called with the lock held: hand queued jobs to idle, ready workers
        for w in self._workers:
            if not self._queue:
                return
            if w.ready and w.job is None:
                job = self._queue.popleft()
                w.job = job
                fn, args, kwargs = job._call
                try:
                    with w.send_lock:
                        w.conn.send((job.id, fn, args, kwargs))
                except Exception as exc:  # unpicklable arguments: fail this job only
                    w.job = None
                    job.future.set_exception(JobFailed(f"could not send the job: {exc}"))

    def _read(self, w: _Worker) -> None:
        while True:
            try:
                kind, job_id, payload = w.conn.recv()
            except (EOFError, OSError):
                self._worker_died(w)
                return
            with self._lock:
                job = w.job
                if kind == "ready":
                    w.ready = True
                elif job is not None and job.id == job_id:
                    if kind == "progress":
                        job.progress = payload
                        continue
                    w.job = None
                    if not job.future.done():
                        if kind == "done":
                            job.future.set_result(payload)
                        else:
                            job.future.set_exception(_rebuild_error(*payload))
                self._dispatch()

    def _worker_died(self, w: _Worker) -> None:
        with self._lock:
            if w in self._workers:
                self._workers.remove(w)
            job, w.job = w.job, None
            if job is not None and not job.future.done():
                code = w.process.exitcode
                job.future.set_exception(
                    JobFailed(f"the worker process stopped unexpectedly (exit code {code})")
                )
            if not self._closed and len(self._workers) < self.size:
                self._start_worker()

    def _cancel(self, job: Job) -> bool:
        with self._lock:
            if job.future.done():
                return False
            if job in self._queue:
                self._queue.remove(job)
                job.future.cancel()
                return True
            for w in self._workers:
                if w.job is job:
                    w.job = None
                    job.future.cancel()
                    self._workers.remove(w)
                    w.process.terminate()
                    if not self._closed:
                        self._start_worker()
                    return True
        return False
