"""The analysis commands: JSON on stdout, files under --out, exit code 2 for user errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import xarray as xr

from imiqsim.cli import main


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_scan_command_prints_json_and_writes_files(capsys, tmp_path):
    code, out, _ = run(
        [
            "scan",
            "sbcc-5pct",
            "--set",
            "weeks=4,6",
            "--patients",
            "6",
            "--json",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 0
    data = json.loads(out)
    assert data["factors"] == {"weeks": [4.0, 6.0]}
    assert len(data["points"]) == 2
    assert "common random numbers" in data["attrs"]["common_random_numbers"]
    assert (tmp_path / "scan.nc").exists() and (tmp_path / "scan.png").exists()


def test_sensitivity_command_table_and_files(capsys, tmp_path):
    code, out, _ = run(
        [
            "sensitivity",
            "sbcc-5pct",
            "--method",
            "morris",
            "--parameters",
            "tlr7_ec50_ug_ml,k_nk_kill",
            "--output",
            "complete_clearance,lsr_max",
            "--n",
            "2",
            "--patients",
            "4",
            "--trajectory",
            "lsr_score",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 0
    assert "strongest drivers" in out and "tlr7_ec50_ug_ml" in out
    ds = xr.load_dataset(tmp_path / "sensitivity.nc", engine="h5netcdf")
    assert set(ds["parameter"].values) == {"tlr7_ec50_ug_ml", "k_nk_kill"}
    assert ds["index_over_time"].dims == ("trajectory", "parameter", "time_days")
    for name in ("sensitivity.json", "sensitivity.csv", "sensitivity.png"):
        assert (tmp_path / name).exists(), name
    assert (tmp_path / "sensitivity_over_time.png").exists()
    assert "not a medical device" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["sensitivity", "ak-5pct", "--method", "sobol", "--n", "3"],
        ["sensitivity", "ak-5pct", "--range", "tlr7_ec50_ug_ml=5:1"],
        ["sensitivity", "ak-5pct", "--module", "nosuchstage"],
        ["scan", "ak-5pct", "--set", "weeks=oops"],
        ["scan", "no-such-preset", "--set", "weeks=4,6"],
        ["scan", "sbcc-5pct", "--set", "weeks=4,6", "--workers", "0"],
        ["optimise", "AK", "--limit", "severe_erythema=0.2"],
        ["optimise", "AK", "--space", "colour=1,2"],
    ],
)
def test_user_errors_exit_2_with_one_line(argv, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_help_does_not_import_the_analysis_libraries():
    code = (
        "import sys; from imiqsim.cli import app; "
        "print(any(m.split('.')[0] in ('SALib', 'optuna') for m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


def test_public_api_names_are_the_functions():
    import imiqsim
    from imiqsim.analysis.optimise import optimise
    from imiqsim.analysis.scan import scan
    from imiqsim.analysis.sensitivity import sensitivity

    for _ in range(2):  # also once the submodules of the same names are imported
        assert imiqsim.sensitivity is sensitivity
        assert imiqsim.scan is scan
        assert imiqsim.optimise is optimise


def test_analysis_out_is_checked_before_any_simulation(tmp_path):
    # a file where a directory is wanted: refused up front, exit 2, one line, nothing simulated
    from typer.testing import CliRunner

    from imiqsim.cli import app

    f = tmp_path / "a-file"
    f.write_text("keep me")
    for argv in (
        ["scan", "sbcc-5pct", "--set", "applications_per_week=3:5:2", "--patients", "10"],
        ["sensitivity", "sbcc-5pct", "--method", "morris", "--patients", "10"],
        ["optimise", "sBCC", "--trials", "2", "--patients", "10"],
    ):
        res = CliRunner().invoke(app, [*argv, "--out", str(f)])
        assert res.exit_code == 2, (argv, res.output)
        assert f.read_text() == "keep me"
