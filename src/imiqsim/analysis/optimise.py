"""A regimen optimiser: the Pareto front of efficacy vs tolerability under skin-reaction limits.

:func:`optimise` searches label-plausible regimens (strength, applications a week, weeks, cycles,
leave-on hours) with Optuna's NSGA-II, a multi-objective genetic algorithm: it maximises the
objective (e.g. ``complete_clearance``) and minimises each limited metric (e.g.
``severe_erythema``, ``rest_needed``), and treats each limit (``severe_erythema<=0.2``) as a
constraint. Every candidate is a virtual trial of the same virtual patients (common random
numbers). The feasible non-dominated candidates (the front) and the label regimen are then
re-evaluated on a fresh seed with more patients, so the reported values and CIs are not those
the search selected on.

Every regimen is checked against the validated range: the span of the regimens of the
calibration targets of its indication (:data:`VALIDATED_REGIMENS`); a regimen outside it is
flagged as an extrapolation. Research use only: the report is a model prediction, not
treatment advice.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imiqsim.analysis import _backend as be
from imiqsim.analysis.evaluate import Estimate, VirtualTrial
from imiqsim.analysis.factors import REGIMEN_FACTORS, as_scenario, canonical

__all__ = [
    "VALIDATED_REGIMENS",
    "Limit",
    "OptimiseResult",
    "SearchRecord",
    "Space",
    "closest_candidates",
    "label_point",
    "optimise",
    "parse_limit",
    "parse_space",
    "search_pareto",
    "validated_range",
]

#: the regimens of the calibration targets (target id, indication, strength %, applications a
#: week, course weeks, cycle weeks on/off or None, leave-on hours)
VALIDATED_REGIMENS: tuple[
    tuple[str, str, float, int, float, tuple[int, int] | None, float], ...
] = (
    ("ak5-2x16-cc", "AK", 5.0, 2, 16.0, None, 8.0),
    ("ak5-3x16-recur-16mo", "AK", 5.0, 3, 16.0, None, 8.0),
    ("pk-face-cmax", "AK", 5.0, 3, 16.0, None, 8.0),
    ("ak375-2wk-cc", "AK", 3.75, 7, 6.0, (2, 2), 8.0),
    ("ak25-2wk-cc", "AK", 2.5, 7, 6.0, (2, 2), 8.0),
    ("sbcc5-5x6-composite", "sBCC", 5.0, 5, 6.0, None, 8.0),
    ("sbcc5-3x12-histo", "sBCC", 5.0, 3, 12.0, None, 8.0),
    ("sbcc5-5x12-histo", "sBCC", 5.0, 5, 12.0, None, 8.0),
    ("sbcc5-7x12-histo", "sBCC", 5.0, 7, 12.0, None, 8.0),
    ("sbcc5-bid12-histo", "sBCC", 5.0, 14, 12.0, None, 8.0),
    ("egw5-3x16-cc", "EGW", 5.0, 3, 16.0, None, 8.0),
    ("egw375-qd8-cc", "EGW", 3.75, 7, 8.0, None, 8.0),
)


def validated_range(indication: str) -> dict[str, Any]:
    """The span of the calibration targets' regimens of one indication.

    >>> r = validated_range("AK")
    >>> r["strength"], r["applications_per_week"], r["weeks"], r["cycles"]
    ((2.5, 5.0), (2, 7), (6.0, 16.0), [None, (2, 2)])
    """
    rows = [r for r in VALIDATED_REGIMENS if r[1] == indication]
    if not rows:
        known = sorted({r[1] for r in VALIDATED_REGIMENS})
        raise be.InputError("indication", indication, f"one of {known}")

    def span(j: int) -> tuple[Any, Any]:
        return (min(r[j] for r in rows), max(r[j] for r in rows))

    return {
        "strength": span(2),
        "applications_per_week": span(3),
        "weeks": span(4),
        "cycles": sorted({r[5] for r in rows}, key=lambda c: (c is not None, c or (0, 0))),
        "leave_on_hours": span(6),
        "targets": [r[0] for r in rows],
    }


def regimen_point(scenario: be.Scenario) -> dict[str, float]:
    """A cream scenario's regimen as factor values (strength, applications a week, ...)."""
    reg = scenario.regimen
    prod = scenario.product_obj()
    if reg is None or prod is None:
        raise be.InputError("scenario", scenario.name, "a cream scenario with a regimen")
    return {
        "strength": float(prod.strength_pct),
        "applications_per_week": float(len(reg.dosing_weekdays) * reg.times_per_day),
        "weeks": float(reg.max_weeks),
        "leave_on_hours": float(reg.leave_on_hours),
        "cycle_on_weeks": float(reg.cycle_on_weeks or 0),
        "cycle_off_weeks": float(reg.cycle_off_weeks or 0),
        "area_cm2": float(scenario.area_cm2),
    }


