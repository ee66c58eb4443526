"""SBML export: validity, completeness, and a numerical round trip through libroadrunner.

The round trip integrates the exported document with libroadrunner (CVODE)
and the same patient and schedule with imiqsim's own engine, and compares
the trajectories. Relative differences are taken against
``max(|engine value|, floor)`` with ``floor = max(1e-6 * peak |engine value|
of that quantity over the run, 1e-12)``, so values that pass through (or sit
at) zero are compared on the scale of the quantity's own peak.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np
import pytest

from imiqsim.engine.run import run_batch
from imiqsim.export import parse_unit, sbml_errors, sbml_ids, to_sbml, write_sbml
from imiqsim.export.crosscheck import roadrunner_selections
from imiqsim.export.sbml import HELPER_PARAMETERS
from imiqsim.model import get_model

libsbml = pytest.importorskip("libsbml")

MODEL = get_model()
APPLY, WASH, CHECK = 1, 2, 3
HORIZON_H = 35 * 24.0
#: output grid between events (all events fall on whole hours), so both tools report
#: the same side of every discontinuity
T_OUT = np.arange(0.5, HORIZON_H, 1.0)
COMPARED = ("lesion_burden", "ifn_alpha", "serum_conc_ng_ml", "lsr_score")
REL_TOL = 1e-4


@dataclass
class Events:
    """Minimal stand-in for :class:`imiqsim.regimen.DoseEvents` (the arrays the engine reads)."""

    times_h: np.ndarray
    kinds: np.ndarray
    amounts_mg: np.ndarray
    gates: np.ndarray


def make_events(rows: list[tuple[float, int, float, int]]) -> Events:
    """Events from ``(time_h, kind, amount_mg, gate)`` rows, sorted by time then kind."""
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    t, k, a, g = zip(*rows, strict=True)
    return Events(
        np.array(t, float), np.array(k, np.int64), np.array(a, float), np.array(g, np.int64)
    )


def twice_weekly(
    amount_mg: float = 12.5, weeks: int = 4, gate: int = 0
) -> list[tuple[float, int, float, int]]:
    """Mon and Thu 22:00 applications (day 0 is a Monday), washed off 8 h later."""
    rows = []
    for w in range(weeks):
        for day in (0, 3):
            t = 168.0 * w + 24.0 * day + 22.0
            rows += [(t, APPLY, amount_mg, gate), (t + 8.0, WASH, 0.0, 0)]
    return rows


def typical_p(**kw) -> np.ndarray:
    return MODEL.parameter_vector("AK", "face", 25.0, **kw)


def engine_run(p: np.ndarray, events: Events):
    res = run_batch(MODEL, p, events, T_OUT, rtol=1e-9, atol_factor=1e-12)
    assert res.status[0] == 0
    return res


def engine_series(res, name: str) -> np.ndarray:
    if name in MODEL.state_names:
        return res.Y[0, :, MODEL.state_index(name)]
    return res.observables[0, :, MODEL.observable_index(name)]


def roadrunner_run(sbml: str, names: list[str]) -> dict[str, np.ndarray]:
    roadrunner = pytest.importorskip("roadrunner")
    rr = roadrunner.RoadRunner(sbml)
    rr.setIntegrator("cvode")
    it = rr.integrator
    # CVODE's non-stiff (Adams) mode: libroadrunner's BDF mode stalls right after the first
    # dose (CV_TOO_MUCH_WORK at any tolerance), while the system is not stiff (the engine
    # integrates it with an explicit Dormand-Prince method).
    it.stiff = False
    it.relative_tolerance = 1e-10
    it.absolute_tolerance = 1e-14
    it.maximum_time_step = 1.0
    it.maximum_num_steps = 1_000_000
    rr.timeCourseSelections = ["time", *roadrunner_selections(sbml, names)]
    out = np.asarray(rr.simulate(times=[0.0, *T_OUT.tolist()]))[1:]
    np.testing.assert_allclose(out[:, 0], T_OUT, rtol=0, atol=1e-9)
    return {n: out[:, j + 1] for j, n in enumerate(names)}


def max_rel_diff(x: np.ndarray, ref: np.ndarray) -> float:
    floor = max(1e-6 * float(np.max(np.abs(ref))), 1e-12)
    return float(np.max(np.abs(x - ref) / np.maximum(np.abs(ref), floor)))


# ----------------------------------------------------------------------------- document


@pytest.fixture(scope="module")
def typical_case():
    p = typical_p()
    ev = make_events(twice_weekly())
    return p, ev, to_sbml(MODEL, p, ev, notes="test document")


def test_document_passes_libsbml_consistency_checks(typical_case):
    p, ev, text = typical_case
    assert sbml_errors(text) == []  # every check category, units included
    doc = libsbml.readSBMLFromString(text)
    assert (doc.getLevel(), doc.getVersion()) == (3, 2)
    # the piecewise rendering of the same expressions is valid too
    assert sbml_errors(to_sbml(MODEL, p, ev, piecewise=True)) == []


def test_every_model_element_appears_by_id(typical_case):
    _, ev, text = typical_case
    m = libsbml.readSBMLFromString(text).getModel()
    assert sbml_ids(MODEL) == {n: n for n in sbml_ids(MODEL)}  # model names are valid SBML ids
    species = {s.getId() for s in m.getListOfSpecies()}
    params = {p.getId(): p for p in m.getListOfParameters()}
    reactions = {r.getId() for r in m.getListOfReactions()}
    assert species == set(MODEL.state_names)
    conversion = {p for p in params if p.startswith("extent_in_")}
    assert conversion == {"extent_in_mg", "extent_in_pg", "extent_in_cells"}
    assert (
        set(params)
        == set(MODEL.parameter_names)
        | set(MODEL.observable_names)
        | set(HELPER_PARAMETERS)
        | conversion
    )
    assert reactions == {r.name for r in MODEL.reactions}
    for name in MODEL.parameter_names:
        assert params[name].getConstant()
    rules = {r.getVariable(): r for r in m.getListOfRules()}
    assert set(rules) == set(MODEL.observable_names)
    assert rules["lesion_burden"].isAssignment()
    assert not params["lesion_burden"].getConstant()
    assert m.getTimeUnits() == "hour"
    assert m.getUnitDefinition("hour").getUnit(0).getMultiplier() == 3600.0
    # one SBML event per distinct dose-event time and the round-off event, with the required
    # trigger flags
    assert m.getNumEvents() == np.unique(ev.times_h).size + 1
    cleanup = m.getEvent("roundoff_cleanup")
    assert {a.getVariable() for a in cleanup.getListOfEventAssignments()} == set(
        MODEL.state_names
    ) | {"roundoff_cleanups"}
    for e in m.getListOfEvents():
        assert e.getUseValuesFromTriggerTime() and not e.isSetDelay()
        assert e.getTrigger().getPersistent() and not e.getTrigger().getInitialValue()
    for r in m.getListOfReactions():
        assert not r.getReversible()


def test_species_initial_values_and_initial_assignments(typical_case):
    p, _, text = typical_case
    m = libsbml.readSBMLFromString(text).getModel()
    pv = dict(zip(MODEL.parameter_names, p, strict=True))
    sp = m.getSpecies("ifn_alpha")  # a concentration (pg/mL) in the skin tissue
    assert not sp.getHasOnlySubstanceUnits() and not sp.getBoundaryCondition()
    assert sp.getInitialConcentration() == pv["ifn_alpha_baseline"]
    ia = m.getInitialAssignmentBySymbol("ifn_alpha")
    assert libsbml.formulaToL3String(ia.getMath()) == "ifn_alpha_baseline"
    assert m.getSpecies("lesion_1").getInitialAmount() == pv["lesion_initial_cells_1"]
    assert m.getSpecies("lesion_1").getHasOnlySubstanceUnits()  # cells per lesion: an amount
    assert m.getSpecies("film").getInitialAmount() == 0.0


def test_units_and_provenance_in_notes(typical_case):
    _, _, text = typical_case
    m = libsbml.readSBMLFromString(text).getModel()
    q = MODEL.parameters[0]
    notes = m.getParameter(q.name).getNotesString()
    for s in (q.unit, q.status, q.description, q.source):
        assert escape(s) in notes
    assert "status" in notes and "source" in notes
    # compound unit with "per"
    factor, kinds = parse_unit("pg/mL/h per cell/mm2")
    assert factor == pytest.approx(1e-12 / 1e-3 / 3600 * 1e-6)
    assert kinds == {"gram": 1, "item": -1, "litre": -1, "metre": 2, "second": -1}
    assert parse_unit("cells/mm2") == (pytest.approx(1e6), {"item": 1, "metre": -2})
    assert parse_unit("0-18") == (1.0, {})
    assert parse_unit("furlongs/fortnight") is None
    ud = m.getUnitDefinition("pg_per_mL_per_h_per_cell_per_mm2")
    assert ud is not None and ud.getName() == "pg/mL/h per cell/mm2"
    sp = m.getSpecies("ifn_alpha")
    assert (sp.getSubstanceUnits(), sp.getCompartment()) == ("pg", "skin_tissue")
    assert m.getCompartment("skin_tissue").getUnits() == "mL"
    assert m.getParameter("lsr_score").getUnits() == "dimensionless"


def test_unparseable_unit_is_refused_naming_the_field():
    bad = dataclasses.replace(MODEL.parameters[0], unit="furlongs/fortnight")
    model = dataclasses.replace(MODEL, parameters=(bad, *MODEL.parameters[1:]))
    with pytest.raises(ValueError, match=f"parameter {bad.name}.*'furlongs'.*allowed tokens"):
        to_sbml(model)


def test_write_sbml(tmp_path):
    path = write_sbml(tmp_path / "imiqsim.xml", MODEL)
    text = path.read_text(encoding="utf-8")
    assert sbml_errors(text) == []
    assert libsbml.readSBMLFromString(text).getModel().getNumEvents() == 0


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="parameter_values"):
        to_sbml(MODEL, np.ones(3))
    ev = make_events(twice_weekly())
    ev.times_h = ev.times_h[::-1].copy()
    with pytest.raises(ValueError, match="non-decreasing"):
        to_sbml(MODEL, None, ev)


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize(
    "case",
    ["typical", "tlr7-knockout", "vehicle"],
)
def test_round_trip_matches_engine(case, typical_case):
    if case == "typical":
        p, ev, text = typical_case
    elif case == "tlr7-knockout":
        p, ev = typical_p(knockouts=["tlr7"]), make_events(twice_weekly())
        text = to_sbml(MODEL, p, ev)
    else:
        p, ev = typical_p(), make_events(twice_weekly(amount_mg=0.0))
        text = to_sbml(MODEL, p, ev)
    names = [*COMPARED, "applied", "washed_off", "applications_given"]
    rr = roadrunner_run(text, names)
    res = engine_run(p, ev)
    diffs = {n: max_rel_diff(rr[n], engine_series(res, n)) for n in COMPARED}
    assert max(diffs.values()) < REL_TOL, diffs
    assert rr["applications_given"][-1] == res.applications_given[0]
    np.testing.assert_allclose(rr["applied"], engine_series(res, "applied"), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        rr["washed_off"], engine_series(res, "washed_off"), rtol=1e-6, atol=1e-9
    )
    if case == "tlr7-knockout":
        base = MODEL.parameter("ifn_alpha_baseline").value
        np.testing.assert_allclose(rr["ifn_alpha"], base, rtol=1e-9)


def test_gates_and_rest_rule_give_the_same_applications():
    # one lesion just above the visibility threshold: cleared after a few applications, then
    # it regrows and is visible again, so "until clear" must keep skipping (once stopped,
    # always stopped) while a gate-2 apply after a CHECK that finds it visible is given.
    over = {f"lesion_initial_cells_{i}": 0.0 for i in range(2, 15)}
    over["lesion_initial_cells_1"] = 5300.0
    # a lesion the drug clears after one application, and no memory control, so that it regrows
    over["lesion_immune_susceptibility"] = 80.0
    over["k_memory_kill"] = 0.0
    over["baseline_surveillance"] = 0.0  # nor background control (its value is calibrated)
    # and no adaptive arm that outlasts the drug (IFN-gamma, antigen retention): the test is
    # about the gates, not about sustained killing
    over["ifn_gamma_present"] = 0.0
    over["t_retention_max"] = 0.0
    over["lesion_growth_rate"] = 0.008
    over["skin_unbound_fraction"] = 0.2  # a strong drug signal: the lesion clears within days
    p = typical_p(overrides=over)
    rows = twice_weekly(weeks=5, gate=1)
    rows += [(300.0, CHECK, 0.0, 0), (310.0, APPLY, 12.5, 2), (318.0, WASH, 0.0, 0)]
    rows += [(700.0, CHECK, 0.0, 0), (710.0, APPLY, 12.5, 2), (718.0, WASH, 0.0, 0)]
    rows += [(800.0, APPLY, 1.0, 0), (800.0, WASH, 0.0, 0)]  # same time: APPLY then WASH
    ev = make_events(rows)
    res = engine_run(p, ev)
    visible = engine_series(res, "visible_lesions")
    # the scenario exercises what it should
    assert visible[0] >= 0.5 and visible[np.searchsorted(T_OUT, 300.0)] < 0.5
    assert visible[np.searchsorted(T_OUT, 694.0)] >= 0.5  # visible again at a later gate-1 apply
    assert 0 < res.applications_given[0] < np.count_nonzero(ev.kinds == APPLY)

    names = [
        "applied",
        "washed_off",
        "film",
        "applications_given",
        "lesion_burden",
        "until_clear_stopped",
        "not_clear_at_check",
    ]
    rr = roadrunner_run(to_sbml(MODEL, p, ev), names)
    np.testing.assert_array_equal(rr["applied"], engine_series(res, "applied"))
    assert (
        rr["applied"][-1] == 12.5 + 12.5 + 1.0
    )  # 1 gate-1 (clear after it), the gate-2 at 710, the 800 one
    assert rr["applications_given"][-1] == res.applications_given[0] == 3
    assert rr["until_clear_stopped"][-1] == 1.0 and rr["not_clear_at_check"][-1] == 1.0
    np.testing.assert_allclose(
        rr["washed_off"], engine_series(res, "washed_off"), rtol=1e-6, atol=1e-9
    )
    assert max_rel_diff(rr["lesion_burden"], engine_series(res, "lesion_burden")) < REL_TOL

    # rest rule: a low LSR threshold makes the typical patient skip some applications (with a
    # strong drug signal: the tabled free fraction gives a peak LSR of 2.0 over 16 weeks)
    p = typical_p(overrides={"lsr_rest_threshold": 4.0, "skin_unbound_fraction": 0.2})
    ev = make_events(twice_weekly())
    res = engine_run(p, ev)
    assert res.doses_skipped_for_rest[0] > 0 and res.applications_given[0] > 0
    rr = roadrunner_run(
        to_sbml(MODEL, p, ev),
        ["applied", "applications_given", "applications_skipped_for_rest", "lsr_score"],
    )
    np.testing.assert_array_equal(rr["applied"], engine_series(res, "applied"))
    assert rr["applications_given"][-1] == res.applications_given[0]
    assert rr["applications_skipped_for_rest"][-1] == res.doses_skipped_for_rest[0]
    assert max_rel_diff(rr["lsr_score"], engine_series(res, "lsr_score")) < REL_TOL


def test_model_name_becomes_a_valid_id():
    m = libsbml.readSBMLFromString(to_sbml(MODEL, name="5pct ak-face.v1")).getModel()
    assert m.getId() == "_5pct_ak_face_v1" and m.getName() == "5pct ak-face.v1"


def test_roundoff_event_zeroes_only_negligible_states_after_each_dose_event():
    # a state holding round-off (1e-104, far below 1e-12 x scale) is set to 0 at the first dose
    # event; a state holding a small but resolved value (1e-6 x scale) keeps it
    from imiqsim.export.sbml import NEGLIGIBLE_FRACTION

    roadrunner = pytest.importorskip("roadrunner")
    p = typical_p()
    ev = make_events(twice_weekly(weeks=1))
    rr = roadrunner.RoadRunner(to_sbml(MODEL, p, ev))
    rr.integrator.stiff = False  # a 1e-104 initial value is what stalls BDF (see the module)
    damage = MODEL.states[MODEL.state_index("epidermal_damage")].scale
    rr.model["init(epidermal_damage)"] = 1e-104
    rr.model["init(crust)"] = 1e-6 * MODEL.states[MODEL.state_index("crust")].scale
    rr.reset()
    assert 1e-104 < NEGLIGIBLE_FRACTION * damage
    rr.timeCourseSelections = ["time", "epidermal_damage", "crust", "events_fired"]
    out = np.asarray(rr.simulate(times=[0.0, 21.9, 22.0 + 1e-9]))
    assert out[1, 1] > 0 and out[1, 2] > 0  # before the first dose: untouched
    assert out[2, 3] == 1.0  # the first dose event fired (and with it the round-off event)
    assert out[2, 1] < 1e-30 and out[2, 2] > 0.5 * out[1, 2]
