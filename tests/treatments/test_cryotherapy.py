"""Cryotherapy comparator and the imiquimod-vs-cryotherapy comparison (issue 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import imiqsim
from imiqsim.cli import main
from imiqsim.scenario import load_preset
from imiqsim.trial import run_trial

ALL_IMMUNE = ["tlr7", "pdc", "macrophage", "dendritic", "nk", "cd8", "memory"]


def _freeze(seconds: float):
    sc = load_preset("ak-cryo")
    return sc.with_overrides(
        name=f"cryo-{seconds:g}s",
        cryotherapy=sc.cryotherapy.model_copy(update={"freeze_seconds": seconds}),
    )


def test_cryo_kills_without_any_immune_system_imiquimod_does_not():
    cryo = imiqsim.simulate("ak-cryo", knockouts=ALL_IMMUNE).summary
    assert cryo["lesion_burden_final"] < 0.5 * cryo["lesion_burden_initial"]
    ds = imiqsim.simulate("ak-cryo", knockouts=ALL_IMMUNE).dataset
    assert float(ds["killed_cryo"][-1]) > 0.5 * cryo["lesion_burden_initial"]
    imq = imiqsim.simulate("ak-5pct", knockouts=ALL_IMMUNE).summary
    veh = imiqsim.simulate("ak-5pct-vehicle", knockouts=ALL_IMMUNE).summary
    assert imq["lesion_burden_final"] == pytest.approx(veh["lesion_burden_final"], rel=1e-9)


def test_cryo_spares_subclinical_lesions_imiquimod_clears_them():
    tr = run_trial(
        ["ak-cryo", "ak-5pct", "ak-5pct-vehicle"], patients=60, seed=3, followup_years=0.0
    )
    sub = {a.name: a.endpoints["subclinical_cleared"]["value"] for a in tr.arms}
    assert sub["ak-5pct"] > sub["ak-cryo"] + 0.3
    # the freeze does not touch them: they fare like the untreated (vehicle) field, give or take
    # sampling
    assert abs(sub["ak-cryo"] - sub["ak-5pct-vehicle"]) < 0.2
    # freezing, not the immune system, does most of the killing in the cryotherapy arm; the cream
    # arm kills (through the immune system) many times what the untreated field loses
    kill = {a.name: a.endpoints["fraction_killed_by_immune"]["value"] for a in tr.arms}
    assert kill["ak-cryo"] < 0.5
    immune = {a.name: float(a.outcomes["killed_immune"].mean()) for a in tr.arms}
    assert immune["ak-5pct"] > 3 * immune["ak-5pct-vehicle"]


def test_freeze_time_response_is_monotonic():
    tr = run_trial(
        [_freeze(3), _freeze(10), _freeze(25), _freeze(50)], patients=60, seed=4, followup_years=0.0
    )
    lcr = [a.endpoints["lesion_complete_response"]["value"] for a in tr.arms]
    hypo = [a.endpoints["hypopigmentation"]["value"] for a in tr.arms]
    killed = [
        float(np.mean(a.outcomes["killed_direct"] / a.outcomes["lesion_burden_initial"]))
        for a in tr.arms
    ]
    assert lcr == sorted(lcr) and lcr[0] < lcr[-1]
    assert hypo == sorted(hypo) and hypo[0] < hypo[-1]
    assert killed == sorted(killed)


@pytest.mark.parametrize(
    "key, value, field",
    [
        ("freeze_seconds", 75.0, "freeze_seconds"),
        ("freeze_seconds", 0.0, "freeze_seconds"),
        ("sessions", -1, "sessions"),
        ("freeze_thaw_cycles", 9, "freeze_thaw_cycles"),
    ],
)
def test_bad_cryo_input_exit_2(tmp_path, capsys, key, value, field):
    text = (
        'name = "c"\nindication = "AK"\nsite = "face"\nproduct = "cryotherapy"\narea_cm2 = 25.0\n'
        "[cryotherapy]\nfreeze_seconds = 10.0\n"
    )
    text = (
        text.replace("freeze_seconds = 10.0\n", "") + f"{key} = {value}\n"
        if key != "freeze_seconds"
        else text.replace("freeze_seconds = 10.0", f"freeze_seconds = {value}")
    )
    if key != "freeze_seconds":
        text += "freeze_seconds = 10.0\n"
    p = tmp_path / "c.toml"
    p.write_text(text)
    code = main(["simulate", str(p)])
    err = capsys.readouterr().err
    assert code == 2
    assert field in err and "Traceback" not in err


def test_compare_json_has_arms_and_rows(capsys):
    code = main(["compare", "ak-5pct", "ak-cryo", "--patients", "30", "--json", "--workers", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out)
    names = [a["name"] for a in d["arms"]]
    assert names == ["ak-5pct", "ak-cryo"]
    for a in d["arms"]:
        for ep in (
            "complete_clearance",
            "lesion_complete_response",
            "subclinical_cleared",
            "histological_clearance",
            "sustained_clearance_12mo",
            "recurrence_12mo",
            "hypopigmentation",
            "scarring",
            "blistering",
        ):
            assert ep in a["endpoints"], ep
    features = [r["feature"] for r in d["rows"]]
    assert "mechanism" in features and "who applies it and where" in features
    assert all("ak-5pct" in r and "ak-cryo" in r for r in d["rows"])
    blister = next(r for r in d["rows"] if r["feature"] == "local: blistering")
    assert blister["ak-cryo"] != blister["ak-5pct"]


def test_sbml_export_reproduces_the_freeze():
    """The FREEZE event is exported from the same model expressions and matches libRoadRunner."""
    roadrunner = pytest.importorskip("roadrunner")
    from imiqsim.engine.run import run_batch
    from imiqsim.export.sbml import to_sbml
    from imiqsim.model import get_model

    m = get_model()
    sc = load_preset("ak-cryo")
    p = m.parameter_vector("AK", "face", 25.0)
    rr = roadrunner.RoadRunner(to_sbml(m, p, sc.events(), name="ak_cryo"))
    rr.setIntegrator("cvode")
    integ = rr.getIntegrator()
    integ.setValue("stiff", False)
    integ.setValue("relative_tolerance", 1e-10)
    integ.setValue("absolute_tolerance", 1e-14)
    integ.setValue("maximum_time_step", 1.0)
    t = np.concatenate([[0.0], np.arange(0.5, 24 * 30, 24.0)])
    rr.timeCourseSelections = ["time", "lesion_burden", "killed_cryo"]
    out = rr.simulate(times=list(t))
    res = run_batch(m, p[None, :], sc.events(), t, rtol=1e-10, atol_factor=1e-12)
    lb = res.observables[0, :, m.observable_index("lesion_burden")]
    assert np.max(np.abs(out[:, 1] - lb) / np.maximum(lb, 1.0)) < 1e-4
    assert out[-1, 2] > 0.5 * lb[0]  # most cells died by freezing
