"""What the analysis tools can vary, and over which range.

A *factor* is a model parameter (any name of ``imiqsim parameters``) or a regimen field
(:data:`REGIMEN_FACTORS`). A point is a mapping factor -> value; :func:`scenario_at` turns it
into a validated scenario.

Sensitivity ranges are drawn on a scale: ``log`` (log-uniform between ``low`` and ``high``),
``logit`` (uniform in log-odds: fractions stay inside (0, 1)) or ``linear``. The default range of
a parameter is its nominal value in the scenario divided and multiplied by a width that depends
on its provenance (:data:`DEFAULT_WIDTHS`): literature values narrow, assumed values wide.
Fractions get the same width on the odds scale. Switches (``*_present``, ``tlr7_expression``),
scenario inputs (area, strength, site permeability), per-lesion values that every virtual
patient redraws and parameters whose nominal value is 0 are left out by default, each with its
reason (:func:`default_ranges`).

Examples
--------
>>> r = Range(1.0, 4.0, "log")
>>> round(r.value(0.5), 6)
2.0
>>> round(Range(0.2, 0.8, "logit").value(0.5), 12)
0.5
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imiqsim.analysis._backend import (
    InputError,
    Scenario,
    allowed_range,
    inert_stages,
    parameter_rows,
    product_key,
    resolve,
    slot_parameter,
)

__all__ = [
    "DEFAULT_WIDTHS",
    "REGIMEN_FACTORS",
    "Range",
    "as_scenario",
    "default_ranges",
    "is_fraction",
    "parameter_table_rows",
    "parse_range",
    "parse_values",
    "scenario_at",
]

#: default multiplicative half-width of a parameter's range, by provenance
DEFAULT_WIDTHS: dict[str, float] = {
    "literature": 2.0,
    "derived": 2.0,
    "calibrated": 1.5,
    "assumed": 4.0,
}

#: regimen and scenario fields a scan or the optimiser may vary: name -> (kind, meaning)
REGIMEN_FACTORS: dict[str, tuple[str, str]] = {
    "strength": ("float", "cream strength, % w/w (2.5, 3.75 or 5)"),
    "applications_per_week": ("int", "applications a week, 1-14 (8-14: twice daily)"),
    "weeks": ("float", "course length, weeks (regimen.max_weeks)"),
    "leave_on_hours": ("float", "hours before the cream is washed off"),
    "cycle_on_weeks": ("int", "weeks on in on/off cycles (0: continuous dosing)"),
    "cycle_off_weeks": ("int", "weeks off in on/off cycles (0: continuous dosing)"),
    "area_cm2": ("float", "treated area, cm2"),
}
_ALIASES = {"max_weeks": "weeks", "area": "area_cm2"}

_FRACTION_WORDS = re.compile(r"\bfraction\b|\bfractional\b|\bshare\b|\bprobability\b")
_SWITCH_STATUSES = ("switch",)
_SCENARIO_STATUSES = ("scenario",)


@dataclass(frozen=True)
class Range:
    """A sampling range ``[low, high]`` on a scale (``log``, ``logit`` or ``linear``)."""

    low: float
    high: float
    scale: str = "log"

    def __post_init__(self) -> None:
        if self.scale not in ("log", "logit", "linear"):
            raise InputError("range scale", self.scale, "log, logit or linear")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise InputError("range", (self.low, self.high), "two finite numbers, low < high")
        if self.scale == "log" and self.low <= 0:
            raise InputError("range", (self.low, self.high), "positive bounds on a log scale")
        if self.scale == "logit" and not (0 < self.low and self.high < 1):
            raise InputError("range", (self.low, self.high), "bounds inside (0, 1) for a fraction")

    def value(self, u: float | np.ndarray) -> Any:
        """The value at the unit-interval position ``u`` (0: low, 1: high)."""
        u = np.asarray(u, dtype=float)
        if self.scale == "linear":
            v = self.low + u * (self.high - self.low)
        elif self.scale == "log":
            v = np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        else:
            a, b = _logit(self.low), _logit(self.high)
            v = 1.0 / (1.0 + np.exp(-(a + u * (b - a))))
        return float(v) if v.ndim == 0 else v


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def is_fraction(row: Mapping[str, Any]) -> bool:
    """A dimensionless parameter described as a fraction, share or probability."""
    return row["unit"] == "1" and bool(_FRACTION_WORDS.search(str(row["description"]).lower()))


def as_scenario(scenario: str | Scenario) -> Scenario:
    """A preset name, a scenario file or a :class:`~imiqsim.scenario.Scenario`."""
    return scenario if isinstance(scenario, Scenario) else resolve(scenario)


def parameter_table_rows(scenario: str | Scenario) -> list[dict[str, Any]]:
    """The parameter table (name, value, unit, module, description, source, status) with each
    value the nominal one of the scenario's typical patient and the indication's provenance."""
    return parameter_rows(as_scenario(scenario))


def default_ranges(
    scenario: str | Scenario,
    parameters: Sequence[str] | None = None,
    *,
    widths: Mapping[str, float] | None = None,
    ranges: Mapping[str, Range | tuple[float, float]] | None = None,
    include_switches: bool = False,
) -> tuple[dict[str, Range], dict[str, str]]:
    """Sampling ranges of model parameters for a sensitivity analysis.

    A default range is cut to the values the parameter may take (``model/parameter_bounds.csv``,
    e.g. an LSR threshold on the 0-18 scale), so every sampled point is a valid scenario.

    Parameters
    ----------
    scenario : str or Scenario
        Preset name, scenario file or scenario: nominal values are its typical patient's.
    parameters : sequence of str, optional
        Parameters to vary (default: every parameter that can be sampled).
    widths : mapping, optional
        Multiplicative half-width by provenance (literature, derived, calibrated, assumed),
        updating :data:`DEFAULT_WIDTHS`.
    ranges : mapping, optional
        Explicit ranges by name (a :class:`Range` or ``(low, high)``, log scale), overriding
        the default of that parameter (and including it even if it is left out by default).
    include_switches : bool
        Vary switch parameters too (between 0.5 and 1 on a linear scale).

    Returns
    -------
    ranges : dict of str to Range
    excluded : dict of str to str
        Parameters left out, with the reason.

    Examples
    --------
    >>> r, left_out = default_ranges("ak-5pct", ["tlr7_ec50_ug_ml", "cd8_fraction"])
    >>> r["tlr7_ec50_ug_ml"]
    Range(low=1.0, high=4.0, scale='log')
    >>> r["cd8_fraction"].scale
    'logit'
    """
    sc = as_scenario(scenario)
    rows = {r["name"]: r for r in parameter_rows(sc)}
    w = {**DEFAULT_WIDTHS, **(widths or {})}
    for k, v in w.items():
        if k not in DEFAULT_WIDTHS:
            raise InputError("width", k, f"one of {sorted(DEFAULT_WIDTHS)}")
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 1):
            raise InputError(f"width {k}", v, "a factor > 1")
    explicit = dict(ranges or {})
    for name in explicit:
        if name not in rows:
            raise InputError("parameter", name, "a model parameter (see `imiqsim parameters`)")
    names = list(parameters) if parameters is not None else list(rows)
    for name in names:
        if name not in rows:
            raise InputError("parameter", name, "a model parameter (see `imiqsim parameters`)")
    names += [n for n in explicit if n not in names]
    out: dict[str, Range] = {}
    excluded: dict[str, str] = {}
    inert = inert_stages(sc)
    for name in names:
        row = rows[name]
        if name in explicit:
            r = explicit[name]
            out[name] = r if isinstance(r, Range) else Range(float(r[0]), float(r[1]), "log")
            continue
        v, status = row["value"], row["status"]
        if row["module"] in inert:
            excluded[name] = f"its stage ({row['module']}) is inert in this schedule: no effect"
        elif status in _SWITCH_STATUSES:
            if include_switches:
                out[name] = Range(0.5, 1.0, "linear")
            else:
                excluded[name] = "a switch (knockout); include_switches=True to vary it"
        elif status in _SCENARIO_STATUSES:
            excluded[name] = "set by the scenario (area, strength, site): scan it instead"
        elif slot_parameter(name):
            excluded[name] = "a per-lesion value that every virtual patient redraws"
        elif not v > 0:
            excluded[name] = "nominal value 0: no multiplicative range"
        elif status not in w:
            excluded[name] = f"provenance {status!r} has no default width"
        elif is_fraction(row):
            f = w[status]
            if v >= 1.0:
                excluded[name] = "a fraction at its upper bound 1"
                continue
            odds = v / (1.0 - v)
            lo, hi = odds / f, odds * f
            _clipped(out, excluded, name, lo / (1 + lo), hi / (1 + hi), "logit")
        else:
            f = w[status]
            _clipped(out, excluded, name, v / f, v * f, "log")
    return out, excluded


def _clipped(
    out: dict[str, Range], excluded: dict[str, str], name: str, lo: float, hi: float, scale: str
) -> None:
    """A default range cut to the values the parameter may take (``parameter_bounds.csv``)."""
    a, b = allowed_range(name)
    lo, hi = max(lo, a), min(hi, b)
    if scale == "log":
        lo = max(lo, math.nextafter(0.0, 1.0))
    if scale == "logit":
        lo, hi = max(lo, 1e-12), min(hi, 1 - 1e-12)
    if not lo < hi:
        excluded[name] = f"its allowed range [{a:g}, {b:g}] leaves no range around its value"
        return
    out[name] = Range(lo, hi, scale)


def parse_range(text: str) -> tuple[str, Range]:
    """``NAME=LO:HI`` (log scale) or ``NAME=LO:HI:SCALE`` -> (name, Range).

    >>> parse_range("tlr7_ec50_ug_ml=0.5:8")
    ('tlr7_ec50_ug_ml', Range(low=0.5, high=8.0, scale='log'))
    """
    name, sep, spec = text.partition("=")
    parts = spec.split(":")
    if not sep or len(parts) not in (2, 3):
        raise InputError("--range", text, "NAME=LO:HI or NAME=LO:HI:log|logit|linear")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError(f"--range {name}", spec, "numbers LO:HI") from None
    return name.strip(), Range(lo, hi, parts[2] if len(parts) == 3 else "log")


def parse_values(text: str) -> tuple[str, list[float]]:
    """``NAME=LO:HI:N`` (N evenly spaced values) or ``NAME=a,b,c`` -> (name, values).

    >>> parse_values("applications_per_week=3:7:3")
    ('applications_per_week', [3.0, 5.0, 7.0])
    >>> parse_values("strength=2.5,5")
    ('strength', [2.5, 5.0])
    """
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not spec:
        raise InputError("--set", text, "NAME=LO:HI:N or NAME=a,b,c")
    try:
        if ":" in spec:
            parts = spec.split(":")
            if len(parts) != 3:
                raise ValueError
            lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
            if n < 1 or (n > 1 and not lo < hi) or n > 1000:
                raise InputError(f"--set {name}", spec, "LO < HI and 1 <= N <= 1000")
            values = [lo] if n == 1 else [float(x) for x in np.linspace(lo, hi, n)]
        else:
            values = [float(x) for x in spec.split(",")]
    except ValueError:
        raise InputError(f"--set {name}", spec, "LO:HI:N (numbers, N whole) or a,b,c") from None
    if len(set(values)) != len(values):
        raise InputError(f"--set {name}", spec, "distinct values")
    return name, values


def canonical(name: str) -> str:
    """The factor's canonical name (``max_weeks`` -> ``weeks``, ``area`` -> ``area_cm2``)."""
    return _ALIASES.get(name, name)


