"""Command-line glue of the calibration: argument checks and registration."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from imiqsim.calibration_cli import check_uncertainty, parse_stages, register
from imiqsim.errors import InputError


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def calibrate(rounds: int = 3):
        """The former coordinate-wise fit."""
        typer.echo("old")

    @app.command()
    def other():
        typer.echo("other")

    register(app)
    return app


def test_register_replaces_calibrate_and_adds_validate():
    app = _app()
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert names.count("calibrate") == 1 and "validate" in names and "other" in names
    res = CliRunner().invoke(app, ["calibrate", "--help"])
    assert (
        "--stages" in res.output and "--budget-minutes" in res.output and "--resume" in res.output
    )


@pytest.mark.parametrize(
    "args, field",
    [
        (["calibrate", "--stages", "100"], "--stages"),
        (["calibrate", "--stages", "5:3"], "--stages"),
        (["calibrate", "--budget-minutes", "0"], "--budget-minutes"),
        (["calibrate", "--workers", "0"], "--workers"),
        (["calibrate", "--popsize", "2"], "--popsize"),
        (["calibrate", "--gauss-newton-step", "1.5"], "--gauss-newton-step"),
        (["calibrate", "--resume", "--checkpoint-dir", "/nonexistent/x"], "--resume"),
        (["calibrate", "--only", "no_such_key"], "--only"),
        (["calibrate", "--fix", "no_such_parameter=1"], "parameters.no_such_parameter"),
        (["calibrate", "--fix", "erythema_half"], "--fix"),
        (["calibrate", "--fix", "erythema_half=abc"], "--fix erythema_half"),
        (["calibrate", "--fix", "nk_present=2"], "--fix nk_present"),  # parameter_bounds.csv
        (["calibrate", "--fix", "erythema_half@XYZ=0.2"], "--fix"),
        (["calibrate", "--fix", "erythema_half=0.2"], "--fix"),  # fitted in a joint fit
        (["calibrate", "--only", "erythema_half", "--posterior-only"], "--posterior-only"),
        (
            ["calibrate", "--only", "erythema_half", "--fix", "tlr7_ec50_ug_ml=3", "--write"],
            "--write",
        ),
        (["validate", "--patients", "5"], "--patients"),
        (["validate", "--resume", "--checkpoint", "/nonexistent/x.json"], "--resume"),
    ],
)
def test_bad_arguments_name_the_flag(args, field):
    res = CliRunner().invoke(_app(), args)
    assert isinstance(res.exception, InputError), res.output
    assert res.exception.field == field


def test_parse_stages_and_uncertainty_checks():
    assert parse_stages("100:18,300:2") == ((100, 18), (300, 2))
    with pytest.raises(InputError, match="PATIENTS:GENERATIONS"):
        parse_stages("100:x")
    assert check_uncertainty(0, 10) == 0 and check_uncertainty(5, 10) == 5
    for bad in (1, 201):
        with pytest.raises(InputError, match="2 to 200"):
            check_uncertainty(bad, 1000)
    with pytest.raises(InputError, match="one draw per patient"):
        check_uncertainty(20, 10)
    with pytest.raises(InputError, match="streamed"):
        check_uncertainty(4, 100, streamed=True)
