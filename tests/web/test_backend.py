"""The dashboard's adapter: form editing, validation messages equal to the CLI's, job results."""

from __future__ import annotations

import json

import pytest

import imiqsim
from imiqsim.cli import main
from imiqsim.errors import InputError
from imiqsim.web import backend


def test_an_untouched_form_gives_back_the_preset():
    sc = backend.load_scenario_named("ak-5pct")
    assert backend.edit_scenario(sc, backend.regimen_form(sc)) is sc
    assert sc.regimen.weekdays == ["mon", "thu"]  # named weekdays kept, not re-spread


def test_form_changes_reach_the_scenario():
    sc = backend.load_scenario_named("ak-5pct")
    form = {**backend.regimen_form(sc), "applications_per_week": 3, "area_cm2": 50, "max_weeks": 8}
    edited = backend.edit_scenario(sc, form)
    assert edited.name == "ak-5pct-edited"
    assert edited.regimen.applications_per_week == 3
    assert edited.area_cm2 == 50.0
    assert edited.events().n_applications == 3 * 8


def test_cycles_and_repeat_courses():
    sc = backend.load_scenario_named("ak-5pct")
    form = {**backend.regimen_form(sc), "cycle_on_weeks": 2, "cycle_off_weeks": 2}
    edited = backend.edit_scenario(sc, {**form, "repeat_courses": 1})
    assert (edited.regimen.cycle_on_weeks, edited.regimen.cycle_off_weeks) == (2, 2)
    assert edited.regimen.repeat_check_weeks == backend.DEFAULT_REPEAT_CHECK_WEEKS
    assert edited.events().n_applications < sc.events().n_applications * 2


def test_bad_form_value_names_the_scenario_field():
    sc = backend.load_scenario_named("ak-5pct")
    with pytest.raises(InputError) as exc:
        backend.edit_scenario(sc, {**backend.regimen_form(sc), "leave_on_hours": 30.0})
    assert exc.value.field == "regimen.leave_on_hours"
    assert str(exc.value) == "regimen.leave_on_hours: got 30.0; must be <= 24"


def test_parameter_errors_equal_the_cli(capsys):
    assert main(["simulate", "ak-5pct", "--set", "tlr7_ec50_ug_ml=abc"]) == 2
    cli_line = capsys.readouterr().err.strip().removeprefix("error: ")
    with pytest.raises(InputError) as exc:
        backend.parse_parameters("tlr7_ec50_ug_ml=abc")
    assert str(exc.value) == cli_line
    sc = backend.load_scenario_named("ak-5pct")
    with pytest.raises(InputError, match=r"^parameters\.no_such: got 1\.0"):
        backend.check_patient_inputs(sc, {"no_such": 1.0}, [])
    with pytest.raises(InputError, match="^knockout: got .spleen.; one of"):
        backend.check_patient_inputs(sc, {}, ["spleen"])


def test_upload_errors_name_the_uploaded_file():
    with pytest.raises(InputError) as exc:
        backend.scenario_from_upload("mine.toml", b"name = 'x'\nindication = 'AK'\n[[")
    assert "mine.toml" in str(exc.value) and "/tmp" not in str(exc.value)
    with pytest.raises(InputError, match="a .toml scenario file"):
        backend.scenario_from_upload("mine.txt", b"")


def test_uploaded_scenario_loads_like_a_file(tmp_path):
    text = (
        'name = "my-ak"\nindication = "AK"\nsite = "scalp"\nproduct = "imiquimod-3.75%"\n'
        "area_cm2 = 50\n[regimen]\napplications_per_week = 3\nmax_weeks = 8\n"
        "leave_on_hours = 8\namount = { pump_actuations = 2 }\n"
    )
    path = tmp_path / "my.toml"
    path.write_text(text)
    up = backend.scenario_from_upload("my.toml", text.encode())
    assert up == imiqsim.load_scenario(path)


def test_patient_job_equals_simulate():
    sc = backend.load_scenario_named("sbcc-5pct")
    run = backend.run_patient_job(sc, {"tlr7_ec50_ug_ml": 3.0}, ["pdc"], "x")
    ref = imiqsim.simulate("sbcc-5pct", set={"tlr7_ec50_ug_ml": 3.0}, knockouts=["pdc"])
    assert run.summary_json == json.dumps(ref.summary)
    assert run.dose_days and run.dose_days[0] < 1.0
    files = backend.patient_files(run)
    assert json.loads(files["summary.json"]) == ref.summary
    assert files["timecourse.nc"][:4] == b"\x89HDF"


def test_model_tables():
    rows = backend.parameter_rows()
    assert {"name", "value", "unit", "source", "status"} <= set(rows[0])
    assert "tlr7_ec50_ug_ml" in {r["name"] for r in rows}
    assert backend.equations_markdown().startswith("# imiqsim model equations")
    assert backend.endpoint_label("complete_clearance") == "Complete clearance"


def test_cascade_figures_are_separate_roots_sharing_their_sources():
    # separate roots: one plot's axis resize re-lays out only that plot, not the grid
    from imiqsim.web import figures

    item = json.loads(figures.cascade_template())
    doc = item["doc"]
    roots = doc["roots"]
    assert [r["id"] for r in roots] == item["root_ids"]
    assert len(roots) == 8 and {r["name"] for r in roots} == {"Figure"}
    # one document: the slot sources and the shared time axis are defined once for all eight
    text = json.dumps(doc)
    for k in range(len(figures.SLOTS)):
        assert text.count(f'"name": "slot{k}"') == 1
