"""Trial design as scenario data in the outcomes: lesion multiplicity, assessment, follow-up."""

from __future__ import annotations

import pytest

from imiqsim.model import get_model
from imiqsim.model.lesions import N_SLOTS
from imiqsim.scenario import load_preset
from imiqsim.trial import endpoint, endpoints, run_trial, simulate_chunk
from imiqsim.trial.outcomes import output_grid
from imiqsim.vocabulary import HOURS_PER_YEAR

MODEL = get_model()


@pytest.fixture(scope="module")
def many_lesions():
    """ak-5pct enrolling 20 visible AKs each: more lesions than slots."""
    sc = load_preset("ak-5pct").with_overrides(
        population={"visible_lesions": [20, 20], "subclinical_lesions_mean": 4.0}
    )
    return simulate_chunk(sc, 5, 0, 12, 0.0)["outcomes"]


def test_lesion_level_columns_count_lesions_not_slots(many_lesions):
    df = many_lesions
    assert (df["status"] == 0).all()
    # 20 lesions share at most 12 slots; each slot counts the lesions it stands for
    assert (df["baseline_visible_lesion_count"] == 20).all()
    assert (df["baseline_visible_lesions"] == 20).all()  # the model's own observable agrees
    assert df["baseline_subclinical_lesion_count"].mean() > 2
    assert (df["baseline_visible_lesion_count"] > N_SLOTS).all()
    cleared = df["visible_lesions_cleared"]
    assert (cleared <= 20).all() and (cleared > 0).any()
    # a complete clearer cleared every one of its 20 lesions
    cc = df["complete_clearance"].astype(bool)
    assert (cleared[cc] == 20).all()
    lcr = endpoint("lesion_complete_response").compute(df)
    assert lcr["n"] == 20 * len(df) and lcr["k"] == int(cleared.sum())


def test_assessment_method_chooses_the_assessed_clearance():
    sc = load_preset("sbcc-5pct").with_overrides(assessment={"method": "clinical"})
    clin = simulate_chunk(sc, 3, 0, 30, 0.0)["outcomes"]
    hist = simulate_chunk(sc.with_overrides(assessment={"method": "histological"}), 3, 0, 30, 0.0)
    comp = simulate_chunk(sc.with_overrides(assessment={"method": "composite"}), 3, 0, 30, 0.0)
    h, c = hist["outcomes"], comp["outcomes"]
    assert (clin["assessed_clearance"] == clin["complete_clearance"]).all()
    assert (h["assessed_clearance"] == h["histological_clearance"]).all()
    assert (c["assessed_clearance"] == c["composite_clearance"]).all()
    # the same patients: only the rule differs, and histology is the stricter one
    assert (h["complete_clearance"] == clin["complete_clearance"]).all()
    assert h["assessed_clearance"].sum() <= clin["assessed_clearance"].sum()
    assert (h["assessed_lesions_cleared"] <= clin["assessed_lesions_cleared"]).all()


def test_primary_endpoint_follows_the_level():
    lesion = load_preset("ak-cryo")  # Thai 2004: lesion complete response
    assert lesion.assessment.primary_endpoint == "assessed_lesion_clearance"
    sc = lesion.with_overrides(assessment={"level": "patient"})
    assert sc.assessment.primary_endpoint == "assessed_clearance"
    df = simulate_chunk(lesion, 2, 0, 10, 0.0)["outcomes"]
    ep = endpoints(df)
    # clinical, lesion level: the Thai 2004 lesion complete response
    assert ep["assessed_lesion_clearance"] == ep["lesion_complete_response"]


def test_recurrence_follow_up_extends_the_horizon():
    sc = load_preset("ak-5pct")
    t0, ta = output_grid(sc, 0.0)
    fu = sc.with_overrides(assessment={"recurrence_after_months": [16, 30]})
    t1, ta1 = output_grid(fu, 0.0)
    assert ta1 == ta and t0[-1] < ta + HOURS_PER_YEAR
    assert t1[-1] >= ta + 30 * HOURS_PER_YEAR / 12 - 1e-6
    # a longer follow-up asked for by the run is kept
    t2, _ = output_grid(fu, 5.0)
    assert t2[-1] >= ta + 5 * HOURS_PER_YEAR - 1e-6


