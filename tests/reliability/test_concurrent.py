"""Two runs into one directory at once: the second is refused (exit 2), the first is intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from imiqsim.cli import app

SRC = Path(__file__).resolve().parents[2] / "src"


def _start(argv: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.Popen(
        [sys.executable, "-m", "imiqsim.cli", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), proc.communicate()
    time.sleep(0.2)  # the lock is taken right after the file is opened


def test_second_in_memory_trial_into_the_same_directory_is_refused(tmp_path):
    out = tmp_path / "same"
    first = _start(
        [
            "trial",
            "sbcc-5pct",
            "-n",
            "40",
            "--seed",
            "5",
            "--followup-years",
            "0",
            "--out",
            str(out),
            "--json",
        ]
    )
    _wait_for(out / ".lock", first)
    second = CliRunner().invoke(
        app, ["trial", "sbcc-5pct", "-n", "4", "--seed", "6", "--out", str(out)]
    )
    assert second.exit_code == 2, second.stderr
    assert "another imiqsim run" in second.stderr and len(second.stderr.strip().splitlines()) == 1
    stdout, stderr = first.communicate(timeout=900)
    assert first.returncode == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 5 and summary["n_patients_per_arm"] == 40
    df = pd.read_parquet(out / "outcomes.parquet")
    assert len(df) == 40 and list(df["patient"]) == list(range(40))
    assert json.loads(stdout)["seed"] == 5


def test_second_streamed_run_into_a_running_streamed_directory_is_refused(tmp_path):
    out = tmp_path / "s"
    argv = [
        "trial",
        "sbcc-5pct",
        "-n",
        "12",
        "--chunk-size",
        "3",
        "--followup-years",
        "0",
        "--stream",
        "--out",
        str(out),
    ]
    first = _start([*argv, "--seed", "1"])
    _wait_for(out / "manifest.json", first)
    second = CliRunner().invoke(app, [*argv, "--seed", "1", "--resume"])
    assert second.exit_code == 2 and "another imiqsim run" in second.stderr
    _, stderr = first.communicate(timeout=900)
    assert first.returncode == 0, stderr
    assert json.loads((out / "summary.json").read_text())["arms"][0]["n"] == 12