def outside_validated(scenario: be.Scenario) -> list[str]:
    """How a cream scenario's regimen lies outside its indication's validated range ([] inside)."""
    rng = validated_range(scenario.indication)
    p = regimen_point(scenario)
    out = []
    for key in ("strength", "applications_per_week", "weeks", "leave_on_hours"):
        lo, hi = rng[key]
        if not lo - 1e-9 <= p[key] <= hi + 1e-9:
            out.append(f"{key} {p[key]:g} outside {lo:g}-{hi:g}")
    cyc = (
        None if p["cycle_on_weeks"] == 0 else (int(p["cycle_on_weeks"]), int(p["cycle_off_weeks"]))
    )
    if cyc not in rng["cycles"]:
        pats = ", ".join(
            "continuous" if c is None else f"{c[0]} on/{c[1]} off" for c in rng["cycles"]
        )
        out.append(f"cycles {cyc[0]} on/{cyc[1]} off not among the targets' ({pats})")
    return out


# --------------------------------------------------------------------------- search space, limits


@dataclass(frozen=True)
class Space:
    """One dimension of the search: an integer or float range, or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    choices: tuple[float, ...] | None = None
    integer: bool = False

    def contains(self, v: float) -> bool:
        if self.choices is not None:
            return any(abs(v - c) < 1e-9 for c in self.choices)
        ok = self.low - 1e-9 <= v <= self.high + 1e-9
        return ok and (not self.integer or abs(v - round(v)) < 1e-9)

    def suggest(self, trial: Any) -> float:
        if self.choices is not None:
            return float(trial.suggest_categorical(self.name, list(self.choices)))
        if self.integer:
            return float(trial.suggest_int(self.name, int(self.low), int(self.high)))
        return float(trial.suggest_float(self.name, self.low, self.high))

    def native(self, v: float) -> Any:
        """The value in the type the distribution uses (for enqueueing a known point)."""
        if self.choices is not None:
            return next(c for c in self.choices if abs(v - c) < 1e-9)
        return int(round(v)) if self.integer else float(v)


def parse_space(text: str) -> Space:
    """``NAME=LO..HI`` (whole numbers: an integer range) or ``NAME=a,b,c`` (choices).

    >>> parse_space("applications_per_week=2..7")
    Space(name='applications_per_week', low=2.0, high=7.0, choices=None, integer=True)
    >>> parse_space("strength=2.5,3.75,5").choices
    (2.5, 3.75, 5.0)
    """
    name, sep, spec = text.partition("=")
    name = canonical(name.strip())
    if not sep or not spec:
        raise be.InputError("--space", text, "NAME=LO..HI or NAME=a,b,c")
    try:
        if ".." in spec:
            a, b = spec.split("..")
            lo, hi = float(a), float(b)
            if not lo < hi:
                raise be.InputError(f"--space {name}", spec, "LO < HI")
            whole = "." not in a and "." not in b
            return Space(name, lo, hi, integer=whole)
        choices = tuple(float(x) for x in spec.split(","))
    except ValueError:
        raise be.InputError(f"--space {name}", spec, "LO..HI or a,b,c (numbers)") from None
    if len(set(choices)) != len(choices):
        raise be.InputError(f"--space {name}", spec, "distinct choices")
    return Space(name, choices=choices)


@dataclass(frozen=True)
class Limit:
    """A tolerability limit: ``metric <= bound`` (or ``>=``)."""

    metric: str
    op: str
    bound: float

    def violation(self, v: float) -> float:
        """<= 0 when the limit holds."""
        if not math.isfinite(v):
            return 1.0
        return v - self.bound if self.op == "<=" else self.bound - v

    def shortfall(self, v: float) -> float:
        """How far ``v`` misses the limit, relative to the bound (0 when it holds).

        Relative, so limits on metrics of different scales add up (a bound of 0: absolute).

        >>> round(parse_limit("severe_erythema<=0.2").shortfall(0.25), 12)
        0.25
        """
        scale = abs(self.bound) if self.bound != 0 else 1.0
        return max(0.0, self.violation(v)) / scale

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


def parse_limit(text: str) -> Limit:
    """``METRIC<=X`` or ``METRIC>=X``.

    >>> parse_limit("severe_erythema<=0.2")
    Limit(metric='severe_erythema', op='<=', bound=0.2)
    """
    for op in ("<=", ">="):
        if op in text:
            m, _, b = text.partition(op)
            try:
                return Limit(m.strip(), op, float(b))
            except ValueError:
                break
    raise be.InputError("--limit", text, "METRIC<=X or METRIC>=X, e.g. severe_erythema<=0.2")


# --------------------------------------------------------------------------- the search


@dataclass
class SearchRecord:
    """One evaluated candidate of the search."""

    number: int
    point: dict[str, float]
    metrics: dict[str, float] | None
    feasible: bool
    error: str = ""


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )


def pareto_indices(scores: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated rows (every column to be maximised).

    >>> pareto_indices([(1, 0), (0, 1), (0, 0), (1, 0)])
    [0, 1]
    """
    out: list[int] = []
    seen: list[tuple[float, ...]] = []
    for i, s in enumerate(scores):
        if any(_dominates(t, s) for t in scores):
            continue
        if tuple(s) in seen:
            continue
        seen.append(tuple(s))
        out.append(i)
    return out