@pytest.fixture(scope="module")
def followed():
    tr = run_trial(["ak-5pct-followup16"], patients=60, seed=4, followup_years=0.0)
    return tr


def test_recurrence_16mo_is_computed_among_clearers(followed):
    arm = followed.arms[0]
    df = arm.outcomes
    cc = df["complete_clearance"].astype(bool)
    r = df["recurrence_16mo"]
    assert r[~cc].isna().all() and r[cc].notna().all()  # only clearers count, all followed
    ep = arm.endpoints["recurrence_16mo"]
    assert ep["n"] == int(cc.sum()) > 5
    assert ep["k"] == int(r[cc].sum())
    s = arm.endpoints["sustained_clearance_16mo"]
    assert s["n"] == len(df) and s["k"] == int((cc & (r == 0)).sum())
    summary = followed.to_dict()["arms"][0]["endpoints"]
    assert summary["recurrence_16mo"]["n"] == ep["n"]  # in the JSON summary too
    # without follow-up nobody counts
    short = run_trial(["ak-5pct"], patients=8, seed=4, followup_years=0.0).arms[0]
    assert short.endpoints["recurrence_16mo"]["n"] == 0
    # nor does sustained clearance (not a 0% share of the non-clearers alone)
    assert short.endpoints["sustained_clearance_16mo"]["n"] == 0


def test_other_follow_up_months_get_their_own_endpoints():
    sc = load_preset("ak-5pct").with_overrides(assessment={"recurrence_after_months": [6, 16]})
    tr = run_trial([sc, sc], patients=20, seed=2, followup_years=0.0)
    eps = tr.arms[0].endpoints
    assert {"recurrence_6mo", "sustained_clearance_6mo", "recurrence_16mo"} <= set(eps)
    df = tr.arms[0].outcomes
    cc = df["complete_clearance"].astype(bool)
    assert eps["recurrence_6mo"]["n"] == int(cc.sum())
    assert endpoint("recurrence_6mo").denominator.startswith("complete clearers followed 6")
    diff = tr.to_dict()["differences"][0]["endpoints"]
    if eps["recurrence_6mo"]["n"]:
        assert diff["recurrence_6mo"]["value"] == 0.0  # the same patients in both arms
    with pytest.raises(Exception, match="recurrence_<N>mo"):
        endpoint("recurrence_soon")


def test_follow_up_in_weeks_reuses_the_registered_12_week_column():
    arm = run_trial(["egw-5pct"], patients=40, seed=6, followup_years=0.0).arms[0]
    eps, df = arm.endpoints, arm.outcomes
    cc = df["complete_clearance"].astype(bool)
    assert eps["recurrence_12wk"]["n"] == int(cc.sum()) > 0  # followed without --followup-years
    assert list(eps).count("recurrence_12wk") == 1
    assert eps["sustained_clearance_12wk"]["n"] == len(df)
    assert endpoint("sustained_clearance_12wk").label == "Sustained clearance at 12 weeks"


@pytest.mark.xfail(
    strict=True,
    reason="model miss (NOTES-popn.md): imiquimod complete clearance does not fall with the "
    "AK count at entry (antigen-driven memory grows with the count); trials show a steep fall",
)
def test_complete_clearance_falls_with_the_lesion_count_at_entry():
    base = load_preset("ak-5pct")
    few = base.with_overrides(name="few", population={"visible_lesions": [5, 8]})
    many = base.with_overrides(name="many", population={"visible_lesions": [15, 20]})
    tr = run_trial([few, many], patients=300, seed=21, followup_years=0.0)
    a, b = (arm.endpoints["complete_clearance"] for arm in tr.arms)
    assert b["value"] < a["value"] - 0.1
    assert b["ci95"][1] < a["ci95"][0]


def test_vehicle_clearance_falls_with_the_lesion_count_at_entry():
    veh = load_preset("ak-5pct-vehicle")
    one = veh.with_overrides(name="one", population={"visible_lesions": [1, 1]})
    many = veh.with_overrides(name="many", population={"visible_lesions": [15, 20]})
    tr = run_trial([one, many], patients=300, seed=21, followup_years=0.0)
    a, b = (arm.endpoints["complete_clearance"] for arm in tr.arms)
    assert b["value"] < a["value"] / 2
    assert b["ci95"][1] < a["ci95"][0]
