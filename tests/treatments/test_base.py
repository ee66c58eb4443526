"""Treatments as plug-ins: the protocol, the registry and the scenario's one treatment."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from imiqsim.errors import InputError
from imiqsim.model import get_model
from imiqsim.scenario import Scenario, list_presets, load_preset
from imiqsim.treatments import (
    Cryotherapy,
    Delivery,
    ImiquimodCream,
    Treatment,
    build_treatment,
    product_keys,
    treatment_class_for,
    treatment_classes,
    treatment_file_keys,
)
from imiqsim.vocabulary import APPLY, FREEZE, WASH

SRC = Path(__file__).resolve().parents[2] / "src" / "imiqsim"
REGIMEN = {
    "weekdays": ["mon", "thu"],
    "max_weeks": 16,
    "leave_on_hours": 8,
    "amount": {"sachets": 1},
}


def test_registry_lists_every_treatment_once():
    kinds = [c.kind for c in treatment_classes()]
    assert len(kinds) == len(set(kinds)) and {"imiquimod", "cryotherapy"} <= set(kinds)
    keys = product_keys()
    assert len(keys) == len(set(keys))
    for key in keys:
        cls = treatment_class_for(key)
        assert cls is not None and key in cls.product_keys()
    assert treatment_class_for("aldara") is None
    assert {"regimen", "cryotherapy"} <= set(treatment_file_keys())


def test_every_preset_holds_the_treatment_of_its_product():
    for name in list_presets():
        sc = load_preset(name)
        assert isinstance(sc.treatment, Treatment)
        assert type(sc.treatment) is treatment_class_for(sc.product)
        assert sc.events().end_h() > 0 and sc.treatment_text() == sc.treatment.describe()
        assert isinstance(sc.treatment.delivery(sc.area_cm2), Delivery)


def test_delivery_says_who_and_where():
    cream = load_preset("ak-5pct").treatment.delivery(25.0)
    assert (cream.applied_by, cream.setting, cream.directed) == ("patient", "at home", "field")
    assert cream.drug == "imiquimod" and cream.strength_pct == 5.0
    assert cream.drug_mg_per_application == pytest.approx(12.5)
    veh = load_preset("ak-5pct-vehicle").treatment.delivery(25.0)
    assert veh.drug == "none" and veh.strength_pct == 0.0 and veh.drug_mg_per_application == 0.0
    cryo = load_preset("ak-cryo").treatment.delivery(25.0)
    assert (cryo.applied_by, cryo.directed) == ("clinician", "lesion-directed")
    assert cryo.who_and_where() == "clinician, in clinic: each visible lesion plus a rim"


def test_direct_kill_tallies_are_model_direct_tallies():
    tallies = get_model().kill_tallies
    for cls in treatment_classes():
        for state in cls.direct_kill_tallies:
            assert tallies[state][1] == "direct", (cls.kind, state)
    assert Cryotherapy.direct_kill_tallies == ("killed_cryo",)
    assert ImiquimodCream.direct_kill_tallies == ()


def test_events_come_from_the_treatment():
    cream = load_preset("ak-5pct").events()
    assert set(np.unique(cream.kinds)) == {APPLY, WASH}
    cryo = load_preset("ak-cryo").events()
    assert set(np.unique(cryo.kinds)) == {FREEZE}
    assert load_preset("egw-5pct").treatment.stops_when_clear
    assert not load_preset("ak-cryo").treatment.stops_when_clear


def test_scenario_accepts_a_treatment_object_and_file_keys_alike():
    t = ImiquimodCream(product="imiquimod-5%", regimen=REGIMEN)
    common = {"name": "x", "indication": "AK", "site": "face", "area_cm2": 25.0}
    a = Scenario(treatment=t, **common)
    b = Scenario(product="imiquimod-5%", regimen=REGIMEN, **common)
    assert a == b and a.treatment == t
    with pytest.raises(InputError, match="not both"):
        Scenario(treatment=t, product="imiquimod-5%", **common)
    sc = load_preset("ak-5pct").with_overrides(
        treatment=Cryotherapy(product="cryotherapy", cryotherapy={"freeze_seconds": 5.0})
    )
    assert sc.treatment.kind == "cryotherapy" and sc.regimen is None
    assert sc.cryotherapy is not None and sc.cryotherapy.freeze_seconds == 5.0


def test_dump_is_the_file_format_and_loads_back():
    for name in ("ak-5pct", "ak-cryo"):
        sc = load_preset(name)
        d = sc.model_dump()
        assert "treatment" not in d and d["product"] == sc.product
        assert set(treatment_file_keys()) <= set(d)
        assert Scenario(**d) == sc
        assert Scenario.model_validate_json(sc.model_dump_json()) == sc


def test_treatment_errors_name_file_fields():
    with pytest.raises(InputError) as info:
        build_treatment({"product": "imiquimod-5%", "regimen": {**REGIMEN, "max_weeks": 99}})
    assert info.value.field == "regimen.max_weeks"
    with pytest.raises(InputError) as info:
        build_treatment({"product": "nope"})
    assert info.value.field == "product" and "cryotherapy" in info.value.allowed
    with pytest.raises(InputError) as info:
        ImiquimodCream(product="cryotherapy", regimen=REGIMEN)
    assert info.value.field == "product"


def test_model_parameters_zero_other_treatments_strengths():
    m = get_model()
    names = [n for cls in treatment_classes() for n in cls.strength_parameters]
    assert "cream_strength" in names
    for preset in ("ak-cryo", "ak-5pct-vehicle"):
        p = load_preset(preset).model_parameters(m)
        for n in names:
            assert p[m.parameter_index(n)] == 0.0, (preset, n)


def test_no_product_name_switches_outside_the_treatments():
    """Callers ask the treatment: no module but a treatment's own compares product names."""
    pattern = re.compile(r"""(product\s*==|==\s*["']cryotherapy["']|is_cryotherapy|CRYOTHERAPY)""")
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.parent.name == "treatments":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{i}: {line.strip()}")
    assert offenders == []