def check_factor(name: str, parameter_names: Sequence[str]) -> str:
    """The canonical name of a factor, or an InputError naming what is allowed."""
    c = canonical(name)
    if c in REGIMEN_FACTORS or c in parameter_names:
        return c
    raise InputError(
        "factor",
        name,
        f"a regimen field ({', '.join(REGIMEN_FACTORS)}) or a model parameter "
        "(see `imiqsim parameters`)",
    )


def _whole(name: str, v: float) -> int:
    if abs(v - round(v)) > 1e-9:
        raise InputError(name, v, "a whole number")
    return int(round(v))


def scenario_at(scenario: Scenario, point: Mapping[str, float]) -> Scenario:
    """The scenario with the point's factors set (validated: raises InputError).

    Examples
    --------
    >>> sc = scenario_at(resolve("sbcc-5pct"), {"applications_per_week": 7, "weeks": 4})
    >>> sc.treatment_text()  # doctest: +ELLIPSIS
    '...daily...4 weeks...'
    """
    if scenario.regimen is None and any(canonical(k) in REGIMEN_FACTORS for k in point):
        raise InputError("factor", sorted(point), "regimen fields need a cream scenario")
    changes: dict[str, Any] = {}
    regimen: dict[str, Any] = {}
    cycle: dict[str, int] = {}
    for key, value in point.items():
        name = canonical(key)
        v = float(value)
        if name == "strength":
            changes["product"] = product_key(scenario, v)
        elif name == "applications_per_week":
            n = _whole(name, v)
            if not 1 <= n <= 14 or (n > 7 and n % 2):
                raise InputError(name, n, "1-7, or 8-14 even (twice daily on n/2 days)")
            regimen["applications_per_week"] = n if n <= 7 else n // 2
            regimen["times_per_day"] = 1 if n <= 7 else 2
        elif name == "weeks":
            regimen["max_weeks"] = v
        elif name == "leave_on_hours":
            regimen["leave_on_hours"] = v
        elif name in ("cycle_on_weeks", "cycle_off_weeks"):
            cycle[name] = _whole(name, v)
        elif name == "area_cm2":
            changes["area_cm2"] = v
        else:
            changes[f"parameters.{name}"] = v
    if cycle:
        on = cycle.get("cycle_on_weeks", scenario.regimen.cycle_on_weeks or 0)
        off = cycle.get("cycle_off_weeks", scenario.regimen.cycle_off_weeks or 0)
        if on == 0 or off == 0:
            regimen["cycle_on_weeks"] = regimen["cycle_off_weeks"] = None
        else:
            regimen["cycle_on_weeks"], regimen["cycle_off_weeks"] = on, off
    if regimen:
        changes["regimen"] = regimen
    return scenario.with_overrides(**changes) if changes else scenario