def search_pareto(
    evaluate: Callable[[Mapping[str, float]], Mapping[str, float]],
    space: Sequence[Space],
    objective: str,
    limits: Sequence[Limit],
    *,
    n_trials: int = 40,
    seed: int = 1,
    population_size: int = 12,
    enqueue: Sequence[Mapping[str, float]] = (),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[SearchRecord], list[int]]:
    """Multi-objective search (Optuna NSGA-II with constraints) over ``space``.

    Maximises ``objective`` and pushes each limited metric away from its bound (minimised for
    ``<=``, maximised for ``>=``); the limits are constraints. ``evaluate(point)`` returns the
    metrics of a point, or raises :class:`~imiqsim.errors.InputError` for a regimen that is
    not valid (that candidate is dropped). Points already evaluated are not evaluated again.

    Returns
    -------
    records : list of SearchRecord
    front : list of int
        Indices into ``records`` of the feasible, non-dominated, distinct candidates.

    Examples
    --------
    >>> sp = [Space("x", 0, 10, integer=True)]
    >>> recs, front = search_pareto(lambda p: {"y": p["x"], "c": p["x"]}, sp, "y",
    ...                             [parse_limit("c<=4")], n_trials=30, seed=2)
    >>> max(recs[i].point["x"] for i in front)
    4.0
    """
    import optuna
    from optuna.trial import TrialState

    if not space:
        raise be.InputError("space", list(space), "at least one dimension")
    if n_trials < 1:
        raise be.InputError("n_trials", n_trials, "at least 1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks constraints_func experimental
        sampler = optuna.samplers.NSGAIISampler(
            population_size=max(2, min(population_size, n_trials)),
            seed=seed,
            constraints_func=lambda t: t.user_attrs["constraints"],
        )
    directions = ["maximize"] + ["minimize" if lim.op == "<=" else "maximize" for lim in limits]
    study = optuna.create_study(directions=directions, sampler=sampler)
    for p in enqueue:
        if all(s.name in p and s.contains(p[s.name]) for s in space):
            study.enqueue_trial({s.name: s.native(p[s.name]) for s in space})
    cache: dict[tuple[float, ...], SearchRecord] = {}
    records: list[SearchRecord] = []
    for i in range(n_trials):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = study.ask()
            point = {s.name: s.suggest(trial) for s in space}
        key = tuple(point[s.name] for s in space)
        if key in cache:
            prev = cache[key]
            rec = SearchRecord(i, point, prev.metrics, prev.feasible, prev.error)
        else:
            try:
                m = dict(evaluate(point))
                viol = [lim.violation(float(m[lim.metric])) for lim in limits]
                rec = SearchRecord(i, point, m, all(v <= 0 for v in viol))
            except be.InputError as exc:
                rec = SearchRecord(i, point, None, False, str(exc))
            cache[key] = rec
        records.append(rec)
        if rec.metrics is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            viol = [lim.violation(float(rec.metrics[lim.metric])) for lim in limits]
            trial.set_user_attr("constraints", viol)
            vals = [float(rec.metrics[objective])] + [
                float(rec.metrics[lim.metric]) for lim in limits
            ]
            vals = [v if math.isfinite(v) else 0.0 for v in vals]
            study.tell(trial, vals)
        if progress:
            progress(i + 1, n_trials)
    feas = [i for i, r in enumerate(records) if r.feasible]
    scores = [
        [records[i].metrics[objective]]
        + [(-1 if lim.op == "<=" else 1) * records[i].metrics[lim.metric] for lim in limits]
        for i in feas
    ]
    # distinct points only: a candidate suggested twice appears once on the front
    front = [feas[j] for j in pareto_indices(scores)]
    seen: set[tuple[float, ...]] = set()
    uniq = []
    for i in front:
        key = tuple(records[i].point[s.name] for s in space)
        if key not in seen:
            seen.add(key)
            uniq.append(i)
    return records, uniq


def closest_candidates(
    records: Sequence[SearchRecord],
    space: Sequence[Space],
    objective: str,
    limits: Sequence[Limit],
    k: int = 3,
) -> list[int]:
    """The ``k`` distinct evaluated candidates that come closest to meeting every limit.

    For a search in which no candidate is feasible: candidates ordered by their total shortfall
    (:meth:`Limit.shortfall`, summed over the limits), then by the objective (higher first).

    >>> recs = [SearchRecord(0, {"x": 1.0}, {"y": 1.0, "c": 0.5}, False),
    ...         SearchRecord(1, {"x": 2.0}, {"y": 2.0, "c": 0.3}, False)]
    >>> closest_candidates(recs, [Space("x", 0, 3, integer=True)], "y", [parse_limit("c<=0.2")])
    [1, 0]
    """
    scored = []
    for i, r in enumerate(records):
        if r.metrics is None:
            continue
        miss = sum(lim.shortfall(float(r.metrics[lim.metric])) for lim in limits)
        obj = float(r.metrics[objective])
        scored.append((miss, -obj if math.isfinite(obj) else math.inf, i))
    out: list[int] = []
    seen: set[tuple[float, ...]] = set()
    for _, _, i in sorted(scored):
        key = tuple(records[i].point[s.name] for s in space)
        if key not in seen:
            seen.add(key)
            out.append(i)
        if len(out) == k:
            break
    return out


# --------------------------------------------------------------------------- the optimiser


@dataclass
class OptimiseResult:
    """The search, the re-evaluated front and the label regimen.

    ``trials``: every candidate of the search (its factors, metrics, ``feasible``, ``on_front``).
    ``front``: the front re-evaluated on a fresh seed (value, ``*_low``/``*_high`` CI of the
    objective and each limited metric, ``feasible`` at re-evaluation, ``validated`` inside the
    targets' regimen range, ``extrapolation`` reasons, ``regimen`` in words), best objective
    first. ``label``: the label regimen, evaluated like the front. ``closest``: when no searched
    candidate met every limit (:attr:`feasible_found` False, ``front`` empty), the candidates that
    came closest (least total shortfall, :func:`closest_candidates`), re-evaluated like the front;
    empty otherwise.
    """

    trials: pd.DataFrame
    front: pd.DataFrame
    label: dict[str, Any]
    objective: str
    limits: list[Limit]
    attrs: dict[str, Any] = field(default_factory=dict)
    closest: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def feasible_found(self) -> bool:
        """Whether any searched candidate met every limit (then ``front`` is not empty)."""
        return bool(self.attrs.get("feasible_found", not self.front.empty))

    def top(self, k: int = 3) -> pd.DataFrame:
        """The best ``k`` regimens that meet every limit at re-evaluation."""
        if self.front.empty:
            return self.front
        return self.front[self.front["feasible"]].head(k)

    def report(self, k: int = 3) -> str:
        """The report in Markdown: top regimens in words with CIs, vs the label regimen."""
        o = self.objective
        lines = [
            f"# Regimen optimiser: {self.attrs['indication']} ({self.attrs['scenario']})",
            "",
            f"> **Research use only.** {be.DISCLAIMER}",
            "",
            f"Objective: maximise `{o}`; limits: "
            + ", ".join(f"`{lim}`" for lim in self.limits)
            + f". Search: {self.attrs['n_trials']} candidates (NSGA-II), "
            f"{self.attrs['patients']} patients each, seed {self.attrs['seed']}; front and label "
            f"re-evaluated with {self.attrs['validate_patients']} patients on seed "
            f"{self.attrs['validate_seed']}. {self.attrs['common_random_numbers']}.",
            "",
            f"Validated range ({self.attrs['indication']} calibration targets "
            f"{', '.join(self.attrs['validated_range']['targets'])}): "
            + self.attrs["validated_range_text"]
            + ". Regimens outside it are extrapolations.",
            "",
            "## Label regimen",
            "",
            f"{self.label['regimen']}: {_fmt(self.label, o)}"
            + "".join(f"; {lim.metric} {_fmt(self.label, lim.metric)}" for lim in self.limits),
            "",
            "## Top regimens",
            "",
        ]
        top = self.top(k)
        if not self.feasible_found:
            lines += [
                f"**No regimen is feasible**: none of the {len(self.trials)} searched candidates "
                "met every limit, so there is no front. The closest candidates (least total "
                "shortfall of the limits, each relative to its bound), re-evaluated:",
                "",
            ]
            for rank, (_, r) in enumerate(self.closest.iterrows(), start=1):
                lines.append(
                    f"{rank}. {r['regimen']}: {o} {_fmt(r, o)}"
                    + "".join(f"; {lim.metric} {_fmt(r, lim.metric)}" for lim in self.limits)
                    + f"; shortfall in the search {r['search_shortfall']:.3f}"
                    + (" (the label regimen)." if r["is_label"] else ".")
                )
            if not self.closest.empty and self.closest["feasible"].any():
                lines += [
                    "",
                    f"Some of them met every limit when re-evaluated with "
                    f"{self.attrs['validate_patients']} patients: with "
                    f"{self.attrs['patients']} patients per candidate the search could not tell "
                    "them from the limits (more `patients` decides).",
                ]
            lines += [
                "",
                "## Closest candidates (re-evaluated)",
                "",
                _markdown_table(self.closest, self),
            ]
            return "\n".join(lines) + "\n"
        if top.empty:
            lines.append("No regimen of the front met every limit at re-evaluation.")
        for rank, (_, r) in enumerate(top.iterrows(), start=1):
            flag = (
                "inside the validated range"
                if r["validated"]
                else ("**extrapolation**: " + r["extrapolation"])
            )
            diff = ""
            if isinstance(r.get(f"{o}_diff_vs_label"), float) and math.isfinite(
                r[f"{o}_diff_vs_label"]
            ):
                diff = (
                    f"; vs label {r[f'{o}_diff_vs_label']:+.3f} "
                    f"({r[f'{o}_diff_low']:+.3f} to {r[f'{o}_diff_high']:+.3f})"
                )
            lines.append(
                f"{rank}. {r['regimen']}: {o} {_fmt(r, o)}"
                + "".join(f"; {lim.metric} {_fmt(r, lim.metric)}" for lim in self.limits)
                + f"{diff}. {flag}"
                + (" (the label regimen)." if r["is_label"] else ".")
            )
        lines += ["", "## Front (re-evaluated)", "", _markdown_table(self.front, self)]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict]:
            return df.astype(object).where(pd.notna(df), None).to_dict(orient="records")

        return {
            "objective": self.objective,
            "limits": [str(lim) for lim in self.limits],
            "attrs": self.attrs,
            "label": self.label,
            "feasible_found": self.feasible_found,
            "front": records(self.front),
            "closest": records(self.closest),
            "trials": records(self.trials),
            "disclaimer": be.DISCLAIMER_SHORT,
        }

    def write(self, out: str | Path) -> list[Path]:
        """Write ``optimise.json``, ``front.csv``, ``trials.csv``, ``report.md``, ``front.png``.

        With no feasible candidate ``front.csv`` holds the closest candidates (column
        ``feasible`` False; ``optimise.json`` says ``feasible_found: false``).
        """
        from imiqsim.analysis import figures

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "optimise.json", out / "front.csv", out / "trials.csv", out / "report.md"]
        paths[0].write_text(json.dumps(self.to_dict(), indent=2, default=_json_default))
        (self.front if self.feasible_found else self.closest).to_csv(paths[1], index=False)
        self.trials.to_csv(paths[2], index=False)
        paths[3].write_text(self.report())
        paths.append(figures.front_figure(self, out / "front.png"))
        return paths


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.integer, np.floating, np.bool_)):
        return x.item()
    return str(x)


