"""Calibration of the few parameters the literature does not pin down.

Each calibrated parameter has a biological meaning and is paired with the
published figure that constrains it most directly:

============================  ======  ========================  ====================================
parameter                     scope   target row                meaning
============================  ======  ========================  ====================================
baseline_surveillance         AK      ak5-2x16-cc-veh           background immune killing (vehicle)
baseline_surveillance         EGW     egw5-3x16-cc-veh          background immune killing (vehicle)
lesion_immune_susceptibility  AK      ak5-2x16-cc               how visible AK cells are to CTLs
lesion_immune_susceptibility  sBCC    sbcc5-5x6-composite       how visible BCC cells are to CTLs
lesion_immune_susceptibility  EGW     egw5-3x16-cc              how visible HPV+ cells are to CTLs
k_memory_kill                 global  egw5-3x16-recur           memory T-cell surveillance strength
erythema_half                 global  ak5-2x16-severe-erythema  inflammation for visible erythema
lsr_rest_threshold            global  ak5-2x16-rest             LSR at which patients take a rest
flu_index_half                global  ak5-2x16-headache         systemic exposure for flu symptoms
cryo_t50_s                    global  cryo-ak-lesion-cr-gt5s    freeze time for half-maximal kill
============================  ======  ========================  ====================================

The fit is coordinate-wise: each step solves one monotone 1-D problem
(Illinois regula falsi on a log scale) on a reduced virtual trial with common
random numbers, and the sequence is repeated for a few rounds because the
steps interact. Progress is checkpointed after every evaluation so an
interrupted run resumes where it stopped. Every other row of the targets
(partial clearance, median reduction, histology, PK, and the trials not in
the targets) is a prediction, reported by ``imiqsim calibration-report``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from imiqsim.errors import InputError
from imiqsim.model import get_model


@dataclass(frozen=True)
class Step:
    parameter: str
    indication: str | None  # None: global parameter (parameters.csv)
    target: str  # calibration.csv row id
    arm: str  # preset simulated
    endpoint: str  # trial endpoint compared with the row's value
    lo: float
    hi: float
    increasing: bool  # endpoint increases with the parameter
    followup_years: float = 0.0


STEPS: tuple[Step, ...] = (
    Step(
        "baseline_surveillance",
        "AK",
        "ak5-2x16-cc-veh",
        "ak-5pct-vehicle",
        "complete_clearance",
        5e-5,
        2e-3,
        True,
    ),
    Step(
        "baseline_surveillance",
        "EGW",
        "egw5-3x16-cc-veh",
        "egw-5pct-vehicle",
        "complete_clearance",
        2e-4,
        5e-3,
        True,
    ),
    Step(
        "lesion_immune_susceptibility",
        "AK",
        "ak5-2x16-cc",
        "ak-5pct",
        "complete_clearance",
        0.02,
        5.0,
        True,
    ),
    Step(
        "lesion_immune_susceptibility",
        "sBCC",
        "sbcc5-5x6-composite",
        "sbcc-5pct",
        "composite_clearance",
        0.02,
        5.0,
        True,
    ),
    Step(
        "lesion_immune_susceptibility",
        "EGW",
        "egw5-3x16-cc",
        "egw-5pct",
        "complete_clearance",
        0.02,
        5.0,
        True,
    ),
    Step(
        "k_memory_kill",
        None,
        "egw5-3x16-recur",
        "egw-5pct",
        "recurrence_12wk",
        1e-4,
        0.5,
        False,
        0.3,
    ),
    Step(
        "erythema_half",
        None,
        "ak5-2x16-severe-erythema",
        "ak-5pct",
        "severe_erythema",
        0.01,
        1.0,
        False,
    ),
    Step("lsr_rest_threshold", None, "ak5-2x16-rest", "ak-5pct", "rest_needed", 4.0, 17.9, False),
    Step("flu_index_half", None, "ak5-2x16-headache", "ak-5pct", "headache", 1e-4, 1.0, False),
    Step(
        "cryo_t50_s",
        None,
        "cryo-ak-lesion-cr-gt5s",
        "ak-cryo",
        "lesion_complete_response",
        1.0,
        60.0,
        False,
    ),
)


def load_targets() -> list[dict]:
    """The published figures (package copy of shared/targets/calibration.csv)."""
    text = resources.files("imiqsim").joinpath("data/calibration.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def target_value(row_id: str) -> float:
    for r in load_targets():
        if r["id"] == row_id:
            return float(r["value"])
    raise InputError("target", row_id, "a row id of calibration.csv")


def current_values() -> dict[str, float]:
    """Current value of every calibrated parameter, keyed ``param`` or ``param@INDICATION``."""
    m = get_model()
    out = {}
    for s in STEPS:
        if s.indication is None:
            out[s.parameter] = m.parameter(s.parameter).value
        else:
            out[f"{s.parameter}@{s.indication}"] = m.indication_parameters[s.indication][
                s.parameter
            ].value
    return out


def _overrides_for(values: dict[str, float], indication: str) -> dict[str, float]:
    out = {}
    for k, v in values.items():
        if "@" in k:
            name, ind = k.split("@")
            if ind == indication:
                out[name] = v
        else:
            out[k] = v
    return out


def simulate_endpoint(step: Step, values: dict[str, float], patients: int, seed: int) -> float:
    from imiqsim.scenario import load_preset
    from imiqsim.trial import run_trial

    sc = load_preset(step.arm)
    tr = run_trial(
        [sc],
        patients=patients,
        seed=seed,
        followup_years=step.followup_years,
        overrides=_overrides_for(values, sc.indication),
    )
    v = tr.arms[0].endpoints[step.endpoint]["value"]
    return float("nan") if v is None else float(v)


def _solve(
    f: Callable[[float], float],
    target: float,
    lo: float,
    hi: float,
    increasing: bool,
    x0: float,
    tol: float,
    max_evals: int,
) -> tuple[float, float, int]:
    """Monotone root of f(x) = target on a log scale (Illinois). Returns (x, f(x), evaluations)."""
    sgn = 1.0 if increasing else -1.0

    def g(u):
        return sgn * (f(math.exp(u)) - target)

    a, b = math.log(lo), math.log(hi)
    x = min(max(math.log(x0), a), b)
    gx = g(x)
    n = 1
    if abs(gx) <= tol:
        return math.exp(x), gx * sgn + target, n
    # bracket using the current value as one end
    if gx < 0:
        a, ga = x, gx
        gb = g(b)
        n += 1
        if gb < 0:
            return math.exp(b), gb * sgn + target, n
    else:
        b, gb = x, gx
        ga = g(a)
        n += 1
        if ga > 0:
            return math.exp(a), ga * sgn + target, n
    best = (x, gx)
    side = 0
    while n < max_evals:
        c = (a * gb - b * ga) / (gb - ga) if gb != ga else 0.5 * (a + b)
        c = min(max(c, a + 0.02 * (b - a)), b - 0.02 * (b - a))
        gc = g(c)
        n += 1
        if abs(gc) < abs(best[1]):
            best = (c, gc)
        if abs(gc) <= tol:
            break
        if gc < 0:
            a, ga = c, gc
            if side == -1:
                gb /= 2
            side = -1
        else:
            b, gb = c, gc
            if side == 1:
                ga /= 2
            side = 1
    return math.exp(best[0]), best[1] * sgn + target, n


def calibrate(
    *,
    patients: int = 300,
    seed: int = 2024,
    rounds: int = 2,
    tol: float = 0.01,
    max_evals: int = 8,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Run the coordinate-wise fit. Returns ``{"values", "history", ...}``."""
    if patients < 20:
        raise InputError("patients", patients, "at least 20 per evaluation")
    state = {
        "values": current_values(),
        "done": [],
        "history": [],
        "patients": patients,
        "seed": seed,
        "rounds": rounds,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if resume:
        if checkpoint is None or not checkpoint.exists():
            raise InputError(
                "--resume", str(checkpoint), "an existing checkpoint file from an earlier run"
            )
        state = json.loads(checkpoint.read_text())
    for r in range(rounds):
        for i, s in enumerate(STEPS):
            key = f"{r}:{i}"
            if key in state["done"]:
                continue
            vkey = s.parameter if s.indication is None else f"{s.parameter}@{s.indication}"
            target = target_value(s.target)

            def f(x, s=s, vkey=vkey, r=r, i=i, target=target):
                vals = dict(state["values"])
                vals[vkey] = x
                y = simulate_endpoint(s, vals, patients, seed)
                state["history"].append(
                    {
                        "round": r,
                        "step": i,
                        "parameter": vkey,
                        "value": x,
                        "endpoint": s.endpoint,
                        "simulated": y,
                        "target": target,
                    }
                )
                if checkpoint is not None:
                    checkpoint.write_text(json.dumps(state, indent=1))
                return y

            x, y, n = _solve(
                f, target, s.lo, s.hi, s.increasing, state["values"][vkey], tol, max_evals
            )
            state["values"][vkey] = x
            state["done"].append(key)
            if checkpoint is not None:
                checkpoint.write_text(json.dumps(state, indent=1))
            if progress:
                progress(
                    f"round {r + 1}/{rounds} {vkey} = {x:.4g} -> {s.endpoint} {y:.3f} "
                    f"(target {target:.3f}, {n} runs)"
                )
    state["steps"] = [asdict(s) for s in STEPS]
    return state


# ----------------------------------------------------------------------------- writing values back


def _rewrite_csv(path: Path, match: Callable[[dict], bool], value: float, source: str) -> bool:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = None
    out, hit = [], False
    for ln in lines:
        if ln.startswith("#") or not ln.strip():
            out.append(ln)
            continue
        row = next(csv.reader([ln]))
        if header is None:
            header = row
            out.append(ln)
            continue
        d = dict(zip(header, row, strict=True))
        if match(d):
            d["value"] = f"{value:.6g}"
            d["source"] = source
            d["status"] = "calibrated"
            b = io.StringIO()
            csv.writer(b, lineterminator="\n").writerow([d[h] for h in header])
            ln = b.getvalue()
            hit = True
        out.append(ln)
    path.write_text("".join(out), encoding="utf-8")
    return hit


def write_values(values: dict[str, float], model_dir: Path, note: str) -> list[str]:
    """Write calibrated values into parameters.csv / indications.csv with their provenance."""
    changed = []
    for s in STEPS:
        vkey = s.parameter if s.indication is None else f"{s.parameter}@{s.indication}"
        src = f"calibrated against {s.target} ({note})"
        if s.indication is None:
            ok = _rewrite_csv(
                model_dir / "parameters.csv",
                lambda d, s=s: d["name"] == s.parameter,
                values[vkey],
                src,
            )
        else:
            ok = _rewrite_csv(
                model_dir / "indications.csv",
                lambda d, s=s: d["name"] == s.parameter and d["indication"] == s.indication,
                values[vkey],
                src,
            )
        if ok:
            changed.append(vkey)
    return changed
