"""Parallel trials from a plain script, and on dask: a Client of one's own or a scheduler file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from imiqsim.cli import app
from imiqsim.trial import run_trial

ROOT = Path(__file__).resolve().parents[2]
ARMS = ["sbcc-5pct", "sbcc-5pct-vehicle"]
KW = dict(patients=8, seed=2, followup_years=0.0, chunk_size=3)


def readme_python_example() -> str:
    """The README's first Python example (section "A short tour" / "Python")."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = text[text.index("### Python") :]
    return re.search(r"```python\n(.*?)```", tour, re.S).group(1)


def test_the_readme_example_runs_as_a_plain_script_with_two_workers(tmp_path):
    code = readme_python_example()
    assert "workers=2" in code and "__main__" not in code
    # fewer patients than the README's 1000, so the test is quick; nothing else changes
    code = code.replace("patients=1000", "patients=6")
    code += (
        '\nprint("N", tr.arms[0].endpoints["complete_clearance"]["n"], len(tr.arms[0].outcomes))\n'
    )
    script = tmp_path / "api_test.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BrokenProcessPool" not in proc.stderr and "bootstrapping" not in proc.stderr
    assert re.search(r"^N \d+ 6$", proc.stdout, re.M), proc.stdout


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as c:
        yield c


def test_run_trial_on_a_client_of_ones_own(cluster):
    from distributed import Client

    ref = run_trial(ARMS, **KW)
    with Client(cluster) as client:
        tr = run_trial(ARMS, scheduler=client, **KW)
        assert client.status == "running"  # left open: it is the caller's
    for a, b in zip(tr.arms, ref.arms, strict=True):
        pd.testing.assert_frame_equal(a.outcomes, b.outcomes)
    assert tr.to_dict() == ref.to_dict()


def test_cli_trial_with_a_scheduler_file(cluster, tmp_path):
    sched = tmp_path / "scheduler.json"
    sched.write_text(json.dumps({"type": "Scheduler", "address": cluster.scheduler_address}))
    out = tmp_path / "run"
    argv = [
        "trial",
        *ARMS,
        "-n",
        "8",
        "--seed",
        "2",
        "--chunk-size",
        "3",
        "--followup-years",
        "0",
        "--scheduler-file",
        str(sched),
        "--out",
        str(out),
        "--json",
    ]
    res = CliRunner().invoke(app, argv)
    assert res.exit_code == 0, res.stderr
    ref = run_trial(ARMS, **KW).to_dict()
    got = json.loads(res.stdout)
    for a, b in zip(got["arms"], ref["arms"], strict=True):
        assert a["endpoints"]["complete_clearance"] == b["endpoints"]["complete_clearance"]


def test_a_bad_scheduler_object_is_an_input_error():
    from imiqsim.errors import InputError

    with pytest.raises(InputError) as e:
        run_trial(ARMS, scheduler=object(), **KW)
    assert e.value.field == "scheduler"
