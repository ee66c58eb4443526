"""The command line: outputs, JSON shape, and exit code 2 for every user error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

from imiqsim.cli import main

REQUIRED = [
    "scenario",
    "lesion_burden_initial",
    "lesion_burden_final",
    "lesion_cleared",
    "time_to_clearance_days",
    "serum_cmax_ng_ml",
    "peak",
    "lsr_max",
    "flu_like_probability",
    "memory_t_cells_final",
]


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_json_has_the_summary(capsys):
    code, out, err = run(["simulate", "ak-5pct", "--json"], capsys)
    assert code == 0
    data = json.loads(out)  # stdout is exactly one JSON object
    for key in REQUIRED:
        assert key in data, key
    assert set(data["peak"]) == {"ifn_alpha", "tnf_alpha", "il1", "il6", "il8", "il12", "ifn_gamma"}
    assert 2 <= data["lsr_max"] <= 16  # a marked but not maximal reaction in the typical patient
    assert 0 <= data["flu_like_probability"] <= 1
    assert data["lesion_burden_final"] < data["lesion_burden_initial"]
    assert isinstance(data["lesion_cleared"], bool)
    assert "not a medical device" in data["disclaimer"]


def test_simulate_writes_netcdf_csv_png(tmp_path, capsys):
    code, out, err = run(
        [
            "simulate",
            "sbcc-5pct",
            "--days",
            "30",
            "--out",
            str(tmp_path),
            "--set",
            "tlr7_ec50_ug_ml=3",
            "--knockout",
            "memory",
        ],
        capsys,
    )
    assert code == 0, err
    ds = xr.open_dataset(tmp_path / "timecourse.nc", engine="h5netcdf")
    assert float(ds["time"].max()) == pytest.approx(30.0)
    assert ds["memory_t"].max() == 0.0
    ds.close()
    assert (tmp_path / "timecourse.csv").stat().st_size > 1000
    assert (tmp_path / "cascade.png").stat().st_size > 20_000
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["parameter_overrides"] == {"tlr7_ec50_ug_ml": 3.0}
    assert summary["knockouts"] == ["memory"]


@pytest.mark.parametrize(
    "argv, field",
    [
        (["simulate", "no-such-preset"], "scenario"),
        (["simulate", "ak-5pct", "--set", "nonexistent_param=1"], "nonexistent_param"),
        (["simulate", "ak-5pct", "--set", "tlr7_ec50_ug_ml"], "--set"),
        (["simulate", "ak-5pct", "--set", "tlr7_ec50_ug_ml=abc"], "tlr7_ec50_ug_ml"),
        (["simulate", "ak-5pct", "--set", "tlr7_ec50_ug_ml=-1"], "tlr7_ec50_ug_ml"),
        (["simulate", "ak-5pct", "--knockout", "spleen"], "knockout"),
        (["simulate", "ak-5pct", "--days", "0"], "days"),
        (["simulate", "ak-5pct", "--days", "abc"], "days"),
        (["parameters", "--module", "liver"], "--module"),
    ],
)
def test_user_errors_exit_2_and_name_the_field(argv, field, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert field in err
    assert "Traceback" not in err


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "scenario.toml"
    p.write_text(text)
    return p


BASE = """
name = "my-ak"
indication = "AK"
site = "face"
product = "imiquimod-5%"
area_cm2 = 25
assessment_weeks_after_last_dose = 8
[regimen]
applications_per_week = 2
max_weeks = 16
leave_on_hours = 8
[regimen.amount]
sachets = 1
"""


def test_scenario_file_runs(tmp_path, capsys):
    code, out, err = run(
        ["simulate", str(_write(tmp_path, BASE)), "--days", "10", "--json"], capsys
    )
    assert code == 0, err
    assert json.loads(out)["scenario"] == "my-ak"


@pytest.mark.parametrize(
    "change, field",
    [
        (("area_cm2 = 25", "area_cm2 = 0"), "area_cm2"),
        (("leave_on_hours = 8", "leave_on_hours = 30"), "leave_on_hours"),
        (("sachets = 1", "sachets = 11"), "amount"),
        (('site = "face"', 'site = "face"\ncolour = "blue"'), "colour"),
        (("area_cm2 = 25", 'area_cm2 = "big"'), "area_cm2"),
        (('indication = "AK"', 'indication = "sBCC"'), "site"),
    ],
)
def test_bad_scenario_files_exit_2(tmp_path, capsys, change, field):
    text = BASE.replace(*change)
    code, out, err = run(["simulate", str(_write(tmp_path, text))], capsys)
    assert code == 2, err
    assert field in err
    assert "Traceback" not in err


def test_off_label_bcc_types_refused(tmp_path, capsys):
    text = BASE.replace('indication = "AK"', 'indication = "sBCC"').replace(
        'site = "face"', 'site = "trunk"'
    )
    for lesion in ("nodular", "melanoma"):
        # top-level keys must precede the [regimen] table in TOML
        code, out, err = run(
            ["simulate", str(_write(tmp_path, f'lesion_type = "{lesion}"\n' + text))], capsys
        )
        assert code == 2
        assert "off-label" in err and lesion in err


def test_console_script_no_traceback():
    """The installed entry point maps user errors to exit 2 without a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "imiqsim.cli", "simulate", "ak-5pct", "--days", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "days" in proc.stderr and "Traceback" not in proc.stderr


