"""One exit-code policy: 0 done, 2 user error, 1 the run failed (traceback only with --debug),
130 interrupted; failed patients are counted and shown; an all-failed arm exits 1."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from imiqsim import scenario as scenario_module
from imiqsim.cli import app, main
from imiqsim.trial import outcomes

ARM = "sbcc-5pct"


def _fail_some(k: int | None):
    """simulate_chunk with the first ``k`` patients of each chunk marked failed (None: all)."""
    real = outcomes.simulate_chunk

    def chunk(*args, **kw):
        r = real(*args, **kw)
        df = r["outcomes"]
        n = len(df) if k is None else min(k, len(df))
        df.loc[df.index[:n], "status"] = 3
        return r

    return chunk


def test_some_failed_patients_are_counted_next_to_n(monkeypatch, tmp_path):
    monkeypatch.setattr(outcomes, "simulate_chunk", _fail_some(2))
    res = CliRunner().invoke(app, ["trial", ARM, "-n", "6", "--followup-years", "0"])
    assert res.exit_code == 0, res.stderr
    assert "6 (2 failed)" in res.stdout
    assert "2 of 6 patients of sbcc-5pct failed" in res.stdout
    res = CliRunner().invoke(app, ["trial", ARM, "-n", "6", "--followup-years", "0", "--json"])
    arm = json.loads(res.stdout)["arms"][0]
    assert (arm["n"], arm["failed_patients"]) == (6, 2)
    assert arm["endpoints"]["complete_clearance"]["n"] == 4  # percentages over the 4 that ran


def test_a_trial_where_every_patient_fails_exits_1(monkeypatch, tmp_path):
    monkeypatch.setattr(outcomes, "simulate_chunk", _fail_some(None))
    out = tmp_path / "o"
    res = CliRunner().invoke(
        app, ["trial", ARM, "-n", "3", "--followup-years", "0", "--out", str(out)]
    )
    assert res.exit_code == 1
    assert "every patient of arm sbcc-5pct failed" in res.stderr
    assert (out / "summary.json").is_file()  # what was written stays, and is complete
    assert json.loads((out / "summary.json").read_text())["arms"][0]["failed_patients"] == 3


def test_a_streamed_run_that_fails_exits_1_and_names_the_kept_chunks(monkeypatch, tmp_path):
    real = outcomes.simulate_chunk
    calls = []

    def flaky(*args, **kw):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("node lost")
        return real(*args, **kw)

    monkeypatch.setattr(outcomes, "simulate_chunk", flaky)
    out = tmp_path / "s"
    argv = ["trial", ARM, "-n", "4", "--chunk-size", "2", "--followup-years", "0", "--stream"]
    res = CliRunner().invoke(app, [*argv, "--out", str(out)])
    assert res.exit_code == 1
    assert "node lost" in res.stderr and "--resume" in res.stderr and str(out) in res.stderr
    assert "Traceback" not in res.stderr


def test_simulate_reports_its_status(monkeypatch):
    res = CliRunner().invoke(app, ["simulate", ARM, "--days", "2"])
    assert res.exit_code == 0 and "integration status: ok" in res.stdout
    # a patient whose integration fails: exit 1 with the solver's status in words
    from imiqsim import simulation
    from imiqsim.engine import run as engine_run

    real = engine_run.run_batch

    def failing(*args, **kw):
        r = real(*args, **kw)
        r.status[:] = 3
        return r

    monkeypatch.setattr(simulation, "run_batch", failing)
    res = CliRunner().invoke(app, ["simulate", ARM, "--days", "2"])
    assert res.exit_code == 1 and "integration failed" in res.stderr
    assert "Traceback" not in res.stderr


def test_an_absurd_but_allowed_override_warns(tmp_path):
    res = CliRunner().invoke(app, ["simulate", ARM, "--days", "1", "--set", "k_nk_kill=60"])
    assert res.exit_code == 0
    assert "warning: k_nk_kill=60 is 1e+04 times its tabled value" in res.stderr


def test_an_internal_error_exits_1_with_a_hint_and_the_traceback_only_with_debug(monkeypatch):
    def boom():
        raise RuntimeError("kaput")

    monkeypatch.setattr(scenario_module, "list_presets", boom)
    res = CliRunner().invoke(app, ["presets"])
    assert res.exit_code == 1
    assert "internal error: RuntimeError: kaput" in res.stderr and "--debug" in res.stderr
    assert "Traceback" not in res.stderr
    res = CliRunner().invoke(app, ["--debug", "presets"])
    assert res.exit_code == 1 and "Traceback" in res.stderr


def test_ctrl_c_exits_130(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(scenario_module, "list_presets", interrupted)
    assert main(["presets"]) == 130
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, code", [(["--version"], 0), (["--help"], 0), ([], 2), (["presets", "--json"], 0)]
)
def test_main_returns_the_exit_code(argv, code, capsys):
    assert main(argv) == code
