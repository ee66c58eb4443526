"""Joint calibration: every calibrated parameter fitted at once against every published row.

What is fitted to what is data, not code:

* ``data/calibration.csv``: the published rows (copy of ``shared/targets/calibration.csv``);
* ``data/calibration_arms.csv``: for each row, the virtual arm that reproduces it (a preset, or a
  preset with scenario overrides, and a follow-up), the simulated endpoint compared with it and
  its likelihood; rows that are not independent checks of another row say so;
* ``model/calibrated.csv``: the calibrated parameters (global, or one indication's value), each
  with its search box, scale and biological meaning.

The objective is the negative log-likelihood (half the deviance) summed over rows:

* ``binomial``: the row's n (or an effective n from a 95% CI quoted in its note); the simulated
  proportion is clipped to ``[0.5/(N+1), 1 - 0.5/(N+1)]`` for ``N`` virtual patients;
* ``absolute`` (a proportion without n): a Gaussian penalty whose 95% band is +/-0.10;
* ``fold`` (PK figures): a Gaussian penalty on ln(simulated/published) whose 95% band is 2-fold;
* ``upper_bound``: zero below the published bound, the ``fold`` penalty above it;

plus a weak Gaussian prior on every parameter (on its search scale: centred on the box, standard
deviation half the box width), so a parameter no row constrains stays put. A row is a *hit* when
the simulated value is inside its published 95% CI, within +/-0.10, within 2-fold or below the
bound: the same tolerances in the fit, the report (:mod:`imiqsim.calibration_report`) and the
tests. Each row's signed residual ``r`` (``r**2 / 2`` is its term) is what the Laplace
approximation and the cross-validation emulator (:mod:`imiqsim.cv`) linearise.

The optimiser is CMA-ES (:mod:`cma`) on the parameters scaled to ``[0, 1]`` over their boxes
(log scale for ``log_scale`` parameters), with common random numbers (every evaluation simulates
the same virtual patients: same seed, same indices), staged patient counts (e.g. 100 patients per
arm, then 300), a wall-clock budget, and a checkpoint after every evaluation so an interrupted
run resumes exactly where it stopped (same numbers as an uninterrupted run when the budget does
not bind). Arms are simulated in worker processes. After the fit, a finite-difference Jacobian of
every row at the fitted values gives the Laplace posterior (mean, covariance on the search scale)
written to ``data/posterior.json`` with the fitted values written back to the parameter tables.

Examples
--------
>>> p = Problem.from_package()
>>> len(p.rows), len(p.params)
(34, 23)
>>> normalise_source("Lebwohl et al. 2004, J Am Acad Dermatol 50:714")
'Lebwohl et al. 2004'
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import json
import math
import os
import pickle
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imiqsim.errors import InputError

__all__ = [
    "DEFAULT_STAGES",
    "FIT_SEED",
    "LIKELIHOODS",
    "NO_N_TOLERANCE",
    "PK_FOLD",
    "ArmSpec",
    "CalibratedParameter",
    "Evaluator",
    "ModelSimulator",
    "Problem",
    "RowSpec",
    "Simulator",
    "Target",
    "calibrate",
    "fit",
    "jacobian",
    "laplace",
    "load_arms",
    "load_parameters",
    "load_targets",
    "normalise_source",
    "posterior_at_tables",
    "posterior_path",
    "write_posterior",
    "write_values",
]

#: seed of the calibration population (the report uses 7, the tests 99, validation 11)
FIT_SEED = 2024
#: absolute tolerance for a proportion published without n
NO_N_TOLERANCE = 0.10
#: fold tolerance for PK figures
PK_FOLD = 2.0
Z95 = 1.959963984540054
#: (virtual patients per arm, at most this many CMA-ES generations) per stage
DEFAULT_STAGES: tuple[tuple[int, int], ...] = ((100, 18), (300, 2))
#: row likelihoods of data/calibration_arms.csv
LIKELIHOODS = ("binomial", "absolute", "fold", "upper_bound")
ARM_KINDS = ("trial", "pk")
#: residual given to a row whose simulated value is undefined (no clearers to recur, ...)
NAN_RESIDUAL = 10.0
#: prior standard deviation as a fraction of the box width (search scale)
PRIOR_SD_FRACTION = 0.5
CHECKPOINT_VERSION = 1


# ----------------------------------------------------------------------------- published rows


def normalise_source(source: str) -> str:
    """One name per published document: the part of ``source`` before a comma or parenthesis.

    Examples
    --------
    >>> normalise_source("Aldara label section 6.1")
    'Aldara label'
    >>> normalise_source("Aldara product information (Australia)")
    'Aldara product information'
    """
    s = re.split(r"[,(]", source.strip())[0]
    s = re.split(r"\s+section\s+", s)[0]
    return " ".join(s.split())


def _n_of(text: str) -> int | None:
    m = re.match(r"\s*(\d+)", text or "")
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Target:
    """One published row of ``data/calibration.csv``."""

    id: str
    indication: str
    arm: str
    endpoint: str
    value: float
    n: int | None
    source: str
    note: str

    @property
    def fold(self) -> str:
        """The normalised source: a leave-one-trial-out fold."""
        return normalise_source(self.source)

    @property
    def quoted_ci(self) -> tuple[float, float] | None:
        """A 95% CI quoted in the note (``95% CI 60.4-74.1%``), as proportions."""
        m = re.search(r"95% CI ([0-9.]+)-([0-9.]+)%", self.note)
        return (float(m.group(1)) / 100, float(m.group(2)) / 100) if m else None

    def published_ci(self) -> tuple[float, float] | None:
        """The published 95% CI: quoted in the note, else Clopper-Pearson from n, else None."""
        if self.quoted_ci is not None:
            return self.quoted_ci
        if self.n:
            from imiqsim.trial.stats import clopper_pearson_ci

            return clopper_pearson_ci(round(self.value * self.n), self.n)
        return None

    def effective_n(self) -> float | None:
        """n for the binomial likelihood: from a quoted CI (clustered data) or the row's n."""
        ci = self.quoted_ci
        if ci is not None:
            se = (ci[1] - ci[0]) / (2 * Z95)
            return self.value * (1 - self.value) / (se * se)
        return float(self.n) if self.n else None


def _read_table(text: str) -> list[dict[str, str]]:
    return list(
        csv.DictReader(
            line for line in text.splitlines() if line.strip() and not line.startswith("#")
        )
    )


