"""kill -9 a streamed run at seeded points, then --resume: identical to an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from imiqsim.trial.streaming import JOURNAL_NAME, read_outcomes, run_streaming

SRC = Path(__file__).resolve().parents[2] / "src"
ARMS = ["sbcc-5pct", "sbcc-5pct-vehicle"]
PATIENTS, CHUNK, SEED = 16, 2, 5
N_CHUNKS = 2 * PATIENTS // CHUNK


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    return run_streaming(
        ARMS,
        patients=PATIENTS,
        seed=SEED,
        out_dir=out,
        chunk_size=CHUNK,
        workers=1,
        followup_years=0.0,
    )


def res_skipped_ok(out: Path) -> bool:
    """The killed run left fewer finished chunks than the whole run has."""
    return _journal_lines(out) < N_CHUNKS


def _journal_lines(out: Path) -> int:
    try:
        return sum(1 for _ in open(out / JOURNAL_NAME, encoding="utf-8"))
    except OSError:
        return 0


@pytest.mark.parametrize("kill_seed", [1, 2, 3])
def test_kill_9_then_resume_is_identical(kill_seed, tmp_path, reference):
    rng = random.Random(kill_seed)
    after_chunks = rng.randint(0, N_CHUNKS // 2)  # leave chunks to do (the vehicle arm is fast)
    extra_s = rng.uniform(0.0, 0.1)
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "imiqsim.cli",
        "trial",
        *ARMS,
        "-n",
        str(PATIENTS),
        "--chunk-size",
        str(CHUNK),
        "--seed",
        str(SEED),
        "--followup-years",
        "0",
        "--stream",
        "--out",
        str(out),
    ]
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while (
        proc.poll() is None and _journal_lines(out) < after_chunks and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    time.sleep(extra_s)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL  # killed part-way, not finished
    assert res_skipped_ok(out)
    res = run_streaming(
        ARMS,
        patients=PATIENTS,
        seed=SEED,
        out_dir=out,
        chunk_size=CHUNK,
        workers=1,
        followup_years=0.0,
        resume=True,
    )
    assert res.chunks_computed + res.chunks_skipped == N_CHUNKS
    pd.testing.assert_frame_equal(read_outcomes(out), read_outcomes(reference.out_dir))
    assert res.summary == reference.summary
    assert not list(out.rglob("*.tmp-*"))