def _fmt(row: Mapping[str, Any], m: str) -> str:
    v, lo, hi = row[m], row[f"{m}_low"], row[f"{m}_high"]
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:.3f} ({lo:.3f}-{hi:.3f})"


def _markdown_table(df: pd.DataFrame, res: OptimiseResult) -> str:
    cols = [res.objective] + [lim.metric for lim in res.limits]
    head = "| regimen | " + " | ".join(cols) + " | meets limits | validated range |"
    sep = "|" + "---|" * (len(cols) + 3)
    rows = [head, sep]
    for _, r in df.iterrows():
        rows.append(
            f"| {r['regimen']} | "
            + " | ".join(_fmt(r, c) for c in cols)
            + f" | {'yes' if r['feasible'] else 'no'} | "
            + ("inside" if r["validated"] else "extrapolation")
            + " |"
        )
    return "\n".join(rows)


def _row(est: Mapping[str, Estimate], metrics: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in metrics:
        e = est[m]
        out[m], out[f"{m}_low"], out[f"{m}_high"] = e.value, e.low, e.high
        out[f"{m}_n"], out[f"{m}_k"] = e.n, e.k
    return out


def label_point(scenario: be.Scenario, names: Sequence[str]) -> dict[str, float]:
    """The scenario's own regimen as values of the factors ``names``."""
    p = regimen_point(scenario)
    return {n: p[n] for n in names if n in p}


def optimise(
    target: str | be.Scenario,
    *,
    objective: str = "complete_clearance",
    limits: Sequence[str | Limit] = ("severe_erythema<=0.2", "rest_needed<=0.25"),
    space: Sequence[str | Space] = (
        "applications_per_week=2..7",
        "weeks=4..16",
        "strength=2.5,3.75,5",
    ),
    n_trials: int = 40,
    patients: int = 100,
    seed: int = 1,
    validate_patients: int = 500,
    validate_seed: int | None = None,
    followup_years: float = 0.0,
    population_size: int = 12,
    progress: Callable[[str, int, int], None] | None = None,
) -> OptimiseResult:
    """Search regimens for the best objective under tolerability limits.

    Parameters
    ----------
    target : str or Scenario
        An indication (``AK``, ``sBCC``, ``EGW``: its label preset is the base scenario) or a
        preset name, scenario file or cream scenario whose site, area and product kind are kept.
    objective : str
        The endpoint to maximise.
    limits : sequence of str or Limit
        ``METRIC<=X`` / ``METRIC>=X`` constraints.
    space : sequence of str or Space
        Regimen fields to search: ``NAME=LO..HI`` or ``NAME=a,b,c``
        (:data:`~imiqsim.analysis.factors.REGIMEN_FACTORS`).
    n_trials, population_size, seed : int
        Candidates evaluated, NSGA-II population, search seed (also the trial seed).
    patients : int
        Virtual patients per candidate (the same patients for every candidate).
    validate_patients, validate_seed : int
        Re-evaluation of the front and the label regimen (default seed: ``seed + 1``).
    followup_years : float
        Follow-up after assessment (0 unless a metric needs recurrence).
    progress : callable, optional
        ``progress(stage, done, total)``; stage ``"search"`` or ``"re-evaluate"``.

    Returns
    -------
    OptimiseResult

    Examples
    --------
    >>> r = optimise("AK", n_trials=20, patients=50)  # doctest: +SKIP
    >>> print(r.report())  # doctest: +SKIP
    """
    if isinstance(target, str) and target in be.LABEL_PRESETS:
        indication = target
        base = be.resolve(be.LABEL_PRESETS[target])
    else:
        base = as_scenario(target)
        indication = base.indication
    if base.regimen is None:
        raise be.InputError("target", base.name, "a cream scenario (the optimiser varies regimens)")
    lims = [x if isinstance(x, Limit) else parse_limit(x) for x in limits]
    dims = [x if isinstance(x, Space) else parse_space(x) for x in space]
    for d in dims:
        if d.name not in REGIMEN_FACTORS:
            raise be.InputError("--space", d.name, f"a regimen field: {', '.join(REGIMEN_FACTORS)}")
    if len({d.name for d in dims}) != len(dims):
        raise be.InputError("--space", [d.name for d in dims], "each field once")
    if validate_seed is None:
        validate_seed = seed + 1
    metrics = [objective] + [lim.metric for lim in lims if lim.metric != objective]
    search_vt = VirtualTrial(base, patients=patients, seed=seed, followup_years=followup_years)
    check_vt = VirtualTrial(
        base, patients=validate_patients, seed=validate_seed, followup_years=followup_years
    )
    # fail on an unknown metric before the search, on the label regimen
    label = check_vt.evaluate({}, metrics)

    def evaluate(point: Mapping[str, float]) -> dict[str, float]:
        r = search_vt.evaluate(point, metrics)
        return {m: r.estimates[m].value for m in metrics}

    def search_progress(done: int, total: int) -> None:
        if progress:
            progress("search", done, total)

    records, front = search_pareto(
        evaluate,
        dims,
        objective,
        lims,
        n_trials=n_trials,
        seed=seed,
        population_size=population_size,
        enqueue=[label_point(base, [d.name for d in dims])],
        progress=search_progress,
    )
    names = [d.name for d in dims]
    trows = []
    for i, r in enumerate(records):
        row = {
            "trial": r.number,
            **r.point,
            "feasible": r.feasible,
            "on_front": i in front,
            "error": r.error,
        }
        row.update(r.metrics or {})
        trows.append(row)
    trials = pd.DataFrame(trows)
    lp = label_point(base, names)
    label_row = {"regimen": base.treatment_text(), **lp, **_row(label.estimates, metrics)}
    label_row["feasible"] = all(lim.violation(label_row[lim.metric]) <= 0 for lim in lims)
    label_row["validated"] = not outside_validated(base)
    feasible_found = bool(front)
    # no feasible candidate: the closest ones (least shortfall) are re-evaluated and reported
    # instead, and the result says that no searched regimen met the limits
    shown = front if feasible_found else closest_candidates(records, dims, objective, lims)

    def reevaluate_progress(done: int, total: int) -> None:
        if progress:
            progress("re-evaluate", done, total)

    evaluated = check_vt.evaluate_many(
        [records[i].point for i in shown], metrics, progress=reevaluate_progress
    )
    frows = []
    for i, res in zip(shown, evaluated, strict=True):
        point = records[i].point
        out = outside_validated(check_vt.scenario_at(point))
        row = {"regimen": res.description, **point, **_row(res.estimates, metrics)}
        found = records[i].metrics
        assert found is not None  # the front and the closest are evaluated candidates
        row["search_" + objective] = found[objective]
        miss: float = 0.0
        for lim in lims:
            miss += lim.shortfall(float(found[lim.metric]))
        row["search_shortfall"] = miss
        row["feasible"] = all(lim.violation(row[lim.metric]) <= 0 for lim in lims)
        row["validated"] = not out
        row["extrapolation"] = "; ".join(out)
        row["is_label"] = all(abs(point[n] - lp.get(n, math.nan)) < 1e-9 for n in names)
        e, le = res.estimates[objective], label.estimates[objective]
        if e.k is not None and le.k is not None and e.n and le.n:
            d, lo, hi = be.newcombe_diff_ci(e.k, e.n, le.k, le.n)
        else:
            d, lo, hi = e.value - le.value, math.nan, math.nan
        row[f"{objective}_diff_vs_label"], row[f"{objective}_diff_low"] = d, lo
        row[f"{objective}_diff_high"] = hi
        frows.append(row)
    fdf = pd.DataFrame(frows)
    if not fdf.empty and feasible_found:
        fdf = fdf.sort_values(
            ["feasible", objective], ascending=[False, False], kind="stable"
        ).reset_index(drop=True)
    # the one not shown keeps the columns, with no rows
    front_df = fdf if feasible_found else fdf.iloc[0:0]
    closest_df = fdf.iloc[0:0] if feasible_found else fdf
    vr = validated_range(indication)
    attrs = {
        "indication": indication,
        "scenario": base.name,
        "space": [str(d) for d in dims],
        "n_trials": n_trials,
        "patients": patients,
        "seed": seed,
        "validate_patients": validate_patients,
        "validate_seed": validate_seed,
        "followup_years": followup_years,
        "common_random_numbers": search_vt.crn_note,
        "validated_range": vr,
        "validated_range_text": _range_text(vr),
        "difference_ci": "Newcombe score interval for independent arms (conservative here: "
        "both arms simulate the same virtual patients)",
        "feasible_found": feasible_found,
        "disclaimer": be.DISCLAIMER,
    }
    return OptimiseResult(trials, front_df, label_row, objective, lims, attrs, closest_df)


def _span(lohi: tuple[float, float]) -> str:
    lo, hi = lohi
    return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"


def _range_text(vr: Mapping[str, Any]) -> str:
    cyc = ", ".join(
        "continuous" if c is None else f"{c[0]} weeks on/{c[1]} off" for c in vr["cycles"]
    )
    return (
        f"strength {vr['strength'][0]:g}-{vr['strength'][1]:g}%, "
        f"{vr['applications_per_week'][0]}-{vr['applications_per_week'][1]} applications a week, "
        f"courses of {vr['weeks'][0]:g}-{vr['weeks'][1]:g} weeks, "
        f"leave-on {_span(vr['leave_on_hours'])} h, cycles: {cyc}"
    )