def _package_text(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def load_targets() -> list[dict]:
    """The published figures (package copy of shared/targets/calibration.csv), as dicts."""
    return _read_table(_package_text("imiqsim", "data/calibration.csv"))


def _targets() -> dict[str, Target]:
    out = {}
    for r in load_targets():
        out[r["id"]] = Target(
            r["id"],
            r["indication"],
            r["arm"],
            r["endpoint"],
            float(r["value"]),
            _n_of(r.get("n", "")),
            r["source"],
            r.get("note", "") or "",
        )
    return out


def target_value(row_id: str) -> float:
    """Published value of one row of ``data/calibration.csv``."""
    t = _targets()
    if row_id not in t:
        raise InputError("target", row_id, "a row id of calibration.csv")
    return t[row_id].value


# ----------------------------------------------------------------------------- arms and rows


def parse_overrides(text: str, where: str = "overrides") -> tuple[tuple[str, Any], ...]:
    """``"field=value; ..."`` (values JSON) -> ``((field, value), ...)``.

    Examples
    --------
    >>> parse_overrides('regimen.max_weeks=12.0; site="scalp"')
    (('regimen.max_weeks', 12.0), ('site', 'scalp'))
    """
    out = []
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise InputError(where, part.strip(), "field=value pairs separated by ';'")
        k, v = part.split("=", 1)
        try:
            val = json.loads(v.strip())
        except json.JSONDecodeError:
            raise InputError(
                where, part.strip(), "a JSON value after '=' (3, 3.0, \"face\", true)"
            ) from None
        out.append((k.strip(), val))
    return tuple(out)


@dataclass(frozen=True)
class ArmSpec:
    """A virtual arm: a preset, scenario overrides, a follow-up and a kind (trial or pk)."""

    name: str
    preset: str
    overrides: tuple[tuple[str, Any], ...]
    followup_years: float
    kind: str

    def scenario(self):
        """The arm's :class:`~imiqsim.scenario.Scenario`, named after the arm."""
        from imiqsim.scenario import load_preset

        sc = load_preset(self.preset)
        ch = dict(self.overrides)
        if not ch and self.name == sc.name:
            return sc
        return sc.with_overrides(name=self.name, **ch)

    @functools.cached_property
    def indication(self) -> str:
        """Indication of the arm's preset."""
        return self.scenario().indication

    @functools.cached_property
    def event_kinds(self) -> frozenset[int]:
        """Codes of the event kinds in the arm's schedule (APPLY, WASH, FREEZE, ...)."""
        return frozenset(int(k) for k in self.scenario().events().kinds)


@dataclass(frozen=True)
class RowSpec:
    """How one published row is simulated and scored."""

    id: str
    arm: str
    endpoint: str
    likelihood: str
    weight: float = 1.0
    independent: str = ""
    approximation: str = ""


def load_arms(text: str | None = None) -> tuple[dict[str, ArmSpec], tuple[RowSpec, ...]]:
    """Read ``data/calibration_arms.csv`` (or ``text``): the arms and the row specs.

    Raises
    ------
    InputError
        A row with an unknown likelihood or kind, or two rows naming one arm differently.
    """
    text = text if text is not None else _package_text("imiqsim", "data/calibration_arms.csv")
    arms: dict[str, ArmSpec] = {}
    rows = []
    for r in _read_table(text):
        where = f"calibration_arms.csv row {r['id']}"
        if r["likelihood"] not in LIKELIHOODS:
            raise InputError(f"{where}: likelihood", r["likelihood"], f"one of {LIKELIHOODS}")
        if r["kind"] not in ARM_KINDS:
            raise InputError(f"{where}: kind", r["kind"], f"one of {ARM_KINDS}")
        arm = ArmSpec(
            r["arm"],
            r["preset"],
            parse_overrides(r["overrides"], f"{where}: overrides"),
            float(r["followup_years"] or 0.0),
            r["kind"],
        )
        if arm.name in arms and arms[arm.name] != arm:
            raise InputError(
                f"{where}: arm",
                arm.name,
                "the same preset, overrides, follow-up and kind as the other rows of this arm",
            )
        arms[arm.name] = arm
        rows.append(
            RowSpec(
                r["id"],
                r["arm"],
                r["endpoint"],
                r["likelihood"],
                float(r.get("weight") or 1.0),
                r.get("independent", "") or "",
                r.get("approximation", "") or "",
            )
        )
    return arms, tuple(rows)


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class CalibratedParameter:
    """One calibrated parameter: ``name`` (model parameter), ``scope`` (global or indication)."""

    name: str
    scope: str
    lower: float
    upper: float
    log_scale: bool
    meaning: str

    @property
    def key(self) -> str:
        """``name`` for a global parameter, ``name@INDICATION`` for an indication's value."""
        return self.name if self.scope == "global" else f"{self.name}@{self.scope}"

    def to_theta(self, x: float) -> float:
        """Value -> search scale (ln for log-scale parameters)."""
        return math.log(x) if self.log_scale else float(x)

    def from_theta(self, t: float) -> float:
        """Search scale -> value."""
        return math.exp(t) if self.log_scale else float(t)

    @property
    def theta_bounds(self) -> tuple[float, float]:
        return self.to_theta(self.lower), self.to_theta(self.upper)


def load_parameters(text: str | None = None) -> tuple[CalibratedParameter, ...]:
    """Read ``model/calibrated.csv`` (or ``text``).

    Raises
    ------
    InputError
        A box that is empty or not positive on a log scale, or a repeated key.
    """
    text = text if text is not None else _package_text("imiqsim.model", "calibrated.csv")
    out: list[CalibratedParameter] = []
    for r in _read_table(text):
        lo, hi = float(r["lower"]), float(r["upper"])
        log = r["log_scale"].strip().lower() in ("true", "1", "yes")
        p = CalibratedParameter(r["name"], r["scope"], lo, hi, log, r.get("meaning", ""))
        if not lo < hi or (log and lo <= 0):
            raise InputError(
                f"calibrated.csv {p.key}: lower, upper",
                (lo, hi),
                "lower < upper (and lower > 0 on a log scale)",
            )
        if not p.meaning.strip():
            raise InputError(f"calibrated.csv {p.key}: meaning", "", "a biological meaning")
        if p.key in {q.key for q in out}:
            raise InputError("calibrated.csv", p.key, "each parameter (and scope) once")
        out.append(p)
    return tuple(out)


def current_values(params: Sequence[CalibratedParameter] | None = None) -> dict[str, float]:
    """Current table value of every calibrated parameter, keyed ``param`` or ``param@IND``."""
    from imiqsim.model import get_model

    m = get_model()
    out = {}
    for p in params if params is not None else load_parameters():
        if p.scope == "global":
            out[p.key] = m.parameter(p.name).value
        else:
            ip = m.indication_parameters[p.scope]
            out[p.key] = ip[p.name].value if p.name in ip else m.parameter(p.name).value
    return out


@functools.lru_cache(maxsize=1)
def _indication_keys() -> frozenset[str]:
    """The calibrated keys of ``model/calibrated.csv`` that belong to one indication."""
    return frozenset(p.key for p in load_parameters() if p.scope != "global")


def overrides_for(values: dict[str, float], indication: str) -> dict[str, float]:
    """The parameter overrides of one indication's arms: global keys and ``name@indication``.

    A global key does not reach an indication that has its own calibrated key of that name
    (``patient_susceptibility_sd`` is AK's and sBCC's; warts have
    ``patient_susceptibility_sd@EGW``), whether or not that key is among ``values``: a block fit
    of the global key leaves the EGW table value alone.

    >>> overrides_for({"x@EGW": 2.0, "x": 1.0, "y": 3.0}, "EGW")
    {'x': 2.0, 'y': 3.0}
    >>> overrides_for({"x@EGW": 2.0, "x": 1.0}, "AK")
    {'x': 1.0}
    >>> overrides_for({"patient_susceptibility_sd": 1.0}, "EGW")
    {}
    """
    own = _indication_keys()
    out = {k: v for k, v in values.items() if "@" not in k and f"{k}@{indication}" not in own}
    for k, v in values.items():
        name, _, ind = k.partition("@")
        if ind == indication:
            out[name] = v
    return out


# ----------------------------------------------------------------------------- simulators


class Simulator(Protocol):
    """What the fit needs of a simulator (the model, or a stand-in in tests)."""

    def arm_names(self) -> list[str]: ...

    def run_arm(
        self, arm: str, values: dict[str, float], patients: int, seed: int
    ) -> dict[str, dict]: ...

    def depends(self, arm: str, key: str) -> bool: ...


@dataclass(frozen=True)
class ModelSimulator:
    """Simulates the arms of ``data/calibration_arms.csv`` with the model."""

    arms: dict[str, ArmSpec]

    def arm_names(self) -> list[str]:
        return list(self.arms)

    def depends(self, arm: str, key: str) -> bool:
        """Whether the arm can depend on a parameter key.

        Indication keys reach their own indication's arms only, and a global key does not reach
        the arms of an indication with its own key of that name; a parameter that only event
        assignments read (:attr:`imiqsim.model.Model.event_only_parameters`: the freeze-time
        response) reaches only the arms whose schedule has such an event.
        """
        spec = self.arms[arm]
        # the key reaches the arm exactly when overrides_for passes it to the arm's indication
        reached = overrides_for({key: 1.0}, spec.indication)
        if not reached:
            return False
        from imiqsim.model import get_model

        kinds = get_model().event_only_parameters.get(next(iter(reached)))
        return kinds is None or bool(kinds & spec.event_kinds)

    def run_arm(self, arm: str, values: dict[str, float], patients: int, seed: int) -> dict:
        """Endpoints of one arm: ``{endpoint: {"value", "ci95", ...}}``.

        A trial arm gives every endpoint of :func:`imiqsim.trial.endpoints.endpoints`; a pk arm
        ``serum_cmax_mean`` (ng/mL) and ``urine_fraction_mean`` (of the applied dose), each a
        population mean with mean +/- 1.96 SE.
        """
        spec = self.arms[arm]
        sc = spec.scenario()
        ov = overrides_for(values, sc.indication)
        if spec.kind == "pk":
            return _pk_endpoints(sc, ov, patients, seed)
        from imiqsim.trial import run_trial

        tr = run_trial(
            [sc], patients=patients, seed=seed, followup_years=spec.followup_years, overrides=ov
        )
        return _plain(tr.arms[0].endpoints)


@dataclass(frozen=True)
class FixedSimulator:
    """Another simulator with some parameters held at given values in every arm.

    ``fixed`` maps keys as :func:`overrides_for` reads them (``name`` or ``name@IND``) to
    values; the fitted values of a candidate never include these keys (see
    :meth:`Problem.restricted`). Its ``repr`` (with ``fixed``) enters the checkpoint
    fingerprint, so a checkpoint made with other fixed values is refused.
    """

    base: Any
    fixed: tuple[tuple[str, float], ...]

    def arm_names(self) -> list[str]:
        return self.base.arm_names()

    def depends(self, arm: str, key: str) -> bool:
        return self.base.depends(arm, key)

    def run_arm(self, arm: str, values: dict[str, float], patients: int, seed: int) -> dict:
        return self.base.run_arm(arm, {**dict(self.fixed), **values}, patients, seed)


def _plain(e: dict) -> dict:
    out = {}
    for k, v in e.items():
        out[k] = {
            "value": None if v.get("value") is None else float(v["value"]),
            "ci95": [None if c is None else float(c) for c in (v.get("ci95") or (None, None))],
            "n": v.get("n"),
        }
    return out


def _mean_ci(v: np.ndarray) -> dict:
    v = v[np.isfinite(v)]
    mean = float(np.mean(v))
    se = float(np.std(v, ddof=1) / math.sqrt(v.size)) if v.size > 1 else 0.0
    return {"value": mean, "ci95": [mean - Z95 * se, mean + Z95 * se], "n": int(v.size)}


def _pk_endpoints(sc, overrides: dict, patients: int, seed: int) -> dict:
    from imiqsim.engine.run import run_batch
    from imiqsim.model import get_model
    from imiqsim.population import sample_population

    m = get_model()
    base = sc.model_parameters(m, overrides)
    pop = sample_population(base, sc.indication, patients, seed, model=m, site=sc.site)
    t = np.arange(0.0, sc.events().end_h() + 48.0, 24.0)
    res = run_batch(m, pop.P, sc.events(), t)
    cmax = res.peak[:, list(res.tracked).index("serum_conc_ng_ml")]
    applied = res.Y[:, -1, m.state_index("applied")]
    urine = res.Y[:, -1, m.state_index("urine")] / np.maximum(applied, 1e-12)
    return {"serum_cmax_mean": _mean_ci(cmax), "urine_fraction_mean": _mean_ci(urine)}


# ----------------------------------------------------------------------------- the objective


def row_residual(
    row: RowSpec, target: Target, sim: float | None, n_sim: int, *, weighted: bool = True
) -> float:
    """Signed residual of one row: ``r**2 / 2`` is its negative log-likelihood term.

    Parameters
    ----------
    row, target
        The row's spec and published figure.
    sim : float or None
        Simulated value (None or NaN: :data:`NAN_RESIDUAL`).
    n_sim : int
        Virtual patients per arm (clips a simulated proportion away from 0 and 1).
    weighted : bool
        Multiply by ``sqrt(row.weight)``.

    Examples
    --------
    >>> t = Target("x", "AK", "", "", 0.5, 100, "s", "")
    >>> row_residual(RowSpec("x", "a", "e", "binomial"), t, 0.5, 100)
    0.0
    >>> round(row_residual(RowSpec("x", "a", "e", "absolute"), t, 0.6, 100), 3)
    1.96
    """
    if sim is None or not math.isfinite(sim):
        r = NAN_RESIDUAL
    elif row.likelihood == "binomial":
        n = target.effective_n()
        if not n:
            raise InputError(f"row {row.id}: likelihood", "binomial", "a row with n or a 95% CI")
        p = min(max(target.value, 0.0), 1.0)
        eps = 0.5 / (n_sim + 1)
        q = min(max(sim, eps), 1 - eps)
        k = p * n
        dev = 2.0 * (_xlogy(k, p / q) + _xlogy(n - k, (1 - p) / (1 - q)))
        r = math.copysign(math.sqrt(max(dev, 0.0)), q - p)
    elif row.likelihood == "absolute":
        r = (sim - target.value) / (NO_N_TOLERANCE / Z95)
    else:
        s = math.log(PK_FOLD) / Z95
        lr = math.log(max(sim, 1e-300) / target.value)
        r = lr / s if row.likelihood == "fold" else max(lr, 0.0) / s
    return r * math.sqrt(row.weight) if weighted else r


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * math.log(y)


def row_hit(row: RowSpec, target: Target, sim: float | None) -> bool | None:
    """Whether a simulated value meets the row's tolerance (None: no simulated value)."""
    if sim is None or not math.isfinite(sim):
        return None
    if row.likelihood == "binomial":
        lo, hi = target.published_ci() or (target.value, target.value)
        return lo <= sim <= hi
    if row.likelihood == "absolute":
        return abs(sim - target.value) <= NO_N_TOLERANCE + 1e-12
    if row.likelihood == "fold":
        return target.value / PK_FOLD <= sim <= target.value * PK_FOLD
    return sim <= target.value


def row_miss(row: RowSpec, target: Target, sim: float | None) -> float | None:
    """Size of a miss: points outside the CI/tolerance, or the fold for PK rows (0 for a hit)."""
    hit = row_hit(row, target, sim)
    if hit is None:
        return None
    if hit:
        return 0.0
    assert sim is not None
    if row.likelihood == "binomial":
        lo, hi = target.published_ci() or (target.value, target.value)
        return sim - hi if sim > hi else sim - lo
    if row.likelihood == "absolute":
        return sim - target.value
    return sim / target.value


def tolerance_text(row: RowSpec, target: Target) -> str:
    """The row's criterion in words (the same in the fit, the report and the tests)."""
    if row.likelihood == "binomial":
        if target.quoted_ci is not None:
            return "inside the published 95% CI (quoted with the row)"
        return f"inside the published 95% CI (Clopper-Pearson, n={target.n})"
    if row.likelihood == "absolute":
        return f"within +/-{NO_N_TOLERANCE:.2f} of the published value (n not given)"
    if row.likelihood == "fold":
        return f"within {PK_FOLD:g}-fold"
    return "below the published upper bound"


@dataclass(frozen=True)
class Problem:
    """What is fitted: published rows, their specs, the calibrated parameters, a simulator."""

    targets: dict[str, Target]
    rows: tuple[RowSpec, ...]
    params: tuple[CalibratedParameter, ...]
    simulator: Any

    @classmethod
    def from_package(cls) -> Problem:
        """The package's tables and the model simulator."""
        targets = _targets()
        arms, rows = load_arms()
        ids = [r.id for r in rows]
        missing = sorted(set(targets) - set(ids))
        unknown = sorted(set(ids) - set(targets))
        if missing or unknown:
            raise InputError(
                "calibration_arms.csv",
                {"rows without an arm": missing, "unknown rows": unknown},
                "one line per row of data/calibration.csv",
            )
        return cls(targets, rows, load_parameters(), ModelSimulator(arms))

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def restricted(
        self, keys: Sequence[str] | None = None, fixed: dict[str, float] | None = None
    ) -> Problem:
        """The same rows with only ``keys`` fitted (a block fit) and ``fixed`` values held.

        Parameters
        ----------
        keys : sequence of str, optional
            Calibrated keys to fit (``name`` or ``name@IND``; default: all). The others keep
            their table values in every evaluation.
        fixed : dict, optional
            Parameter values held in every arm, keyed ``name`` or ``name@IND``: any model
            parameter, or a calibrated key that is not fitted.

        Raises
        ------
        InputError
            An unknown or repeated key, a fixed key that is also fitted, or a value outside the
            parameter's bounds (``model/parameter_bounds.csv``).
        """
        from imiqsim.model.bounds import check_parameter

        known = self.keys
        keys = list(known if keys is None else keys)
        for k in keys:
            if k not in known:
                raise InputError("--only", k, f"calibrated keys: {', '.join(known)}")
        if len(set(keys)) != len(keys) or not keys:
            raise InputError("--only", ",".join(keys), "one or more different calibrated keys")
        fixed = dict(fixed or {})
        for k, v in fixed.items():
            if k in keys:
                raise InputError(
                    "--fix", k, "a parameter that is not fitted (leave it out of --only)"
                )
            check_parameter(k.partition("@")[0], v, f"--fix {k}")  # parameter_bounds.csv
        params = tuple(p for p in self.params if p.key in set(keys))
        sim = (
            FixedSimulator(self.simulator, tuple(sorted(fixed.items())))
            if fixed
            else self.simulator
        )
        return Problem(self.targets, self.rows, params, sim)

    def row(self, row_id: str) -> RowSpec:
        for r in self.rows:
            if r.id == row_id:
                return r
        raise InputError("row", row_id, "a row id of calibration.csv")

    def arms_of(self, row_ids: Iterable[str] | None = None) -> list[str]:
        """Arms needed for some rows (default all), in simulator order."""
        need = {r.arm for r in self.rows if row_ids is None or r.id in set(row_ids)}
        return [a for a in self.simulator.arm_names() if a in need]

    # scales ---------------------------------------------------------------------------------
    def theta_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        b = np.array([p.theta_bounds for p in self.params])
        return b[:, 0], b[:, 1]

    def to_theta(self, values: dict[str, float]) -> np.ndarray:
        lo, hi = self.theta_bounds()
        t = np.array([p.to_theta(values[p.key]) for p in self.params])
        return np.clip(t, lo, hi)

    def values(self, theta: Sequence[float]) -> dict[str, float]:
        return {p.key: p.from_theta(float(t)) for p, t in zip(self.params, theta, strict=True)}

    def to_unit(self, theta: np.ndarray) -> np.ndarray:
        lo, hi = self.theta_bounds()
        return (np.asarray(theta) - lo) / (hi - lo)

    def from_unit(self, u: Sequence[float]) -> np.ndarray:
        lo, hi = self.theta_bounds()
        return lo + np.clip(np.asarray(u, dtype=float), 0.0, 1.0) * (hi - lo)

    def prior(self) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean and standard deviation on the search scale."""
        lo, hi = self.theta_bounds()
        return 0.5 * (lo + hi), PRIOR_SD_FRACTION * (hi - lo)

    # scoring --------------------------------------------------------------------------------
    def row_values(self, arm_results: dict[str, dict], row_ids=None) -> dict[str, float | None]:
        """Simulated value of each row from its arm's endpoints."""
        out: dict[str, float | None] = {}
        for r in self.rows:
            if row_ids is not None and r.id not in row_ids:
                continue
            e = arm_results[r.arm].get(r.endpoint)
            if e is None:
                raise InputError(f"row {r.id}: endpoint", r.endpoint, f"an endpoint of arm {r.arm}")
            out[r.id] = e["value"]
        return out

    def residuals(
        self, sims: dict[str, float | None], n_sim: int, exclude: Iterable[str] = ()
    ) -> np.ndarray:
        """Weighted residuals of the rows not excluded, in row order."""
        ex = set(exclude)
        return np.array(
            [
                row_residual(r, self.targets[r.id], sims[r.id], n_sim)
                for r in self.rows
                if r.id not in ex
            ]
        )

    def prior_residuals(self, theta: np.ndarray) -> np.ndarray:
        mu, sd = self.prior()
        return (np.asarray(theta) - mu) / sd

    def objective(
        self,
        sims: dict[str, float | None],
        n_sim: int,
        theta: np.ndarray,
        exclude: Iterable[str] = (),
    ) -> float:
        """Negative log-posterior: half the summed squared residuals plus the prior term."""
        r = self.residuals(sims, n_sim, exclude)
        pr = self.prior_residuals(theta)
        return float(0.5 * (r @ r) + 0.5 * (pr @ pr))

    def fingerprint(self) -> str:
        """Hash of the rows, their specs and the parameter boxes (guards a resumed checkpoint)."""
        h = hashlib.sha256()
        for r in self.rows:  # what the numbers depend on, not the descriptive columns
            t = self.targets[r.id]
            h.update(repr((r.id, r.arm, r.endpoint, r.likelihood, r.weight)).encode())
            h.update(repr((t.value, t.n, t.quoted_ci)).encode())
        arms = getattr(self.simulator, "arms", None)
        if isinstance(arms, dict):
            h.update(repr(sorted(arms.items())).encode())
        else:
            h.update(repr(self.simulator).encode())
        h.update(repr([(p.key, p.lower, p.upper, p.log_scale) for p in self.params]).encode())
        return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- evaluation


def _arm_task(args: tuple) -> dict:
    simulator, arm, values, patients, seed = args
    return simulator.run_arm(arm, values, patients, seed)


class Evaluator:
    """Runs arm simulations here or in a persistent pool of spawned worker processes.

    Parameters
    ----------
    simulator : Simulator
    workers : int
        1: in this process; more: that many spawned processes (kept for the evaluator's life).
    """

    def __init__(self, simulator: Any, workers: int = 1) -> None:
        if workers < 1 or workers > 64:
            raise InputError("workers", workers, "a whole number from 1 to 64")
        self.simulator = simulator
        self.workers = workers
        self._pool: Any = None

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(
        self,
        jobs: Sequence[tuple[str, dict[str, float]]],
        patients: int,
        seed: int,
        on_done: Callable[[int, dict], None],
    ) -> None:
        """Simulate ``(arm, values)`` jobs; ``on_done(index, endpoints)`` here as each finishes."""
        items = [(self.simulator, a, v, patients, seed) for a, v in jobs]
        if self.workers == 1 or len(items) <= 1:
            for i, it in enumerate(items):
                on_done(i, _arm_task(it))
            return
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        from imiqsim.trial.executors import _single_threaded, _worker_init

        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_worker_init,
            )
        pending = {
            self._pool.submit(_single_threaded, _arm_task, it): i for i, it in enumerate(items)
        }
        try:
            while pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for f in done:
                    on_done(pending.pop(f), f.result())
        except BaseException:
            for f in pending:
                f.cancel()
            raise


