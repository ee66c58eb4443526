"""Published rows re-simulated on a seed used neither by the fit (2024) nor the report (7).

A representative subset runs here (one arm per trial design: AK 16-week and two-week cycles,
sBCC, EGW, cryotherapy, face PK) with 300 patients per arm; every row of the targets runs in
``imiqsim calibration-report`` (README, Calibration). The tolerance of a row is the fit's and the
report's (``imiqsim.calibrate.row_hit``: the published 95% CI, +/-0.10 without n, 2-fold for PK),
widened on each side by 1.96 x the binomial SE of a 300-patient simulation at the published
value (a proportion; PK rows are population means and are not widened). Rows the 1,000-patient
report finds outside their tolerance are not in the subset: they are reported as misses, with
their size, in the README and the report, never asserted here.
"""

from __future__ import annotations

import math

import pytest

from imiqsim.calibrate import NO_N_TOLERANCE, PK_FOLD, Problem, current_values

N = 300
SEED = 99  # neither the fit's (2024), the report's (7) nor validation's (11)

#: the subset (rows whose arm is simulated here); every other row: calibration-report
SUBSET = (
    "ak5-2x16-cc",
    "ak5-2x16-rest",
    "ak5-2x16-severe-erythema",
    "ak5-2x16-recur-16mo",
    "ak375-2wk-cc",
    "sbcc5-5x12-histo",
    "egw5-3x16-recur",
    "egw375-qd8-cc",
    "cryo-ak-lesion-cr-gt20s",
    "pk-face-cmax",
    "pk-arms-cmax",
)

PROBLEM = Problem.from_package()


@pytest.fixture(scope="module")
def arm_results():
    values = current_values(PROBLEM.params)
    out = {}
    for arm in PROBLEM.arms_of(SUBSET):
        out[arm] = PROBLEM.simulator.run_arm(arm, values, N, SEED)
    return out


def _allowed(row_id: str) -> tuple[float, float]:
    row, t = PROBLEM.row(row_id), PROBLEM.targets[row_id]
    if row.likelihood == "fold":
        return t.value / PK_FOLD, t.value * PK_FOLD
    if row.likelihood == "upper_bound":
        return -math.inf, t.value
    widen = 1.959963984540054 * math.sqrt(t.value * (1 - t.value) / N)
    if row.likelihood == "absolute":
        return t.value - NO_N_TOLERANCE - widen, t.value + NO_N_TOLERANCE + widen
    lo, hi = t.published_ci()
    return lo - widen, hi + widen


@pytest.mark.parametrize("row_id", SUBSET)
def test_row_within_its_tolerance(row_id, arm_results):
    row = PROBLEM.row(row_id)
    value = arm_results[row.arm][row.endpoint]["value"]
    assert value is not None
    lo, hi = _allowed(row_id)
    assert lo <= value <= hi, f"{row_id}: simulated {value:.4g}, allowed {lo:.4g}-{hi:.4g}"
