"""Every import of imiqsim internals used by :mod:`imiqsim.analysis`, in one place.

The analysis tools build on the public API only: scenarios (``resolve``,
``Scenario.with_overrides``), virtual trials (``run_trial``), the model's
parameter table and the interval estimates of the trial statistics. When
those move, only this module changes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from imiqsim.errors import InputError
from imiqsim.scenario import Scenario, resolve
from imiqsim.vocabulary import DISCLAIMER, DISCLAIMER_SHORT, FOOTER

__all__ = [
    "DISCLAIMER",
    "DISCLAIMER_SHORT",
    "FOOTER",
    "InputError",
    "LABEL_PRESETS",
    "Scenario",
    "allowed_range",
    "execute",
    "local_cores",
    "newcombe_diff_ci",
    "parameter_rows",
    "patient_column",
    "product_key",
    "resolve",
    "run_trial",
    "slot_parameter",
    "trace_variables",
]

#: the labelled regimen of each indication: the comparator of the optimiser's report
LABEL_PRESETS: dict[str, str] = {"AK": "ak-5pct", "sBCC": "sbcc-5pct", "EGW": "egw-5pct"}

# Per-lesion slot values (sizes, seeding, susceptibility, thickness, memory overlap) are drawn
# for every virtual patient by the population sampler, which overwrites the table value: a range
# on them would change nothing.
_SLOT = re.compile(r"lesion_(initial_cells|seed_rate|susceptibility|thickness|memory_overlap)_\d+$")


def slot_parameter(name: str) -> bool:
    """True for a per-lesion slot parameter that every virtual patient redraws."""
    return _SLOT.match(name) is not None


def run_trial(
    scenario: Scenario, *, patients: int, seed: int, followup_years: float, workers: int = 1
) -> Any:
    """One arm of a virtual trial (:func:`imiqsim.trial.run_trial`); returns its ArmResult."""
    from imiqsim.trial import run_trial as _run_trial

    tr = _run_trial(
        [scenario], patients=patients, seed=seed, workers=workers, followup_years=followup_years
    )
    return tr.arms[0]


def execute(
    task: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    on_done: Callable[[int, Any], None],
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Run ``task(item)`` for every item (:func:`imiqsim.trial.executors.execute`).

    ``workers > 1``: that many spawned processes, started once for all the items, each with a
    single-threaded engine; 1: here, one item after another.
    """
    from imiqsim.trial.executors import execute as _execute

    _execute(task, items, on_done=on_done, workers=workers, progress=progress)


def local_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def patient_column(output: str) -> str | None:
    """The outcome column whose mean over counted patients is ``output`` (None if it is not).

    A proportion or mean endpoint is the mean of its column over the patients whose integration
    succeeded (NaN entries left out); a numeric outcome column is its own. A median, a pooled
    (lesion-level) proportion or an unknown name has none.
    """
    from imiqsim.trial import ENDPOINTS

    for e in ENDPOINTS:
        if e.name == output:
            return e.column if e.kind in ("proportion", "mean") else None
    return output


def allowed_range(name: str) -> tuple[float, float]:
    """The interval a parameter's value must lie in (``model/parameter_bounds.csv``).

    Exclusive bounds come back as the nearest allowed float; an unbounded side as +/-inf.
    """
    import math

    from imiqsim.model.bounds import bound_for

    b = bound_for(name)
    if b is None:  # no row and no pattern: nothing but finiteness is required
        return -math.inf, math.inf
    lo = -math.inf if b.lo is None else float(b.lo)
    hi = math.inf if b.hi is None else float(b.hi)
    if b.lo is not None and not b.lo_inclusive:
        lo = math.nextafter(lo, math.inf)
    if b.hi is not None and not b.hi_inclusive:
        hi = math.nextafter(hi, -math.inf)
    return lo, hi


def trace_variables() -> tuple[str, ...]:
    """Variables a virtual trial keeps over time for every patient."""
    from imiqsim.trial import TRACE_VARIABLES

    return tuple(TRACE_VARIABLES)


def inert_stages(scenario: Scenario) -> frozenset[str]:
    """Model stages that do nothing in this scenario's schedule (e.g. 5-FU in an imiquimod one).

    A stage declared inert without certain event kinds (``ModuleSpec.inert_without``) keeps its
    states at their initial values when the schedule has none of them, so its parameters have no
    effect on any outcome.
    """
    from imiqsim.model import get_model

    model = get_model()
    present = {int(k) for k in scenario.events().kinds}
    return frozenset(
        m.name
        for m in model.modules
        if m.inert_without and not present & {model.event_kinds[k] for k in m.inert_without}
    )


def parameter_rows(scenario: Scenario) -> list[dict[str, Any]]:
    """The parameter table with each parameter's nominal value in this scenario.

    The nominal value is the scenario's typical patient (indication, site, area, strength and the
    scenario's own overrides applied); status and source are the indication's where it has its own
    row.
    """
    from imiqsim.model import get_model

    model = get_model()
    p = scenario.model_parameters(model)
    own = model.indication_parameters.get(scenario.indication, {})
    rows = []
    for r in model.parameter_table():
        q = own.get(r["name"])
        rows.append(
            {
                **r,
                "value": float(p[model.parameter_index(r["name"])]),
                "status": q.status if q is not None else r["status"],
                "source": q.source if q is not None else r["source"],
            }
        )
    return rows


def product_key(scenario: Scenario, strength_pct: float) -> str:
    """The product of the scenario's kind (active or vehicle) at another strength."""
    from imiqsim.regimen import PRODUCTS

    kind = "vehicle" if scenario.is_vehicle else "imiquimod"
    key = f"{kind}-{float(strength_pct):g}%"
    if key not in PRODUCTS:
        strengths = sorted({p.strength_pct for p in PRODUCTS.values()})
        raise InputError("strength", strength_pct, f"one of {strengths} (% w/w)")
    return key


def newcombe_diff_ci(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """Difference of two proportions with Newcombe's score interval."""
    from imiqsim.stats import newcombe_diff_ci as _nd

    return _nd(k1, n1, k2, n2)
