"""Each published target row, simulated with a reduced virtual trial (300 patients per arm).

Tolerance for every row, written next to it: the published 95% CI (Clopper-Pearson from the row's
n; for rows without n, +/-0.10) widened on each side by 1.96 x the binomial SE of a 300-patient
simulation at the published value. A row the calibrated model is known to miss (by the 1000-patient
calibration report) is checked for the documented direction of its miss instead.
"""

from __future__ import annotations

import numpy as np
import pytest

from imiqsim.calibration_report import CLINICAL, PK, arm_scenario, pk_population
from imiqsim.trial import run_trial

N = 300
SEED = 99  # neither the calibration seed (2024) nor the report seed (7)

#: row id -> (published value, allowed simulated range)
ROWS = {
    "ak5-2x16-cc": (0.451, (0.327, 0.577)),  # CI 0.383-0.520 (n=215) +/- 0.056
    "ak5-2x16-cc-veh": (0.032, (0.000, 0.084)),  # CI 0.013-0.064 (n=221) +/- 0.020
    "ak5-2x16-pc": (0.591, (0.466, 0.713)),  # CI 0.522-0.657 (n=215) +/- 0.056
    "ak5-2x16-pc-veh": (0.118, (0.042, 0.204)),  # CI 0.078-0.168 (n=221) +/- 0.037
    "ak5-2x16-median-red": (0.833, (0.734, 0.922)),  # CI 0.776-0.880 (n=215) +/- 0.042
    "ak5-2x16-severe-erythema": (0.177, (0.085, 0.278)),  # CI 0.128-0.234 (n=215) +/- 0.043
    "ak5-2x16-rest": (0.16, (0.071, 0.255)),  # CI 0.112-0.214 (n=215) +/- 0.041
    "ak5-2x16-headache": (0.05, (0.001, 0.114)),  # CI 0.026-0.090 (n=215) +/- 0.025
    "sbcc5-5x6-composite": (0.75, (0.601, 0.899)),  # +/-0.10 (n not given) +/- 0.049
    "sbcc5-5x6-histo": (0.82, (0.677, 0.963)),  # +/-0.10 (n not given) +/- 0.043
    "egw5-3x16-cc": (0.5, (0.342, 0.649)),  # CI 0.398-0.593 (n=109) +/- 0.057
    "egw5-3x16-cc-veh": (0.11, (0.021, 0.224)),  # CI 0.056-0.188 (n=100) +/- 0.035
    "egw5-3x16-recur": (0.13, (0.016, 0.287)),  # CI 0.054-0.249 (n=54) +/- 0.038
    # Thai 2004 lesion complete response (lesions pooled over ~300 patients: simulation SE ~0.01)
    "cryo-ak-lesion-cr": (
        0.672,
        (0.584, 0.761),
    ),  # published CI 0.604-0.741 +/- 0.02 (ak-cryo: 10 s)
    "cryo-ak-lesion-cr-lt5s": (0.39, (0.27, 0.51)),  # +/-0.10 (n not given) +/- 0.02 (3 s)
    "cryo-ak-lesion-cr-gt5s": (0.69, (0.57, 0.81)),  # +/-0.10 (n not given) +/- 0.02 (10 s)
    "cryo-ak-lesion-cr-gt20s": (0.83, (0.71, 0.95)),  # +/-0.10 (n not given) +/- 0.02 (25 s)
}
#: misses measured by `imiqsim calibration-report --patients 1000 --seed 7` (README, Calibration):
#: row -> (direction of the miss, why). A 300-patient run may land either side of the widened
#: tolerance, so these rows assert the documented direction of the miss (which can fail) instead.
KNOWN_MISSES: dict[str, tuple[str, str]] = {
    "ak5-2x16-pc-veh": (
        "below",
        "simulated 4.1% vs published 11.8% (CI 7.8-16.8): too little lesion-level "
        "spontaneous regression in the vehicle arm",
    ),
}


@pytest.fixture(scope="module")
def endpoints():
    arms = sorted({arm for arm, _ in CLINICAL.values()})
    out = {}
    for arm in arms:
        tr = run_trial(
            [arm_scenario(arm)],
            patients=N,
            seed=SEED,
            followup_years=0.3 if arm.startswith("egw") else 0.0,
        )
        out[arm] = tr.arms[0].endpoints
    return out


@pytest.mark.parametrize("row", [r for r in ROWS if r not in KNOWN_MISSES])
def test_clinical_row_within_tolerance(row, endpoints):
    arm, ep = CLINICAL[row]
    value = endpoints[arm][ep]["value"]
    lo, hi = ROWS[row][1]
    assert value is not None
    assert lo <= value <= hi, f"{row}: simulated {value:.3f}, allowed {lo:.3f}-{hi:.3f}"


@pytest.mark.parametrize("row", list(KNOWN_MISSES))
def test_known_miss_keeps_its_documented_direction(row, endpoints):
    arm, ep = CLINICAL[row]
    value = endpoints[arm][ep]["value"]
    published = ROWS[row][0]
    direction, why = KNOWN_MISSES[row]
    assert (value > published) if direction == "above" else (value < published), (row, value, why)


def test_pk_rows_within_3_fold_and_urine_below_1_percent():
    """Aldara PI: Cmax 0.1 / 0.2 / 1.6 ng/mL (face / scalp / arms); urine < 0.6% (row), < 1%."""
    pk = pk_population(40, SEED)
    published = {"pk-face-cmax": 0.1, "pk-scalp-cmax": 0.2, "pk-arms-cmax": 1.6}
    for rid in PK:
        mean = float(np.mean(pk[rid]))
        assert published[rid] / 3 <= mean <= published[rid] * 3, (rid, mean)
    assert float(np.mean(pk["pk-urine"])) < 0.01
