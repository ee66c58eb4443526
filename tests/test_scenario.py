"""Tests for imiqsim.scenario: validation, TOML files and presets."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from pydantic import ValidationError

from imiqsim.errors import InputError
from imiqsim.regimen import HOURS_PER_WEEK, RegimenSpec
from imiqsim.scenario import (
    KNOCKOUTS,
    Scenario,
    list_presets,
    load_preset,
    load_scenario,
    resolve,
)

EXPECTED_PRESETS = {
    "ak-5pct",
    "ak-3.75pct",
    "ak-2.5pct",
    "sbcc-5pct",
    "egw-5pct",
    "egw-3.75pct",
}

#: presets that write one published trial arm (no vehicle twin of their own)
TRIAL_ARM_PRESETS = {
    "sbcc-5pct-3x12",
    "sbcc-5pct-5x12",
    "sbcc-5pct-qd12",
    "sbcc-5pct-bid12",
    "ak-5pct-followup16",
    "ak-5pct-3x16-followup16",
    "ak-cryo-3s",
    "ak-cryo-25s",
}

BASE: dict = {
    "name": "test",
    "indication": "sBCC",
    "site": "trunk",
    "product": "imiquimod-5%",
    "area_cm2": 4.0,
    "assessment_weeks_after_last_dose": 12,
    "regimen": {
        "applications_per_week": 5,
        "max_weeks": 6,
        "leave_on_hours": 8,
        "amount": {"sachets": 1},
    },
}


def make(**changes) -> dict:
    """BASE with top-level keys replaced and regimen keys merged (dotted 'regimen.x')."""
    d = copy.deepcopy(BASE)
    for k, v in changes.items():
        if k.startswith("regimen."):
            d["regimen"][k.split(".", 1)[1]] = v
        else:
            d[k] = v
    return d


# --------------------------------------------------------------------------- presets


def test_every_preset_loads():
    names = list_presets()
    assert EXPECTED_PRESETS | {n + "-vehicle" for n in EXPECTED_PRESETS} | {
        "ak-cryo",
        "egw-cryo",
        "ak-5fu",
    } | TRIAL_ARM_PRESETS == set(names)
    for name in names:
        sc = load_preset(name)
        assert isinstance(sc, Scenario)
        assert sc.name == name
        assert sc.is_vehicle == name.endswith("-vehicle")
        assert sc.description
        assert sc.warnings() == []
        assert sc.horizon_hours() > sc.treatment.last_dose_h()
        assert resolve(name) == sc


def test_vehicle_twins_match_schedule():
    for name in EXPECTED_PRESETS:
        a, v = load_preset(name), load_preset(name + "-vehicle")
        assert a.regimen == v.regimen
        assert (a.indication, a.site, a.area_cm2) == (v.indication, v.site, v.area_cm2)
        assert v.product == a.product.replace("imiquimod-", "vehicle-")


def test_preset_contents():
    ak = load_preset("ak-5pct")
    assert (ak.indication, ak.site, ak.area_cm2) == ("AK", "face", 25.0)
    assert ak.regimen.weekdays == ["mon", "thu"]
    assert ak.assessment_weeks_after_last_dose == 8
    assert ak.drug_mg_per_application() == pytest.approx(12.5)
    assert "Lebwohl" in ak.description
    sbcc = load_preset("sbcc-5pct")
    assert sbcc.assessment_weeks_after_last_dose == 12 and "Geisse" in sbcc.description
    egw = load_preset("egw-5pct")
    assert egw.regimen.until_clear and egw.regimen.max_weeks == 16
    assert "Edwards" in egw.description
    assert "Baker" in load_preset("egw-3.75pct").description
    assert "Swanson" in load_preset("ak-3.75pct").description


def test_default_horizon_covers_assessment():
    sc = load_preset("ak-5pct")
    expected = sc.events().last_application_h() + 8 * HOURS_PER_WEEK
    assert sc.horizon_hours() == pytest.approx(expected)
    assert sc.with_overrides(days=30).horizon_hours() == 720.0
    egw = load_preset("egw-5pct")  # 0-week assessment: still reach the final wash-off
    assert egw.horizon_hours() == pytest.approx(egw.events().end_h())


def test_unknown_preset_lists_names():
    with pytest.raises(InputError) as info:
        load_preset("ak-10pct")
    assert "ak-10pct" in str(info.value) and "ak-5pct" in str(info.value)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("data", "field", "value_text"),
    [
        (make(colour="blue"), "colour", "'blue'"),
        (make(**{"regimen.leave_on_minutes": 480}), "regimen.leave_on_minutes", "480"),
        (
            make(regimen={**BASE["regimen"], "amount": {"sachets": 1, "tubes": 2}}),
            "regimen.amount.tubes",
            "2",
        ),
        (make(area_cm2="large"), "area_cm2", "'large'"),
        (make(area_cm2="25"), "area_cm2", "'25'"),
        (make(**{"regimen.max_weeks": "six"}), "regimen.max_weeks", "'six'"),
        (make(**{"regimen.until_clear": "yes"}), "regimen.until_clear", "'yes'"),
        (make(area_cm2=0), "area_cm2", "0"),
        (make(area_cm2=-3.0), "area_cm2", "-3.0"),
        (make(**{"regimen.leave_on_hours": 30}), "regimen.leave_on_hours", "30"),
        (
            make(regimen={**BASE["regimen"], "amount": {"sachets": 11}}),
            "regimen.amount.sachets",
            "11",
        ),
        (make(site="face"), "site", "'face'"),
        (make(lesion_type="nodular"), "lesion_type", "'nodular'"),
        (make(lesion_type="melanoma"), "lesion_type", "'melanoma'"),
        (make(lesion_type="infiltrative"), "lesion_type", "'infiltrative'"),
        (make(product="imiquimod-7%"), "product", "'imiquimod-7%'"),
        (make(knockouts=["tlr7", "tlr9"]), "knockouts", "'tlr9'"),
        (make(indication="psoriasis"), "indication", "'psoriasis'"),
        (make(site="elbow"), "site", "'elbow'"),
        (make(parameters={"ec50": float("nan")}), "parameters.ec50", "nan"),
        (make(parameters={"ec50": "1"}), "parameters.ec50", "'1'"),
        (make(days=5000), "days", "5000"),
    ],
)
def test_bad_input_names_field_and_value(data, field, value_text):
    with pytest.raises(InputError) as info:
        Scenario(**data)
    msg = str(info.value)
    assert info.value.field == field
    assert msg.startswith(f"{field}: got ")
    assert value_text in msg


def test_missing_key_is_named():
    data = make()
    del data["area_cm2"]
    with pytest.raises(InputError, match=r"^area_cm2: got nothing; this key is required"):
        Scenario(**data)


def test_allowed_text_is_helpful():
    with pytest.raises(InputError, match="allowed keys: .*leave_on_hours"):
        Scenario(**make(**{"regimen.leave_on": 8}))
    with pytest.raises(InputError, match="must be a number"):
        Scenario(**make(area_cm2="large"))
    with pytest.raises(InputError, match="must be > 0"):
        Scenario(**make(area_cm2=0))
    with pytest.raises(InputError, match="must be <= 24"):
        Scenario(**make(**{"regimen.leave_on_hours": 30}))
    with pytest.raises(InputError, match="allowed: imiquimod-5%.*vehicle-2.5%"):
        Scenario(**make(product="aldara"))
    with pytest.raises(InputError, match="allowed: " + ", ".join(KNOCKOUTS)):
        Scenario(**make(knockouts=["b_cell"]))
    with pytest.raises(InputError, match="off-label.*trunk, neck and extremities"):
        Scenario(**make(site="face"))
    with pytest.raises(InputError, match="off-label.*not nodular"):
        Scenario(**make(lesion_type="nodular"))
    with pytest.raises(InputError, match=r"11x the label maximum.*at most 10x"):
        Scenario(**make(regimen={**BASE["regimen"], "amount": {"sachets": 11}}))


def test_other_off_label_uses():
    ak = load_preset("ak-5pct").model_dump()
    with pytest.raises(InputError, match="^site: got 'genital'; off-label"):
        Scenario(**{**ak, "site": "genital"})
    egw = load_preset("egw-5pct").model_dump()
    with pytest.raises(InputError, match="^site: got 'face'; off-label"):
        Scenario(**{**egw, "site": "face"})
    with pytest.raises(InputError, match="^product: got 'imiquimod-2.5%'; off-label"):
        Scenario(
            **make(
                product="imiquimod-2.5%",
                regimen={**BASE["regimen"], "amount": {"pump_actuations": 1}},
            )
        )
    with pytest.raises(InputError, match="^lesion_type: "):
        Scenario(**{**ak, "lesion_type": "nodular"})  # meaningless outside sBCC


@pytest.mark.parametrize(
    "change",
    [
        {"site": "face"},
        {"site": "genital"},
        {"lesion_type": "nodular"},
        {"lesion_type": "melanoma"},
    ],
)
def test_off_label_ok_turns_refusal_into_warning(change):
    sc = Scenario(**make(off_label_ok=True, **change))
    (field,) = change
    warnings = sc.warnings()
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{field} = ") and "off-label" in warnings[0]


def test_dose_between_label_and_10x_warns():
    sc = Scenario(**make(regimen={**BASE["regimen"], "amount": {"sachets": 6}}))
    (w,) = sc.warnings()
    assert "6x the label maximum" in w and "75 mg imiquimod" in w
    assert Scenario(**make(regimen={**BASE["regimen"], "amount": {"sachets": 10}}))
    assert Scenario(**make()).warnings() == []


def test_numpy_numbers_accepted():
    np = pytest.importorskip("numpy")
    sc = Scenario(
        **make(
            area_cm2=np.float64(4.0),
            parameters={"x": np.float32(2.0)},
            **{"regimen.applications_per_week": np.int64(5)},
        )
    )
    assert sc.regimen.applications_per_week == 5 and sc.parameters == {"x": 2.0}


def test_frozen_and_with_overrides():
    sc = load_preset("ak-5pct")
    with pytest.raises(ValidationError):  # pydantic refuses assignment to a frozen model
        sc.area_cm2 = 10.0  # type: ignore[misc]
    sc2 = sc.with_overrides(area_cm2=50.0, knockouts=["tlr7"])
    assert sc2.area_cm2 == 50.0 and sc2.knockouts == ["tlr7"] and sc.area_cm2 == 25.0
    sc3 = sc.with_overrides(regimen={"leave_on_hours": 6, "applications_per_week": 3})
    assert sc3.regimen.leave_on_hours == 6 and sc3.regimen.weekdays is None
    assert sc3.events().n_applications == 48
    sc4 = sc.with_overrides(**{"regimen.amount.cream_mg": 100.0, "parameters.ec50": 2.0})
    assert sc4.regimen.amount.cream_mg_total() == 100.0 and sc4.parameters == {"ec50": 2.0}
    with pytest.raises(InputError, match="^area_cm2: got -1"):
        sc.with_overrides(area_cm2=-1)
    with pytest.raises(InputError, match="^regimen.leave_on_hours: got 30"):
        sc.with_overrides(regimen={"leave_on_hours": 30})
    assert isinstance(sc.regimen, RegimenSpec)


# --------------------------------------------------------------------------- files


def test_load_scenario_file(tmp_path: Path):
    f = tmp_path / "my-ak.toml"
    f.write_text(
        'indication = "AK"\nsite = "scalp"\nproduct = "imiquimod-5%"\narea_cm2 = 25\n'
        '[regimen]\nweekdays = ["tue", "fri"]\nmax_weeks = 16\nleave_on_hours = 8\n'
        "amount = { sachets = 1 }\n"
    )
    sc = load_scenario(f)
    assert sc.name == "my-ak" and sc.site == "scalp"
    assert sc.events().n_applications == 32
    assert resolve(str(f)) == sc


def test_toml_syntax_error_mentions_file_and_line(tmp_path: Path):
    f = tmp_path / "broken.toml"
    f.write_text('name = "x"\nindication = "AK\nsite = "face"\n')
    with pytest.raises(InputError) as info:
        load_scenario(f)
    msg = str(info.value)
    assert "broken.toml" in msg and "line 2" in msg


def test_validation_error_in_file_names_field_and_file(tmp_path: Path):
    f = tmp_path / "bad.toml"
    f.write_text(
        'indication = "sBCC"\nsite = "trunk"\nproduct = "imiquimod-5%"\narea_cm2 = 4\n'
        "[regimen]\napplications_per_week = 5\nmax_weeks = 6\nleave_on_hours = 30\n"
        "amount = { sachets = 1 }\n"
    )
    with pytest.raises(InputError) as info:
        load_scenario(f)
    assert info.value.field == "regimen.leave_on_hours"
    assert "30" in str(info.value) and "bad.toml" in str(info.value)


def test_missing_file_and_unknown_name(tmp_path: Path):
    with pytest.raises(InputError, match="an existing .toml file or a preset name"):
        load_scenario(tmp_path / "nope.toml")
    with pytest.raises(InputError, match="nope.toml"):
        resolve(str(tmp_path / "nope.toml"))
    with pytest.raises(InputError, match="ak-5pct"):
        resolve("no-such-preset")


def test_model_parameters_is_the_one_scenario_to_parameters_path():
    from imiqsim.model import get_model
    from imiqsim.scenario import load_preset

    m = get_model()
    idx = m.parameter_index
    for name, strength in [
        ("ak-5pct", 0.05),
        ("ak-3.75pct", 0.0375),
        ("ak-2.5pct", 0.025),
        ("ak-5pct-vehicle", 0.0),
        ("ak-cryo", 0.0),
    ]:
        sc = load_preset(name)
        p = sc.model_parameters(m)
        assert p[idx("cream_strength")] == strength, name
        assert p[idx("treated_area_cm2")] == sc.area_cm2
    # explicit overrides win over the scenario, extra knockouts add to the scenario's
    p = load_preset("ak-5pct").model_parameters(m, {"cream_strength": 0.01}, ["tlr7"])
    assert p[idx("cream_strength")] == 0.01 and p[idx("tlr7_expression")] == 0.0


# --------------------------------------------------------------------------- [population]


@pytest.mark.parametrize(
    "table, field, words",
    [
        ({"visible_lesions": [5]}, "population.visible_lesions", "[min, max]"),
        ({"visible_lesions": [8, 5]}, "population.visible_lesions", "min <= max"),
        ({"visible_lesions": [0, 5]}, "population.visible_lesions", "1 <= min"),
        ({"visible_lesions": [5, 500]}, "population.visible_lesions", "<= 100"),
        ({"visible_lesions": [5, 7.5]}, "population.visible_lesions[1]", "integer"),
        ({"visible_lesions": "5-20"}, "population.visible_lesions", "list"),
        ({"subclinical_lesions_mean": -1.0}, "population.subclinical_lesions_mean", ">= 0"),
        ({"female_fraction": 1.2}, "population.female_fraction", "<= 1"),
        ({"female_fraction": "half"}, "population.female_fraction", "number"),
        ({"immunosuppressed_fraction": -0.1}, "population.immunosuppressed_fraction", ">= 0"),
        ({"age_mean": 10.0}, "population.age_mean", ">= 18"),
        ({"age_sd": 40.0}, "population.age_sd", "<= 30"),
        ({"visible": [5, 20]}, "population.visible", "visible_lesions, subclinical"),
    ],
)
def test_bad_population_keys_name_the_field(table, field, words):
    with pytest.raises(InputError) as ei:
        Scenario(**make(population=table))
    assert ei.value.field == field
    assert words in str(ei.value)


def test_population_table_overrides_the_indication_row():
    sc = Scenario(**make(population={"visible_lesions": [2, 3], "female_fraction": 0.9}))
    rule = sc.enrolment()
    assert (rule.visible_law, rule.visible_a, rule.visible_b) == ("uniform", 2.0, 3.0)
    assert rule.female_fraction == 0.9
    default = Scenario(**make()).enrolment()
    assert default.visible_law == "fixed" and default.female_fraction == 0.4  # sBCC row
    assert rule.age_mean == default.age_mean  # keys not given keep the row's values
    assert "2-3 visible lesions at entry" in sc.describe()


# --------------------------------------------------------------------------- [assessment]


@pytest.mark.parametrize(
    "table, field, words",
    [
        ({"method": "biopsy"}, "assessment.method", "'clinical', 'histological' or 'composite'"),
        ({"level": "arm"}, "assessment.level", "'patient' or 'lesion'"),
        ({"recurrence_after_months": [16, 0]}, "assessment.recurrence_after_months[1]", "1 to"),
        ({"recurrence_after_months": [200]}, "assessment.recurrence_after_months[0]", "120"),
        ({"recurrence_after_months": [12, 12]}, "assessment.recurrence_after_months", "once"),
        ({"recurrence_after_months": [1.5]}, "assessment.recurrence_after_months[0]", "integer"),
        ({"recurrence_after_weeks": [0]}, "assessment.recurrence_after_weeks[0]", "weeks"),
        ({"weeks_after_last_dose": 4}, "assessment.weeks_after_last_dose", "once"),
        ({"recurrence": [16]}, "assessment.recurrence", "method, level"),
    ],
)
def test_bad_assessment_keys_name_the_field(table, field, words):
    with pytest.raises(InputError) as ei:
        Scenario(**make(assessment=table))
    assert ei.value.field == field
    assert words in str(ei.value)


def test_assessment_visit_in_the_table_equals_the_top_level_key():
    top = Scenario(**make())
    d = make(assessment={"weeks_after_last_dose": 12, "method": "composite"})
    del d["assessment_weeks_after_last_dose"]
    table = Scenario(**d)
    assert table.assessment_weeks_after_last_dose == 12.0
    assert table.assessment_time_h() == top.assessment_time_h()
    assert table.assessment.method == "composite" and top.assessment.method == "clinical"
    for bad in (-1, 300, "6", True):
        d["assessment"] = {"weeks_after_last_dose": bad}
        with pytest.raises(InputError, match="0 to 260") as ei:
            Scenario(**d)
        assert ei.value.field == "assessment.weeks_after_last_dose"
    # a dump (the visit at the top level) loads back as the same scenario
    assert Scenario(**table.model_dump()) == table


def test_recurrence_follow_up_columns_and_horizon():
    sc = Scenario(
        **make(assessment={"recurrence_after_months": [24, 16], "recurrence_after_weeks": [12]})
    )
    assert sc.assessment.recurrence_after_months == [16, 24]
    cols = sc.assessment.recurrence_columns
    assert list(cols) == ["recurrence_12wk", "recurrence_16mo", "recurrence_24mo"]
    assert cols["recurrence_12wk"] == 12 * HOURS_PER_WEEK
    assert sc.assessment.max_recurrence_h() == pytest.approx(2 * 8766.0)
    assert "recurrence looked for 12 weeks, 16 months, 24 months" in sc.describe()


_GOOD_FILE = """
name = "swanson-like"
indication = "AK"
site = "face"
product = "imiquimod-3.75%"
area_cm2 = 200.0

