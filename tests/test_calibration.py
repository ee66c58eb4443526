"""Every published row simulated at the current tables (300 patients per arm), and the report.

Criterion for every row: the fit's and the report's (:func:`imiqsim.calibrate.row_hit`: inside
the published 95% CI for rows with n; +/-0.10 without n; within 2-fold for PK; below an upper
bound), allowing for the simulation's own noise at 300 patients: a row passes when the simulated
95% CI overlaps the published CI or tolerance band. Rows the current model misses are listed in
MISSES with their size as measured by `imiqsim calibration-report --patients 1000 --seed 7`;
they are expected failures (reported by pytest as xfail, and as XPASS once the model meets them).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from imiqsim.calibrate import NO_N_TOLERANCE, PK_FOLD, Problem
from imiqsim.calibration_report import build_rows, pk_population, write_report

N = 300
SEED = 99  # neither the calibration seed (2024), the report's (7) nor validation's (11)
PROBLEM = Problem.from_package()

#: row -> measured miss of the current tables (before the joint fit; build_rows at 300 patients,
#: seed 99, the same as this file). Rerun after `imiqsim calibrate --write` and update.
MISSES: dict[str, str] = {
    "ak5-2x16-pc-veh": "4.3% vs CI 7.8-16.8%: too little spontaneous regression under vehicle",
    "pk-arms-cmax": "0.61 vs 1.6 ng/mL (2.6-fold low): the model is dose-linear across sites",
    "ak375-2wk-cc": "13.0% vs CI 28.2-43.6%: short cycles under-predicted",
    "ak25-2wk-cc": "7.7% vs CI 23.6-38.4%: short cycles under-predicted",
    "ak-2wk-cc-veh": "0.3% vs CI 3.1-11.3%: too little spontaneous regression under vehicle",
    "ak375-2wk-pc": "23.0% vs CI 51.3-67.1%: short cycles under-predicted",
    "ak25-2wk-pc": "18.0% vs CI 40.2-56.2%: short cycles under-predicted",
    "ak375-2wk-median-red": "27.3% vs CI 75.0-87.5%: short cycles under-predicted",
    "sbcc5-3x12-histo": "81.0% vs CI 32.5-70.6%: 3x/week for 12 weeks over-predicted",
    "ak5-2x16-recur-16mo": "0.0% vs CI 29.2-56.8%: almost no recurrence after clearance",
    "ak5-3x16-recur-16mo": "0.6% vs CI 15.6-35.8%: almost no recurrence after clearance",
}


@pytest.fixture(scope="module")
def rows():
    return {r.id: r for r in build_rows(patients=N, seed=SEED)}


def _band(r) -> tuple[float, float]:
    if r.likelihood == "binomial":
        return r.published_ci
    if r.likelihood == "absolute":
        return (r.published - NO_N_TOLERANCE, r.published + NO_N_TOLERANCE)
    if r.likelihood == "fold":
        return (r.published / PK_FOLD, r.published * PK_FOLD)
    return (0.0, r.published)


def _marks(rid: str):
    if rid in MISSES:
        return [pytest.mark.xfail(reason=f"known miss: {MISSES[rid]}", strict=False)]
    return []


@pytest.mark.parametrize("rid", [pytest.param(r.id, marks=_marks(r.id)) for r in PROBLEM.rows])
def test_row_within_tolerance(rid, rows):
    r = rows[rid]
    assert r.simulated is not None and np.isfinite(r.simulated), rid
    lo, hi = _band(r)
    slo, shi = r.simulated_ci or (r.simulated, r.simulated)
    assert slo <= hi and shi >= lo, (
        f"{rid}: simulated {r.simulated:.3g} ({slo:.3g}-{shi:.3g}) vs allowed {lo:.3g}-{hi:.3g}"
    )


def test_report_lists_every_row_starred_with_independence_marks(rows, tmp_path):
    path = write_report(list(rows.values()), tmp_path, patients=N, seed=SEED)
    page = path.read_text()
    body = re.findall(r"<tr class='(hit|miss|not)'><td>([^<]+)</td>", page)
    assert len(body) == 34
    ids = [label.split(" ")[0] for _, label in body]
    assert ids == [r.id for r in PROBLEM.rows]
    assert all(" *" in label for _, label in body)  # the joint fit: every row is fitted
    marked = {label.split(" ")[0] for _, label in body if "(n.i.)" in label}
    assert marked == {"sbcc5-5x6-histo", "cryo-ak-lesion-cr-gt5s"}
    n_hit = sum(1 for r in rows.values() if r.hit)
    assert f"<b>{n_hit} of 34 rows inside" in page
    assert (tmp_path / "calibration_forest.png").read_bytes()[:4] == b"\x89PNG"


def test_pk_population_keeps_its_shape():
    """pk_population (used by the mechanism tests): one Cmax per patient per PK regimen."""
    pk = pk_population(8, SEED)
    assert set(pk) == {"pk-face-cmax", "pk-scalp-cmax", "pk-arms-cmax", "pk-urine"}
    assert all(v.shape == (8,) for v in pk.values())
    # more drug on more skin: a higher peak
    assert np.mean(pk["pk-face-cmax"]) < np.mean(pk["pk-scalp-cmax"]) < np.mean(pk["pk-arms-cmax"])