def test_presets_lists_all_with_words(capsys):
    code, out, err = run(["presets", "--json"], capsys)
    rows = json.loads(out)
    names = {r["name"] for r in rows}
    for n in ("ak-5pct", "ak-3.75pct", "ak-2.5pct", "sbcc-5pct", "egw-5pct", "egw-3.75pct"):
        assert n in names and n + "-vehicle" in names
    ak = next(r for r in rows if r["name"] == "ak-5pct")
    assert "2x/week" in ak["regimen"] and "16 weeks" in ak["regimen"]


def test_equations_listing_is_generated(capsys):
    code, out, err = run(["equations"], capsys)
    assert code == 0
    assert "d`ifn_alpha`/dt" in out and "hill(skin_unbound_fraction * skin_conc_ug_ml" in out


def test_field_cli_writes_maps_and_refuses_bad_resolution(tmp_path, capsys):
    code = main(
        [
            "field",
            "ak-5pct",
            "--resolution-mm",
            "5",
            "--followup-days",
            "0",
            "--out",
            str(tmp_path),
            "--no-gif",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (tmp_path / "field_maps.nc").exists() and (
        tmp_path / "field_key_days.png"
    ).stat().st_size > 10_000
    code = main(["field", "ak-5pct", "--resolution-mm", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "resolution_mm" in err and "Traceback" not in err


def test_help_reads_the_model_vocabulary_and_the_one_disclaimer(capsys):
    from imiqsim.model import KNOCKOUTS
    from imiqsim.vocabulary import DISCLAIMER_SHORT

    code, out, err = run(["--help"], capsys)
    assert code == 0 and DISCLAIMER_SHORT in " ".join(out.lower().split())
    code, out, err = run(["simulate", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0
    for name in KNOCKOUTS:
        assert name in text, name


def test_a_failing_cascade_keeps_the_data_and_says_so(tmp_path, capsys, monkeypatch):
    import imiqsim.outputs.patient_figures as figures

    def boom(*args, **kwargs):
        raise RuntimeError("no display")

    monkeypatch.setattr(figures, "plot_cascade", boom)
    code, out, err = run(["simulate", "ak-5pct", "--days", "3", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "could not draw" in err and "no display" in err and "Traceback" not in err
    for name in ("timecourse.nc", "timecourse.csv", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert not (tmp_path / "cascade.png").exists()
    assert "cascade.png" not in out


def test_compare_writes_html_and_json(tmp_path, capsys):
    from imiqsim.vocabulary import DISCLAIMER

    argv = ["compare", "ak-5pct", "ak-cryo", "--patients", "8", "--workers", "1"]
    argv += ["--followup-years", "0.1", "--out", str(tmp_path), "--json"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    data = json.loads(out)
    names = [Path(p).name for p in data["files"]]
    assert names[-2:] == ["comparison.html", "comparison.json"]
    written = json.loads((tmp_path / "comparison.json").read_text())
    assert written["rows"] == data["rows"] and "not a medical device" in written["disclaimer"]
    page = (tmp_path / "comparison.html").read_text()
    assert "ak-5pct vs ak-cryo" in page and DISCLAIMER in page


def test_field_figure_failure_keeps_the_maps(tmp_path, capsys, monkeypatch):
    import imiqsim.outputs.field as field_outputs

    def boom(*args, **kwargs):
        raise RuntimeError("no colour map")

    monkeypatch.setattr(field_outputs, "plot_key_days", boom)
    argv = ["field", "ak-5pct", "--resolution-mm", "5", "--followup-days", "0"]
    code, out, err = run([*argv, "--out", str(tmp_path), "--no-gif"], capsys)
    assert code == 0, err
    assert "could not draw" in err and "no colour map" in err and "Traceback" not in err
    for name in ("field_maps.nc", "field_timecourses.nc", "field_lesions.csv"):
        assert (tmp_path / name).stat().st_size > 0 and f"wrote {tmp_path / name}" in out
    assert not (tmp_path / "field_key_days.png").exists() and "key_days" not in out
