"""The dashboard's worker pool: results, progress, errors with the CLI's message, cancellation."""

from __future__ import annotations

import time
from concurrent.futures import CancelledError

import pytest

from imiqsim.errors import InputError
from imiqsim.web import backend
from imiqsim.web.jobs import JobFailed, WorkerPool


def counting(n: int, pause: float, progress=None) -> int:
    """A job that reports progress n times (module level: workers import it by name)."""
    for i in range(n):
        time.sleep(pause)
        if progress is not None:
            progress(i + 1, n)
    return n * 10


def crash() -> None:
    raise ZeroDivisionError("boom")


@pytest.fixture(scope="module")
def pool():
    p = WorkerPool(2)
    assert p.wait_ready(60)
    yield p
    p.close()


def test_results_and_progress(pool):
    job = pool.submit(counting, 5, 0.05)
    assert job.result(timeout=30) == 50
    assert job.progress == (5, 5)


def test_input_error_arrives_with_the_same_message(pool):
    with pytest.raises(InputError) as local:
        backend.scenario_from_upload("bad.toml", b"area_cm2 = 0\n")
    job = pool.submit(backend.scenario_from_upload, "bad.toml", b"area_cm2 = 0\n")
    with pytest.raises(InputError) as remote:
        job.result(timeout=30)
    assert str(remote.value) == str(local.value)
    assert remote.value.field == local.value.field


def test_unexpected_error_carries_the_traceback(pool):
    with pytest.raises(JobFailed, match="ZeroDivisionError: boom"):
        pool.submit(crash).result(timeout=30)


def test_cancel_a_running_job_then_the_pool_still_works(pool):
    job = pool.submit(counting, 1000, 0.05)
    end = time.monotonic() + 30
    while job.progress[0] == 0 and time.monotonic() < end:
        time.sleep(0.02)
    assert job.progress[0] > 0, "the job never started"
    assert job.cancel()
    with pytest.raises(CancelledError):
        job.result(timeout=1)
    assert not job.cancel()  # already over
    assert pool.submit(counting, 2, 0.0).result(timeout=60) == 20  # a replacement worker took it


def test_cancel_a_queued_job(pool):
    busy = [pool.submit(counting, 40, 0.05) for _ in range(2)]
    queued = pool.submit(counting, 1, 0.0)
    assert queued.cancel()
    assert queued.cancelled()
    assert [b.result(timeout=60) for b in busy] == [400, 400]
    assert pool.busy() == 0


def test_pool_size_is_checked():
    with pytest.raises(InputError, match="workers: got 0"):
        WorkerPool(0)