def evaluate(
    problem: Problem,
    thetas: Sequence[np.ndarray],
    patients: int,
    seed: int,
    evaluator: Evaluator,
    arms: Sequence[str] | None = None,
    on_candidate: Callable[[int, dict[str, dict]], None] | None = None,
) -> list[dict[str, dict]]:
    """Simulate the arms (default all) at each theta; returns per-candidate ``{arm: endpoints}``.

    ``on_candidate(i, arm_results)`` is called as soon as every arm of candidate ``i`` is done.
    """
    arms = list(arms) if arms is not None else problem.arms_of()
    jobs, owner = [], []
    for i, th in enumerate(thetas):
        v = problem.values(th)
        for a in arms:
            jobs.append((a, v))
            owner.append((i, a))
    out: list[dict[str, dict]] = [{} for _ in thetas]

    def done(j: int, res: dict) -> None:
        i, a = owner[j]
        out[i][a] = res
        if on_candidate is not None and len(out[i]) == len(arms):
            on_candidate(i, out[i])

    evaluator.run(jobs, patients, seed, done)
    return out


# ----------------------------------------------------------------------------- checkpoints


def _dump(obj: Any) -> str:
    return base64.b64encode(pickle.dumps(obj)).decode()


def _load(s: str) -> Any:
    return pickle.loads(base64.b64decode(s))  # noqa: S301 - our own checkpoint file


