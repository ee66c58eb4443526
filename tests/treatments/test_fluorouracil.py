"""5-fluorouracil 5% cream: the third treatment, a direct cytotoxic, built on the plug-in seams."""

from __future__ import annotations

import numpy as np
import pytest

import imiqsim
from imiqsim.compare import comparison_rows
from imiqsim.engine.run import run_batch
from imiqsim.errors import InputError
from imiqsim.model import get_model
from imiqsim.scenario import Scenario, load_preset
from imiqsim.treatments import FluorouracilCream
from imiqsim.trial import run_trial
from lesion_helpers import entry_burden

MODEL = get_model()
FU_STATES = [s.name for s in MODEL.states if s.module == "fluorouracil"]
ALL_IMMUNE = ["tlr7", "pdc", "macrophage", "dendritic", "nk", "cd8", "memory"]


def _tallies(ds) -> dict[str, float]:
    return {t: float(ds[t][-1]) for t in MODEL.kill_tallies}


def _share(ds, kind: str) -> float:
    tallies = _tallies(ds)
    total = sum(tallies.values())
    return sum(v for t, v in tallies.items() if MODEL.kill_tallies[t][1] == kind) / total


@pytest.fixture(scope="module")
def fu_patient():
    return imiqsim.simulate("ak-5fu")


def test_preset_is_a_twice_daily_four_week_course_assessed_with_ak_5pct():
    sc = load_preset("ak-5fu")
    assert isinstance(sc.treatment, FluorouracilCream)
    ev = sc.events()
    assert ev.n_applications == 56 and set(np.unique(ev.kinds)) == {
        MODEL.event_kind("APPLY_FLUOROURACIL"),
        MODEL.event_kind("WASH"),
    }
    assert sc.events().last_application_h() == pytest.approx(27 * 24 + 22)
    assert sc.assessment_time_h() == pytest.approx(load_preset("ak-5pct").assessment_time_h())
    assert sc.warnings() == [] and "not calibrated" in sc.description.lower()
    assert sc.drug_mg_per_application() == pytest.approx(5.0)


def test_kills_lesion_cells_directly_with_a_small_immune_share(fu_patient):
    ds = fu_patient.dataset
    initial, final = entry_burden(fu_patient)
    assert final < 0.01 * initial
    tallies = _tallies(ds)
    assert max(tallies, key=tallies.get) == "killed_fluorouracil"
    # Model: direct 0.74, immune 0.22 (0.77 / 0.19 with the rest threshold of 6.85 instead of 5.6:
    # the imiquimod-calibrated rest rule also pauses 5-FU, on 36 of 56 doses); a 10x smaller 5-FU
    # kill rate gives 0.12 / 0.78.
    assert _share(ds, "direct") > 2 / 3
    assert _share(ds, "immune") < 0.3
    imq = imiqsim.simulate("ak-5pct").dataset
    assert _share(imq, "immune") > 3 * _share(ds, "immune")


def test_erythema_and_lsr_are_intense(fu_patient):
    s = fu_patient.summary
    imq = imiqsim.simulate("ak-5pct").summary
    assert s["erythema_max"] >= 2.5  # severe erythema in the typical patient
    # model: 14.8 vs 12.9 for the typical imiquimod patient, whose reaction the joint refit made
    # stronger (erythema and rest thresholds fitted to Lebwohl 2004 and the label)
    assert s["lsr_max"] > 1.1 * imq["lsr_max"]
    assert s["doses_skipped_for_rest"] > 0  # so intense that the rest rule pauses dosing


def test_knocking_out_tlr7_or_the_immune_system_does_not_remove_the_effect(fu_patient):
    ref = float(fu_patient.dataset["killed_fluorouracil"][-1])
    tlr7 = imiqsim.simulate("ak-5fu", knockouts=["tlr7"])
    initial, final = entry_burden(tlr7)
    # every treated lesion is gone (below 1% of a lesion's visible size, and of the total)
    assert final < 0.01 * initial
    assert final < 0.01 * float(tlr7.dataset["visible_lesions"][0]) * 5000.0
    assert float(tlr7.dataset["killed_fluorouracil"][-1]) == pytest.approx(ref, rel=0.1)
    # without any immune effector the drug still kills most lesion cells during the course
    # (what is left regrows afterwards: nothing then keeps it in check). Model: 75% (78% with the
    # rest threshold of 6.85 instead of 5.6, 93% with 14.3: the rest rule pauses 5-FU on 36 of 56
    # doses); a 10x smaller 5-FU kill rate leaves more cells than at entry (103.5%).
    bare = imiqsim.simulate("ak-5fu", knockouts=ALL_IMMUNE).dataset
    end_of_course = int(np.searchsorted(bare["time"].values, 28.5))
    lb = bare["lesion_burden"].values
    assert lb[end_of_course] < 0.5 * lb[0]
    assert float(bare["killed_fluorouracil"][-1]) == pytest.approx(ref, rel=0.25)
    imq = imiqsim.simulate("ak-5pct", knockouts=ALL_IMMUNE).summary
    assert imq["lesion_burden_final"] > imq["lesion_burden_initial"]  # imiquimod needs them


