"""A stand-in simulator for the calibration machinery: known true parameters, cheap arms.

Each endpoint of an arm is a proportion ``logistic(c0 + sum_k c_k ln(value_k))``; with
``noise`` it is the share of ``patients`` virtual patients whose uniform draw (fixed by the seed,
the arm and the endpoint: common random numbers) falls below that probability, as a virtual
trial's endpoint would be. Used by tests/test_calibration_fit.py and tests/test_validate.py.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from imiqsim.calibrate import CalibratedParameter, Problem, RowSpec, Target

#: arm -> endpoint -> (intercept, {parameter key: coefficient on ln(value)})
DESIGN: dict[str, dict[str, tuple[float, dict[str, float]]]] = {
    "arm1": {"e1": (0.2, {"k1": 1.0, "k2": 0.3}), "e2": (-0.5, {"k1": 0.6, "k3@X": -0.8})},
    "arm2": {"e1": (0.4, {"k2": 1.2}), "e2": (0.0, {"k2": -0.7, "k3@X": 0.5})},
    "arm3": {"e1": (-0.3, {"k1": -0.5, "k3@X": 1.1}), "e2": (0.3, {"k1": 0.4, "k2": 0.4})},
}
TRUE = {"k1": 0.5, "k2": 2.0, "k3@X": 1.3}
#: which published source ("trial") each row comes from (two spellings of Alpha's citation)
SOURCE = {
    "arm1-e1": "Alpha et al. 2001, J Test 1:1",
    "arm1-e2": "Alpha et al. 2001",
    "arm2-e1": "Gamma label section 2",
    "arm2-e2": "Gamma label (2nd edition)",
    "arm3-e1": "Beta 2003",
    "arm3-e2": "Beta 2003",
}


@dataclass(frozen=True)
class LogisticSimulator:
    design: tuple = tuple(sorted((a, tuple(sorted(e.items()))) for a, e in DESIGN.items()))
    noise: bool = False

    def _design(self) -> dict:
        return {a: dict(e) for a, e in self.design}

    def arm_names(self) -> list[str]:
        return [a for a, _ in self.design]

    def depends(self, arm: str, key: str) -> bool:
        return any(key in c for _, c in self._design()[arm].values())

    def probability(self, arm: str, endpoint: str, values: dict[str, float]) -> float:
        c0, coef = self._design()[arm][endpoint]
        lin = c0 + sum(c * math.log(values[k]) for k, c in coef.items())
        return 1.0 / (1.0 + math.exp(-lin))

    def run_arm(self, arm: str, values: dict[str, float], patients: int, seed: int) -> dict:
        out = {}
        for ep in self._design()[arm]:
            p = self.probability(arm, ep, values)
            if self.noise:
                u = np.random.default_rng([seed, zlib.crc32(f"{arm}/{ep}".encode())]).random(
                    patients
                )
                p = float(np.mean(u < p))
            out[ep] = {"value": p, "ci95": [p, p], "n": patients}
        return out


def problem(noise: bool = False, n: int = 4000, truth: dict[str, float] | None = None) -> Problem:
    """Rows = every (arm, endpoint) at the true values (binomial, n each); 3 parameters."""
    sim = LogisticSimulator(noise=noise)
    truth = truth or TRUE
    targets, rows = {}, []
    for arm in sim.arm_names():
        for ep in sim._design()[arm]:
            rid = f"{arm}-{ep}"
            v = sim.probability(arm, ep, truth)
            targets[rid] = Target(rid, "X", arm, ep, v, n, SOURCE[rid], "")
            rows.append(RowSpec(rid, arm, ep, "binomial"))
    params = (
        CalibratedParameter("k1", "global", 0.05, 20.0, True, "stand-in rate 1"),
        CalibratedParameter("k2", "global", 0.05, 20.0, True, "stand-in rate 2"),
        CalibratedParameter("k3", "X", 0.05, 20.0, True, "stand-in rate of indication X"),
    )
    return Problem(targets, tuple(rows), params, sim)