[population]
visible_lesions = [5, 20]

[assessment]
weeks_after_last_dose = 8
method = "clinical"
level = "patient"
recurrence_after_months = [16]

[regimen]
applications_per_week = 7
cycle_on_weeks = 2
cycle_off_weeks = 2
max_weeks = 6
leave_on_hours = 8
amount = { pump_actuations = 2 }
"""


def test_a_published_trial_as_a_scenario_file(tmp_path):
    p = tmp_path / "trial.toml"
    p.write_text(_GOOD_FILE)
    sc = load_scenario(p)
    ref = load_preset("ak-3.75pct")
    assert sc.enrolment() == ref.enrolment()
    assert sc.assessment_time_h() == ref.assessment_time_h()
    assert sc.assessment.recurrence_after_months == [16]


@pytest.mark.parametrize(
    "change, field",
    [
        (("visible_lesions = [5, 20]", "visible_lesions = [20, 5]"), "population.visible_lesions"),
        (("visible_lesions = [5, 20]", "female_fraction = 2.0"), "population.female_fraction"),
        (('method = "clinical"', 'method = "palpation"'), "assessment.method"),
        (('level = "patient"', 'level = "field"'), "assessment.level"),
        (("recurrence_after_months = [16]", "recurrence_after_months = [-3]"), "assessment"),
    ],
)
def test_bad_design_keys_in_a_file_exit_2_from_the_cli(tmp_path, capsys, change, field):
    from imiqsim.cli import main

    p = tmp_path / "bad.toml"
    p.write_text(_GOOD_FILE.replace(*change))
    code = main(["population", str(p), "--patients", "2", "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert field in err and "got" in err
    assert "Traceback" not in err


def test_trial_arm_presets_match_their_published_designs():
    for name, every in (("3x12", 3), ("5x12", 5), ("qd12", 7), ("bid12", 7)):
        sc = load_preset(f"sbcc-5pct-{name}")  # Geisse 2002, 12 weeks, histology 6 weeks later
        assert sc.regimen.max_weeks == 12 and len(sc.regimen.dosing_weekdays) == every
        assert sc.assessment.method == "histological" and sc.assessment_weeks_after_last_dose == 6
        assert "Geisse" in sc.description
    assert load_preset("sbcc-5pct-bid12").events().n_applications == 12 * 14
    assert load_preset("sbcc-5pct-qd12").events().n_applications == 12 * 7
    for name in ("ak-5pct-followup16", "ak-5pct-3x16-followup16"):
        sc = load_preset(name)  # Lee 2005: clearers followed 16 months after the 8-week visit
        assert sc.assessment.recurrence_after_months == [16] and "Lee" in sc.description
        assert sc.area_cm2 == 25.0 and sc.enrolment().visible_b == 8
    assert load_preset("ak-5pct-3x16-followup16").events().n_applications == 48
    assert load_preset("ak-5pct-followup16").regimen == load_preset("ak-5pct").regimen
    for name in ("ak-3.75pct", "ak-2.5pct", "ak-3.75pct-vehicle", "ak-2.5pct-vehicle"):
        sc = load_preset(name)  # Swanson 2010: full face, 5-20 AKs, 2 weeks on/off/on
        assert sc.population.visible_lesions == [5, 20] and sc.area_cm2 == 200.0
        assert sc.assessment_weeks_after_last_dose == 8
        assert sc.events().n_applications == 28
    egw = load_preset("egw-3.75pct")  # Zyclara label: daily until clear, at most 8 weeks
    assert egw.regimen.until_clear and egw.regimen.max_weeks == 8
    assert load_preset("egw-5pct").assessment.recurrence_after_weeks == [12]  # Edwards 1998
    assert [load_preset(f"ak-cryo{s}").cryotherapy.freeze_seconds for s in ("-3s", "", "-25s")] == [
        3.0,
        10.0,
        25.0,
    ]
    assert load_preset("ak-cryo").assessment.primary_endpoint == "assessed_lesion_clearance"
    assert load_preset("sbcc-5pct").assessment.method == "composite"  # Geisse 2004