def test_other_treatments_never_touch_the_5fu_stage():
    assert FU_STATES and "killed_fluorouracil" in FU_STATES
    for name in ("ak-5pct", "ak-5pct-vehicle", "ak-cryo"):
        ds = imiqsim.simulate(name).dataset
        for state in FU_STATES:
            assert float(np.abs(ds[state].values).max()) == 0.0, (name, state)
    veh = imiqsim.simulate("ak-5pct-vehicle").summary
    assert veh["lsr_max"] == 0.0


def test_5fu_mass_balance(fu_patient):
    ds = fu_patient.dataset
    total = sum(ds[s].values for s in ("fu_film", "fu_skin", "fu_cleared", "fu_washed_off"))
    applied = ds["fu_applied"].values
    assert applied[-1] == pytest.approx(5.0 * fu_patient.summary["applications_given"])
    np.testing.assert_allclose(total, applied, rtol=1e-6, atol=1e-9)
    # about 6% of the applied dose reaches the skin and is cleared from it (the label figure)
    assert 0.03 < float(ds["fu_cleared"][-1]) / applied[-1] < 0.08


def test_label_checks_of_the_5fu_product():
    sc = load_preset("ak-5fu")
    data = sc.model_dump()
    with pytest.raises(InputError, match=r"^product: got 'fluorouracil-5%'; off-label.*EGW"):
        Scenario(**{**data, "indication": "EGW", "site": "genital"})
    with pytest.raises(InputError, match=r"^site: got 'genital'; off-label"):
        Scenario(**{**data, "site": "genital"})
    sbcc = Scenario(**{**data, "indication": "sBCC", "site": "face"})  # no site limit for sBCC
    assert sbcc.warnings() == []
    with pytest.raises(InputError, match=r"^regimen.amount.cream_mg: got 3000.0; .*at most 10x"):
        sc.with_overrides(**{"regimen.amount.cream_mg": 3000.0})
    with pytest.raises(InputError, match="needs a \\[regimen\\] table"):
        Scenario(**{**data, "regimen": None})


def test_sbml_export_of_ak_5fu_matches_the_engine():
    roadrunner = pytest.importorskip("roadrunner")
    from imiqsim.export import to_sbml

    sc = load_preset("ak-5fu")
    p = sc.model_parameters(MODEL)
    ev = sc.events()
    t = np.arange(0.5, 35 * 24.0, 6.0)  # between events (all on whole hours)
    names = ["lesion_burden", "killed_fluorouracil", "fu_skin_conc_ug_ml", "lsr_score"]
    rr = roadrunner.RoadRunner(to_sbml(MODEL, p, ev, name="ak_5fu"))
    rr.setIntegrator("cvode")
    it = rr.integrator
    it.stiff = False  # as in tests/export/test_sbml.py: CVODE's Adams mode
    it.relative_tolerance = 1e-10
    it.absolute_tolerance = 1e-14
    it.maximum_time_step = 1.0
    it.maximum_num_steps = 1_000_000
    rr.timeCourseSelections = ["time", *names]
    out = np.asarray(rr.simulate(times=[0.0, *t.tolist()]))[1:]
    res = run_batch(MODEL, p[None, :], ev, t, rtol=1e-9, atol_factor=1e-12)
    assert res.status[0] == 0
    for j, name in enumerate(names, start=1):
        if name in MODEL.state_names:
            ref = res.Y[0, :, MODEL.state_index(name)]
        else:
            ref = res.observables[0, :, MODEL.observable_index(name)]
        floor = max(1e-6 * float(np.max(np.abs(ref))), 1e-12)
        rel = float(np.max(np.abs(out[:, j] - ref) / np.maximum(np.abs(ref), floor)))
        assert rel < 1e-3, (name, rel)


def test_compare_says_the_5fu_arm_is_uncalibrated():
    tr = run_trial(["ak-5pct", "ak-5fu"], patients=6, seed=2, followup_years=0.0, workers=1)
    rows = {r["feature"]: r for r in comparison_rows(tr)}
    assert rows["model calibration"]["ak-5fu"].startswith("NOT calibrated")
    assert "calibrated against" in rows["model calibration"]["ak-5pct"]
    assert "thymidylate synthase" in rows["mechanism"]["ak-5fu"]
    assert rows["field vs lesion-directed"]["ak-5fu"] == "field"
    assert rows["who applies it and where"]["ak-5fu"].startswith("patient, at home")