def _write_json(path: Path | None, state: dict) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, default=_json_default))
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))


def _read_checkpoint(path: Path | None, problem: Problem, what: str) -> dict:
    if path is None or not path.exists():
        raise InputError(
            "--resume", str(path), f"an existing {what} checkpoint from an earlier run"
        )
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError("--checkpoint", str(path), f"a readable JSON checkpoint ({exc})") from None
    if state.get("version") != CHECKPOINT_VERSION or state.get("kind") != what:
        raise InputError("--checkpoint", str(path), f"a {what} checkpoint of this imiqsim")
    if state.get("fingerprint") != problem.fingerprint():
        raise InputError(
            "--checkpoint",
            str(path),
            "a checkpoint of the same rows and calibrated parameters (they changed since)",
        )
    return state


# ----------------------------------------------------------------------------- CMA-ES fit


def _stage_allotments(stages: Sequence[tuple[int, int]], budget_s: float | None) -> list[float]:
    if budget_s is None:
        return [math.inf] * len(stages)
    w = np.array([p * g for p, g in stages], dtype=float)
    return list(budget_s * np.cumsum(w) / w.sum())


def _validate_stages(stages: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    for s in stages:
        if len(s) != 2 or int(s[0]) < 2 or int(s[1]) < 1:
            raise InputError(
                "stages", list(stages), "(patients >= 2, generations >= 1) pairs, e.g. 100:24,300:6"
            )
        out.append((int(s[0]), int(s[1])))
    if not out:
        raise InputError("stages", list(stages), "at least one (patients, generations) stage")
    return out


def fit(
    problem: Problem,
    *,
    stages: Sequence[tuple[int, int]] = DEFAULT_STAGES,
    seed: int = FIT_SEED,
    budget_s: float | None = None,
    sigma0: float = 0.1,
    popsize: int | None = None,
    cma_seed: int = 1,
    workers: int = 1,
    start: dict[str, float] | None = None,
    exclude: Iterable[str] = (),
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict:
    """Fit every calibrated parameter jointly by CMA-ES.

    Parameters
    ----------
    problem : Problem
    stages : sequence of (patients, generations)
        Virtual patients per arm and the most CMA-ES generations of each stage, run in order
        on the same search distribution (rankings are compared only within a generation).
    seed : int
        Seed of the virtual patients: the same in every evaluation (common random numbers).
    budget_s : float, optional
        Wall-clock budget in seconds over every session of the run (resumes add up). Each stage
        gets a share in proportion to patients x generations; time one stage leaves over goes
        to the next. The final evaluation runs even when the budget is spent.
    sigma0 : float
        Initial CMA-ES step size on the unit-scaled parameters.
    popsize : int, optional
        Candidates per generation (default: CMA-ES's 4 + 3 ln(dimension)).
    cma_seed : int
        Seed of CMA-ES's sampling.
    workers : int
        Processes simulating arms.
    start : dict, optional
        Starting values (default: the current tables), clipped into the boxes.
    exclude : iterable of str
        Row ids left out of the objective.
    checkpoint : Path, optional
        JSON file written after every evaluation.
    resume : bool
        Continue from ``checkpoint``.
    progress : callable(done, total, message), optional
        Called after every evaluation (``total``: evaluations of every stage's generations).

    Returns
    -------
    dict
        ``values`` (fitted, by key), ``theta``, ``objective``, ``rows`` (simulated value of each
        row at the final stage), ``hits``, ``history`` (one entry per generation),
        ``evaluations``, ``elapsed_s``, ``stages``, ``seed``, ``stopped`` (why each stage ended).
    """
    import cma

    stages = _validate_stages(stages)
    exclude = sorted(set(exclude))
    if resume:
        state = _read_checkpoint(checkpoint, problem, "fit")
    else:
        x0 = problem.to_theta(start if start is not None else current_values(problem.params))
        u0 = np.clip(problem.to_unit(x0), 0.02, 0.98)
        opts = {
            "bounds": [0.0, 1.0],
            "seed": cma_seed,
            "verbose": -9,
            "verb_disp": 0,
            "verb_log": 0,
            "verb_filenameprefix": os.devnull,
        }
        if popsize:
            opts["popsize"] = int(popsize)
        rng_saved = np.random.get_state()
        es = cma.CMAEvolutionStrategy(list(u0), sigma0, opts)
        cma_rng = np.random.get_state()
        # CMA-ES samples with opts["randn"], a method of NumPy's global RandomState: pickling
        # the strategy copies that RandomState, and every generation runs on the unpickled
        # copy. Pickle it while the global state is the seeded one, so the copy (and every
        # candidate after it) does not depend on what the caller's global state was.
        es_dump = _dump(es)
        np.random.set_state(rng_saved)
        state = {
            "version": CHECKPOINT_VERSION,
            "kind": "fit",
            "fingerprint": problem.fingerprint(),
            "keys": problem.keys,
            "stages": stages,
            "seed": seed,
            "budget_s": budget_s,
            "exclude": exclude,
            "popsize": es.popsize,
            "stage": 0,
            "stage_gen": 0,
            "generation": 0,
            "evaluations": 0,
            "elapsed_s": 0.0,
            "es": es_dump,
            "rng": _dump(cma_rng),
            "pending": None,
            "best": None,  # best of the current stage: {"u", "f", "rows"}
            "history": [],
            "stopped": [],
            "final": None,
        }
    stages = [tuple(s) for s in state["stages"]]
    seed, budget_s, exclude = state["seed"], state["budget_s"], state["exclude"]
    lam = state["popsize"]
    total = sum(g for _, g in stages) * lam + 1
    allot = _stage_allotments(stages, budget_s)
    t0, e0 = time.monotonic(), float(state["elapsed_s"])

    def elapsed() -> float:
        return e0 + time.monotonic() - t0

    def save() -> None:
        state["elapsed_s"] = elapsed()
        _write_json(checkpoint, state)

    def score(u: np.ndarray, arm_results: dict, patients: int) -> tuple[float, dict]:
        th = problem.from_unit(u)
        sims = problem.row_values(arm_results)
        return problem.objective(sims, patients, th, exclude), sims

    def done_count() -> int:
        return state["evaluations"]

    # arms that no fitted key reaches (a block fit of indication keys) give the same endpoints
    # for every candidate: simulated once per stage (at any candidate: they do not depend on
    # it) and reused
    live = [
        a for a in problem.arms_of() if any(problem.simulator.depends(a, k) for k in problem.keys)
    ]
    if not live:
        raise InputError("--only", ",".join(problem.keys), "keys that reach a calibration arm")
    frozen_arms = [a for a in problem.arms_of() if a not in live]
    state.setdefault("frozen", {})

    def frozen(patients: int, u: np.ndarray) -> dict:
        key = str(patients)
        if frozen_arms and key not in state["frozen"]:
            th = problem.from_unit(u)
            state["frozen"][key] = evaluate(problem, [th], patients, seed, ev, frozen_arms)[0]
            save()
        return state["frozen"].get(key, {})

    with Evaluator(problem.simulator, workers) as ev:
        while state["stage"] < len(stages) and state["final"] is None:
            si = state["stage"]
            patients, max_gen = stages[si]
            es = _load(state["es"])
            why = None
            if state["pending"] is None:
                if state["stage_gen"] >= max_gen:
                    why = f"{max_gen} generations"
                elif elapsed() >= allot[si]:
                    why = "wall-clock budget"
                elif es.stop():
                    why = "CMA-ES: " + ", ".join(f"{k}" for k in es.stop())
            if why is not None:
                state["stopped"].append({"stage": si, "patients": patients, "why": why})
                state["stage"] += 1
                state["stage_gen"] = 0
                if state["stage"] < len(stages):
                    state["best"] = None
                save()
                continue
            # ask (on CMA-ES's own random stream: the same candidates after a resume)
            outer = np.random.get_state()
            if state["pending"] is None:
                pre_es, pre_rng = state["es"], state["rng"]
            else:
                pre_es, pre_rng = state["pending"]["es"], state["pending"]["rng"]
                es = _load(pre_es)
            np.random.set_state(_load(pre_rng))
            X = [np.asarray(x) for x in es.ask()]
            post_rng = np.random.get_state()
            np.random.set_state(outer)
            if state["pending"] is None:
                state["pending"] = {
                    "es": pre_es,
                    "rng": pre_rng,
                    "X": [x.tolist() for x in X],
                    "f": {},
                    "rows": {},
                }
                save()
            elif not np.allclose(np.array(state["pending"]["X"]), np.array(X), rtol=0, atol=0):
                raise InputError(
                    "--checkpoint", str(checkpoint), "a checkpoint this CMA-ES reproduces"
                )
            pend = state["pending"]
            todo = [i for i in range(len(X)) if str(i) not in pend["f"]]

            fixed_arms = frozen(patients, X[0])

            def got(
                j: int,
                arm_results: dict,
                todo=todo,
                X=X,
                pend=pend,
                patients=patients,
                si=si,
                fixed_arms=fixed_arms,
            ) -> None:
                i = todo[j]
                f, sims = score(X[i], {**fixed_arms, **arm_results}, patients)
                pend["f"][str(i)] = f
                pend["rows"][str(i)] = sims
                state["evaluations"] += 1
                save()
                if progress:
                    progress(
                        done_count(),
                        total,
                        f"stage {si + 1}/{len(stages)} ({patients} patients) generation "
                        f"{state['stage_gen'] + 1}: candidate {i + 1}/{len(X)} -> {f:.3f}",
                    )

            evaluate(
                problem,
                [problem.from_unit(X[i]) for i in todo],
                patients,
                seed,
                ev,
                arms=live,
                on_candidate=got,
            )
            fs = [pend["f"][str(i)] for i in range(len(X))]
            outer = np.random.get_state()
            np.random.set_state(post_rng)
            es.tell([list(x) for x in X], fs)
            state["rng"] = _dump(np.random.get_state())
            np.random.set_state(outer)
            state["es"] = _dump(es)
            ib = int(np.argmin(fs))
            if state["best"] is None or fs[ib] < state["best"]["f"]:
                state["best"] = {"u": X[ib].tolist(), "f": fs[ib], "rows": pend["rows"][str(ib)]}
            state["history"].append(
                {
                    "generation": state["generation"] + 1,
                    "stage": si,
                    "patients": patients,
                    "best": fs[ib],
                    "median": float(np.median(fs)),
                    "best_of_stage": state["best"]["f"],
                    "sigma": float(es.sigma),
                    "values": problem.values(problem.from_unit(X[ib])),
                    "elapsed_s": elapsed(),
                }
            )
            state["generation"] += 1
            state["stage_gen"] += 1
            state["pending"] = None
            save()
        if state["final"] is None:
            # the search mean, evaluated at the last stage's patients, against the stage's best
            patients = stages[-1][0]
            es = _load(state["es"])
            um = np.asarray(es.result.xfavorite)  # the mean, mapped into the box
            res = evaluate(problem, [problem.from_unit(um)], patients, seed, ev, live)[0]
            fm, sims = score(um, {**frozen(patients, um), **res}, patients)
            state["evaluations"] += 1
            best = state["best"]
            if best is None or fm <= best["f"]:
                best = {"u": um.tolist(), "f": fm, "rows": sims, "from": "CMA-ES mean"}
            else:
                best = {**best, "from": "best candidate of the last stage"}
            state["final"] = best
            save()
            if progress:
                progress(total, total, f"final: objective {best['f']:.3f} ({best['from']})")
    fin = state["final"]
    theta = problem.from_unit(np.asarray(fin["u"]))
    hits = {
        r.id: row_hit(r, problem.targets[r.id], fin["rows"][r.id])
        for r in problem.rows
        if r.id not in exclude
    }
    return {
        "values": problem.values(theta),
        "theta": theta.tolist(),
        "objective": fin["f"],
        "chosen": fin["from"],
        "rows": fin["rows"],
        "rows_patients": stages[-1][0],
        "hits": hits,
        "history": state["history"],
        "evaluations": state["evaluations"],
        "elapsed_s": state["elapsed_s"],
        "stages": [list(s) for s in stages],
        "seed": seed,
        "exclude": exclude,
        "stopped": state["stopped"],
        "popsize": lam,
    }


# ----------------------------------------------------------------------------- Jacobian, Laplace


def jacobian(
    problem: Problem,
    theta: Sequence[float],
    *,
    patients: int,
    seed: int,
    step: float = 0.15,
    workers: int = 1,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict:
    """Forward-difference Jacobian of every row's simulated value w.r.t. theta (search scale).

    Every evaluation uses the same virtual patients (common random numbers). A column only
    re-simulates the arms its parameter can reach (an indication's value: its own arms). A
    step that would leave the box goes the other way.

    Returns
    -------
    dict
        ``theta``, ``rows`` (ids), ``y0`` (simulated values at theta, NaN where undefined),
        ``J`` (rows x parameters), ``arms0`` (endpoints of every arm at theta), ``patients``,
        ``seed``, ``step``.
    """
    theta = np.asarray(theta, dtype=float)
    lo, hi = problem.theta_bounds()
    keys = problem.keys
    width = hi - lo
    if resume:
        state = _read_checkpoint(checkpoint, problem, "jacobian")
        if not np.allclose(state["theta"], theta) or state["patients"] != patients:
            raise InputError(
                "--resume", str(checkpoint), "a Jacobian checkpoint of the same values and patients"
            )
    else:
        state = {
            "version": CHECKPOINT_VERSION,
            "kind": "jacobian",
            "fingerprint": problem.fingerprint(),
            "theta": theta.tolist(),
            "patients": patients,
            "seed": seed,
            "step": step,
            "arms0": None,
            "columns": {},
        }
    arms = problem.arms_of()
    total = 1 + len(keys)
    with Evaluator(problem.simulator, workers) as ev:
        if state["arms0"] is None:
            state["arms0"] = evaluate(problem, [theta], patients, seed, ev)[0]
            _write_json(checkpoint, state)
        if progress:
            progress(1, total, "Jacobian: base point")
        y0 = _row_array(problem, state["arms0"])
        for j, k in enumerate(keys):
            if k in state["columns"]:
                continue
            h = step if problem.params[j].log_scale else step * width[j] / 4.0
            if theta[j] + h > hi[j]:
                h = -h
            th = theta.copy()
            th[j] += h
            sub = [a for a in arms if problem.simulator.depends(a, k)]
            res = dict(state["arms0"])
            res.update(evaluate(problem, [th], patients, seed, ev, arms=sub)[0])
            y1 = _row_array(problem, res)
            col = (y1 - y0) / h
            state["columns"][k] = [0.0 if not math.isfinite(c) else float(c) for c in col]
            _write_json(checkpoint, state)
            if progress:
                progress(2 + j, total, f"Jacobian: {k} ({len(sub)} arms)")
    J = np.array([state["columns"][k] for k in keys]).T
    return {
        "theta": theta.tolist(),
        "rows": [r.id for r in problem.rows],
        "y0": y0.tolist(),
        "J": J.tolist(),
        "arms0": state["arms0"],
        "patients": patients,
        "seed": seed,
        "step": step,
    }


def _row_array(problem: Problem, arm_results: dict) -> np.ndarray:
    sims = problem.row_values(arm_results)
    return np.array([np.nan if sims[r.id] is None else float(sims[r.id]) for r in problem.rows])


def linear_residuals(
    problem: Problem,
    y: np.ndarray,
    n_sim: int,
    exclude: Iterable[str] = (),
) -> np.ndarray:
    """Residuals of rows (not excluded) for an array of simulated values in row order."""
    sims = {r.id: float(v) for r, v in zip(problem.rows, y, strict=True)}
    return problem.residuals(sims, n_sim, exclude)


def residual_jacobian(
    problem: Problem, y: np.ndarray, J: np.ndarray, n_sim: int, exclude: Iterable[str] = ()
) -> np.ndarray:
    """d(residual)/d(theta) of the rows not excluded: d r / d y (central differences) x J."""
    ex = set(exclude)
    out = []
    for i, r in enumerate(problem.rows):
        if r.id in ex:
            continue
        t = problem.targets[r.id]
        yi = float(y[i])
        if not math.isfinite(yi):
            out.append(np.zeros(J.shape[1]))
            continue
        d = 1e-5 * max(abs(yi), 1e-3)
        drdy = (row_residual(r, t, yi + d, n_sim) - row_residual(r, t, yi - d, n_sim)) / (2 * d)
        out.append(drdy * J[i])
    return np.array(out)


def laplace(
    problem: Problem,
    y: np.ndarray,
    J: np.ndarray,
    n_sim: int,
    exclude: Iterable[str] = (),
) -> np.ndarray:
    """Laplace (Gauss-Newton) covariance of theta: ``(Jr' Jr + prior precision)^-1``.

    ``Jr`` is the residual Jacobian of the rows not excluded (:func:`residual_jacobian`); the
    prior is the fit's weak Gaussian prior (sd: half the box width on the search scale).
    """
    Jr = residual_jacobian(problem, np.asarray(y), np.asarray(J), n_sim, exclude)
    _, sd = problem.prior()
    H = Jr.T @ Jr + np.diag(1.0 / sd**2)
    cov = np.linalg.inv(H)
    return 0.5 * (cov + cov.T)


def parameter_intervals(problem: Problem, theta: np.ndarray, cov: np.ndarray) -> list[dict]:
    """95% intervals of the fitted values from a covariance on the search scale."""
    out = []
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    lo_b, hi_b = problem.theta_bounds()
    _, prior_sd = problem.prior()
    for j, p in enumerate(problem.params):
        lo = max(theta[j] - Z95 * sd[j], lo_b[j])
        hi = min(theta[j] + Z95 * sd[j], hi_b[j])
        out.append(
            {
                "key": p.key,
                "value": p.from_theta(theta[j]),
                "ci95": [p.from_theta(lo), p.from_theta(hi)],
                "sd_search_scale": float(sd[j]),
                # posterior sd / prior sd: near 1 means the rows hardly constrain the parameter
                "prior_ratio": float(sd[j] / prior_sd[j]),
                "scale": "log" if p.log_scale else "linear",
                "meaning": p.meaning,
            }
        )
    return out


# ----------------------------------------------------------------------------- posterior file


def posterior_path() -> Path:
    """``src/imiqsim/data/posterior.json`` of the installed package."""
    return Path(str(resources.files("imiqsim"))) / "data" / "posterior.json"


def write_posterior(
    path: Path,
    problem: Problem,
    theta: np.ndarray,
    cov: np.ndarray,
    jac: dict,
    command: str,
    extra: dict | None = None,
) -> Path:
    """Write the approximate posterior (mean, covariance on the search scale) and its Jacobian."""
    doc = {
        "description": (
            "Laplace approximation of the posterior of the calibrated parameters (imiqsim "
            "calibrate): mean and covariance of theta, the search scale (ln(value) for log-scale "
            "parameters); the Jacobian of every row at the mean is kept for imiqsim validate"
        ),
        "command": command,
        "keys": problem.keys,
        "scale": ["log" if p.log_scale else "linear" for p in problem.params],
        "lower": [p.lower for p in problem.params],
        "upper": [p.upper for p in problem.params],
        "mean": [float(t) for t in theta],
        "cov": np.asarray(cov).tolist(),
        # as written into the tables (6 significant digits)
        "values": {k: float(f"{v:.6g}") for k, v in problem.values(theta).items()},
        "intervals": parameter_intervals(problem, np.asarray(theta), np.asarray(cov)),
        "fingerprint": problem.fingerprint(),
        "jacobian": {k: jac[k] for k in ("rows", "y0", "J", "patients", "seed", "step")},
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=_json_default), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- writing back


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


def _append_indication_row(path: Path, model_dir: Path, p: CalibratedParameter, value, src) -> None:
    g = {
        r["name"]: r
        for r in _read_table((model_dir / "parameters.csv").read_text(encoding="utf-8"))
    }
    base = g.get(p.name)
    if base is None:
        raise InputError("calibrated.csv", p.key, "a parameter of parameters.csv")
    b = io.StringIO()
    csv.writer(b, lineterminator="\n").writerow(
        [p.scope, p.name, f"{value:.6g}", base["unit"], base["description"], src, "calibrated"]
    )
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + b.getvalue(), encoding="utf-8")


def write_values(
    values: dict[str, float],
    model_dir: Path,
    note: str,
    params: Sequence[CalibratedParameter] | None = None,
    n_rows: int | None = None,
    block: bool = False,
) -> list[str]:
    """Write fitted values into parameters.csv / indications.csv with their provenance.

    Each value's source becomes ``calibrated jointly against all <n> rows (<note>)``, or with
    ``block`` (only some keys were fitted, see :meth:`Problem.restricted`) says that the other
    calibrated values were held at their tables. An
    indication's value with no row in indications.csv gets one (unit and description from
    parameters.csv).

    Returns
    -------
    list of str
        The keys written.
    """
    params = params if params is not None else load_parameters()
    n_rows = n_rows if n_rows is not None else len(load_targets())
    src = f"calibrated jointly against all {n_rows} rows of data/calibration.csv ({note})"
    if block:
        src = (
            f"calibrated against all {n_rows} rows of data/calibration.csv with the other "
            f"calibrated values held at their tables (block fit: {note})"
        )
    changed = []
    for p in params:
        if p.key not in values:
            continue
        v = float(values[p.key])
        if p.scope == "global":
            ok = _rewrite_csv(
                model_dir / "parameters.csv", lambda d, p=p: d["name"] == p.name, v, src
            )
            if not ok:
                raise InputError("calibrated.csv", p.key, "a parameter of parameters.csv")
        else:
            path = model_dir / "indications.csv"
            ok = _rewrite_csv(
                path,
                lambda d, p=p: d["name"] == p.name and d["indication"] == p.scope,
                v,
                src,
            )
            if not ok:
                _append_indication_row(path, model_dir, p, v, src)
        changed.append(p.key)
    return changed


# ----------------------------------------------------------------------------- one call


@dataclass
class CalibrationRun:
    """Options of :func:`calibrate` (the ``imiqsim calibrate`` command)."""

    stages: Sequence[tuple[int, int]] = DEFAULT_STAGES
    seed: int = FIT_SEED
    budget_s: float | None = 50 * 60.0
    workers: int = 2
    sigma0: float = 0.1
    popsize: int | None = None
    jacobian_patients: int | None = None  # default: the last stage's
    checkpoint_dir: Path = field(default_factory=lambda: Path("out/calibration"))
    resume: bool = False
    #: 0: none; else the fraction of a Gauss-Newton step on the Jacobian taken after the fit
    #: (kept only if the simulated objective falls; the posterior is then taken there)
    gauss_newton_step: float = 0.0


def calibrate(
    run: CalibrationRun | None = None,
    *,
    problem: Problem | None = None,
    progress: Callable[..., None] | None = None,
    command: str = "imiqsim calibrate",
) -> dict:
    """The whole calibration: the CMA-ES fit, then the Jacobian and Laplace posterior at its values.

    Checkpoints: ``<checkpoint_dir>/fit_checkpoint.json`` and ``jacobian_checkpoint.json``; with
    ``resume`` both continue. Returns the fit's dict with ``posterior`` (``theta``, ``cov``,
    ``intervals``), ``jacobian`` and the timings (``fit_s``, ``jacobian_s``).
    """
    run = run or CalibrationRun()
    problem = problem or Problem.from_package()
    d = Path(run.checkpoint_dir)
    fck, jck = d / "fit_checkpoint.json", d / "jacobian_checkpoint.json"
    t0 = time.monotonic()
    res = fit(
        problem,
        stages=run.stages,
        seed=run.seed,
        budget_s=run.budget_s,
        sigma0=run.sigma0,
        popsize=run.popsize,
        workers=run.workers,
        checkpoint=fck,
        resume=run.resume and fck.exists(),
        progress=progress,
    )
    t1 = time.monotonic()
    theta = np.asarray(res["theta"])
    jp = run.jacobian_patients or int(res["stages"][-1][0])
    jac, posterior = _step_and_posterior(problem, theta, jp, run, jck, progress, res)
    res["posterior"] = posterior
    res["jacobian"] = {k: v for k, v in jac.items() if k != "arms0"}
    res["fit_s"], res["jacobian_s"] = t1 - t0, time.monotonic() - t1
    res["command"] = command
    return res


def _step_and_posterior(
    problem: Problem,
    theta: np.ndarray,
    jp: int,
    run: CalibrationRun,
    jck: Path,
    progress: Callable[[int, int, str], None] | None,
    res: dict,
) -> tuple[dict, dict]:
    """The Jacobian and posterior at ``theta``; with ``run.gauss_newton_step`` the damped step
    on it (``res`` updated in place when it is kept) and the posterior at the kept point."""
    jac, posterior = _posterior_at(problem, theta, jp, run, jck, progress)
    if run.gauss_newton_step > 0:
        step = gauss_newton_step(problem, theta, jac, jp, run.seed, run.gauss_newton_step, run)
        res["gauss_newton"] = step
        if step["kept"]:
            theta = np.asarray(step["theta"])
            res["theta"], res["values"] = theta.tolist(), problem.values(theta)
            res["objective"], res["rows"] = step["objective_after"], step["rows"]
            res["hits"] = {
                r.id: row_hit(r, problem.targets[r.id], step["rows"][r.id]) for r in problem.rows
            }
            res["rows_patients"] = jp
            jck2 = jck.with_name("jacobian_after_step_checkpoint.json")
            jac, posterior = _posterior_at(problem, theta, jp, run, jck2, progress)
    return jac, posterior


def gauss_newton_step(
    problem: Problem,
    theta: np.ndarray,
    jac: dict,
    patients: int,
    seed: int,
    weight: float,
    run: CalibrationRun | None = None,
) -> dict:
    """A damped Gauss-Newton step from ``theta`` on the rows' Jacobian, checked by simulation.

    The linearised optimum (:func:`imiqsim.cv.emulator_refit`: the fit's objective on the rows
    linearised at ``theta``, within the boxes) gives the direction; ``theta + weight x`` that
    step is simulated with the Jacobian's patients and seed and kept only if its objective is
    lower than the base point's (``jac["arms0"]``, the same patients). Returns ``theta`` (the
    kept point), ``kept``, ``weight``, ``objective_before``/``objective_after`` and ``rows``.
    """
    from imiqsim.cv import emulator_refit

    if not 0 < weight <= 1:
        raise InputError("gauss_newton_step", weight, "more than 0 and at most 1")
    theta = np.asarray(theta, dtype=float)
    y0 = np.array([np.nan if v is None else v for v in jac["y0"]], dtype=float)
    full = emulator_refit(problem, theta, y0, np.asarray(jac["J"], dtype=float), patients)
    lo, hi = problem.theta_bounds()
    trial = np.clip(theta + weight * (full - theta), lo, hi)
    before = problem.objective(problem.row_values(jac["arms0"]), patients, theta)
    workers = run.workers if run is not None else 1
    with Evaluator(problem.simulator, workers) as ev:
        arms = evaluate(problem, [trial], patients, seed, ev)[0]
    sims = problem.row_values(arms)
    after = problem.objective(sims, patients, trial)
    kept = bool(after < before)
    return {
        "weight": weight,
        "objective_before": before,
        "objective_after": after,
        "kept": kept,
        "theta": (trial if kept else theta).tolist(),
        "rows": sims if kept else problem.row_values(jac["arms0"]),
    }


def posterior_at_tables(
    run: CalibrationRun | None = None,
    *,
    problem: Problem | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    command: str = "imiqsim calibrate --posterior-only",
    values: dict[str, float] | None = None,
) -> dict:
    """No fit: the Jacobian and Laplace posterior at the current table values (or ``values``).

    With ``run.gauss_newton_step`` the damped step on that Jacobian follows (kept only if the
    simulated objective falls, as after a fit) and the posterior is taken at the kept point.
    Returns the same keys as :func:`calibrate` (``evaluations`` counts the simulations).
    """
    run = run or CalibrationRun()
    problem = problem or Problem.from_package()
    d = Path(run.checkpoint_dir)
    jck = d / "jacobian_checkpoint.json"
    theta = problem.to_theta(values if values is not None else current_values(problem.params))
    jp = run.jacobian_patients or int(_validate_stages(run.stages)[-1][0])
    t0 = time.monotonic()
    res: dict = {"chosen": "the current tables (no fit)"}
    jac, posterior = _step_and_posterior(problem, theta, jp, run, jck, progress, res)
    if "rows" not in res:  # no step, or a step that was not kept
        sims = problem.row_values(jac["arms0"])
        res.update(
            values=problem.values(theta),
            theta=theta.tolist(),
            objective=problem.objective(sims, jp, theta),
            rows=sims,
            rows_patients=jp,
            hits={r.id: row_hit(r, problem.targets[r.id], sims[r.id]) for r in problem.rows},
        )
    else:
        res["chosen"] = "a Gauss-Newton step from the current tables"
    step = res.get("gauss_newton")
    n_jac = 1 + len(problem.params)
    res.update(
        history=[],
        evaluations=n_jac + (0 if step is None else 1) + (n_jac if step and step["kept"] else 0),
        elapsed_s=time.monotonic() - t0,
        stages=[],
        seed=run.seed,
        posterior=posterior,
        jacobian={k: v for k, v in jac.items() if k != "arms0"},
        fit_s=0.0,
        jacobian_s=time.monotonic() - t0,
        command=command,
    )
    return res


def _posterior_at(
    problem: Problem,
    theta: np.ndarray,
    patients: int,
    run: CalibrationRun,
    checkpoint: Path,
    progress: Callable[[int, int, str], None] | None,
) -> tuple[dict, dict]:
    """The Jacobian of every row at ``theta`` (checkpointed) and the Laplace posterior there."""
    jac = jacobian(
        problem,
        theta,
        patients=patients,
        seed=run.seed,
        workers=run.workers,
        checkpoint=checkpoint,
        resume=run.resume and checkpoint.exists() and _same_theta(checkpoint, theta),
        progress=progress,
    )
    cov = laplace(problem, np.asarray(jac["y0"]), np.asarray(jac["J"]), patients)
    posterior = {
        "theta": np.asarray(theta).tolist(),
        "cov": cov.tolist(),
        "intervals": parameter_intervals(problem, theta, cov),
    }
    return jac, posterior


def _same_theta(path: Path, theta: np.ndarray) -> bool:
    try:
        return bool(np.allclose(json.loads(path.read_text())["theta"], theta))
    except (OSError, ValueError, KeyError):
        return False
