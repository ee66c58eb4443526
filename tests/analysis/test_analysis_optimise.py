"""The regimen optimiser: a synthetic objective with a known optimum, and AK on the engine."""

from __future__ import annotations

import math

import pytest

from imiqsim.analysis.optimise import (
    optimise,
    outside_validated,
    parse_limit,
    parse_space,
    search_pareto,
    validated_range,
)
from imiqsim.errors import InputError
from imiqsim.scenario import resolve
from imiqsim.trial import run_trial


def test_search_finds_the_known_optimum_of_a_synthetic_objective():
    # efficacy grows with total drug (applications x weeks x strength); tolerability worsens with
    # weekly drug (applications x strength). Under tolerability <= 0.5 the unique optimum is
    # 7 applications a week of 2.5% for 16 weeks (7 x 2.5 = 17.5; 5 x 3.75 and 4 x 5 exceed it).
    def synthetic(p):
        weekly = p["applications_per_week"] * p["strength"]
        return {
            "efficacy": 1.0 - math.exp(-0.002 * weekly * p["weeks"]),
            "tolerability": weekly / 35.0,
        }

    space = [
        parse_space("applications_per_week=2..7"),
        parse_space("weeks=2..16"),
        parse_space("strength=2.5,3.75,5"),
    ]
    records, front = search_pareto(
        synthetic, space, "efficacy", [parse_limit("tolerability<=0.5")], n_trials=150, seed=5
    )
    best = max((records[i] for i in front), key=lambda r: r.metrics["efficacy"])
    assert best.point == {"applications_per_week": 7.0, "weeks": 16.0, "strength": 2.5}
    assert all(records[i].feasible for i in front)
    # the front trades efficacy for tolerability: sorted by one, the other is sorted too
    pts = sorted(
        (records[i].metrics["tolerability"], records[i].metrics["efficacy"]) for i in front
    )
    assert [e for _, e in pts] == sorted(e for _, e in pts)


def test_validated_range_is_the_span_of_the_targets_regimens():
    ak = validated_range("AK")
    assert ak["strength"] == (2.5, 5.0) and ak["applications_per_week"] == (2, 7)
    assert validated_range("sBCC")["applications_per_week"] == (3, 14)
    label = resolve("ak-5pct")
    assert outside_validated(label) == []
    off = label.with_overrides(regimen={"max_weeks": 20})
    assert outside_validated(off) == ["weeks 20 outside 6-16"]
    with pytest.raises(InputError):
        parse_limit("severe_erythema<0.2")


@pytest.mark.xfail(
    reason="after issue 10's refit no candidate of this 6-trial, 16-patient search meets the "
    "default tolerability limits, so the front is empty (README, Analysis)",
    strict=False,
)
def test_ak_front_label_point_matches_separate_trials(tmp_path):
    res = optimise(
        "AK",
        space=["applications_per_week=2..5", "weeks=8,16", "strength=3.75,5"],
        n_trials=6,
        patients=16,
        validate_patients=60,
        seed=3,
    )
    assert res.attrs["validate_seed"] == 4
    lab = res.label
    assert lab["applications_per_week"] == 2 and lab["weeks"] == 16 and lab["strength"] == 5
    # the label regimen was searched too (enqueued first)
    assert res.trials.iloc[0][["applications_per_week", "weeks", "strength"]].tolist() == [2, 16, 5]
    same = run_trial(["ak-5pct"], patients=60, seed=4, followup_years=0.0).arms[0].endpoints
    for m in ("complete_clearance", "severe_erythema", "rest_needed"):
        assert lab[m] == same[m]["value"] and [lab[f"{m}_low"], lab[f"{m}_high"]] == same[m]["ci95"]
    # an independent trial (other patients) agrees within its CI
    other = run_trial(["ak-5pct"], patients=60, seed=11, followup_years=0.0).arms[0].endpoints
    cc = other["complete_clearance"]
    assert cc["ci95"][0] <= lab["complete_clearance"] <= cc["ci95"][1]
    assert not res.front.empty
    assert set(res.front["validated"]) <= {True, False}
    text = res.report()
    assert "Research use only" in text and "Label regimen" in text
    names = {p.name for p in res.write(tmp_path)}
    assert names == {"optimise.json", "front.csv", "trials.csv", "report.md", "front.png"}
