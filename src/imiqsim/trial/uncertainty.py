"""Virtual trials whose intervals include parameter uncertainty: ``run_trial(..., uncertainty=K)``.

The calibration writes an approximate posterior of the calibrated parameters
(``data/posterior.json``: mean and covariance on the search scale, ln(value) for log-scale
parameters; :func:`imiqsim.calibrate.write_posterior`). A trial with ``uncertainty=K`` draws K
parameter vectors from it (multivariate normal, clipped to the search boxes; reproducible for a
seed) and splits each arm's patients into K consecutive blocks: block k is simulated with draw k
(the same block and draw in every arm, so arms stay virtual twins). Endpoints are computed on
the pooled patients; their 95% interval combines the pooled sampling interval with the spread
of the endpoint between draws beyond what sampling explains:

    var_param = max(0, var_k(v_k) - K * se_pooled**2),   se = sqrt(se_pooled**2 + var_param)

(``v_k``: the endpoint in block k, ``se_pooled``: the pooled interval's half-width / 1.96).
Each endpoint keeps its sampling-only interval as ``ci95_sampling`` and adds ``parameter_sd``.
Differences between arms (``TrialResult.to_dict()``) remain sampling-only.

Examples
--------
>>> import numpy as np
>>> post = Posterior(["k"], ["log"], [0.1], [10.0], np.array([0.0]), np.array([[0.01]]))
>>> [round(d["k"], 4) for d in post.draw(2, seed=1)] == [round(d["k"], 4) for d in post.draw(2, 1)]
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imiqsim.errors import InputError
from imiqsim.scenario import Scenario

__all__ = ["Posterior", "combine_endpoint", "run_trial_uncertain"]

Z95 = 1.959963984540054
_DRAW_STREAM = 0x5EED


@dataclass(frozen=True)
class Posterior:
    """An approximate posterior of the calibrated parameters on their search scale."""

    keys: list[str]
    scale: list[str]
    lower: list[float]
    upper: list[float]
    mean: np.ndarray
    cov: np.ndarray
    command: str = ""

    @classmethod
    def load(cls, path: Path | None = None) -> Posterior:
        """Read ``data/posterior.json`` (or ``path``).

        Raises
        ------
        InputError
            The file is missing (run ``imiqsim calibrate --write``) or malformed.
        """
        from imiqsim.calibrate import posterior_path

        path = path or posterior_path()
        if not path.exists():
            raise InputError(
                "uncertainty",
                str(path),
                "a posterior written by `imiqsim calibrate --write` (the file is missing)",
            )
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            post = cls(
                list(d["keys"]),
                list(d["scale"]),
                [float(x) for x in d["lower"]],
                [float(x) for x in d["upper"]],
                np.asarray(d["mean"], dtype=float),
                np.asarray(d["cov"], dtype=float),
                str(d.get("command", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError("posterior", str(path), f"a posterior JSON file ({exc})") from None
        n = len(post.keys)
        if post.mean.shape != (n,) or post.cov.shape != (n, n):
            raise InputError("posterior", str(path), f"a mean of {n} and a {n}x{n} covariance")
        if "values" in d:  # written by the fit: its mean must still be what the tables say
            from imiqsim.calibrate import current_values, load_parameters

            cur = current_values(load_parameters())
            fitted = {k: float(v) for k, v in d["values"].items()}
            if set(fitted) != set(cur) or any(
                not math.isclose(fitted[k], cur[k], rel_tol=1e-4) for k in cur
            ):
                raise InputError(
                    "uncertainty",
                    str(path),
                    "a posterior of the current calibrated parameters and values (the tables "
                    "changed since it was written: rerun `imiqsim calibrate --write`, or "
                    "`imiqsim calibrate --posterior-only --write` to keep the values)",
                )
        return post

    def _theta_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = [math.log(v) if s == "log" else v for v, s in zip(self.lower, self.scale, strict=True)]
        hi = [math.log(v) if s == "log" else v for v, s in zip(self.upper, self.scale, strict=True)]
        return np.array(lo), np.array(hi)

    def draw(self, k: int, seed: int) -> list[dict[str, float]]:
        """``k`` parameter vectors (by key), reproducible for ``seed``."""
        if k < 1:
            raise InputError("uncertainty", k, "a whole number of parameter draws >= 1")
        rng = np.random.default_rng([int(seed), _DRAW_STREAM])
        n = len(self.keys)
        w, v = np.linalg.eigh(0.5 * (self.cov + self.cov.T))
        root = v * np.sqrt(np.clip(w, 0.0, None))
        z = rng.standard_normal((k, n))
        th = self.mean + z @ root.T
        lo, hi = self._theta_bounds()
        th = np.clip(th, lo, hi)
        out = []
        for row in th:
            out.append(
                {
                    key: (math.exp(t) if s == "log" else float(t))
                    for key, t, s in zip(self.keys, row, self.scale, strict=True)
                }
            )
        return out


def combine_endpoint(pooled: dict, per_draw: Sequence[float | None], percent: bool) -> dict:
    """Widen a pooled endpoint's 95% interval by the between-draw spread (module docstring)."""
    out = dict(pooled)
    v = pooled.get("value")
    ci = pooled.get("ci95") or (None, None)
    vals = np.array([x for x in per_draw if x is not None and math.isfinite(x)], dtype=float)
    if v is None or ci[0] is None or ci[1] is None or vals.size < 2:
        out["ci95_sampling"] = list(ci) if ci else None
        out["parameter_sd"] = None
        return out
    se_pool = (ci[1] - ci[0]) / (2 * Z95)
    var_param = max(0.0, float(np.var(vals, ddof=1)) - len(per_draw) * se_pool**2)
    se = math.sqrt(se_pool**2 + var_param)
    lo, hi = v - Z95 * se, v + Z95 * se
    if percent:
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    out["ci95_sampling"] = [ci[0], ci[1]]
    out["ci95"] = [min(lo, ci[0]), max(hi, ci[1])]
    out["parameter_sd"] = math.sqrt(var_param)
    return out


def _chunk(args: tuple) -> dict[str, Any]:
    from imiqsim.trial import outcomes as _outcomes

    return _outcomes.simulate_chunk(*args)


def _overrides_for(values: dict[str, float], indication: str) -> dict[str, float]:
    from imiqsim.calibrate import overrides_for

    return overrides_for(values, indication)


def run_trial_uncertain(
    arms: Sequence[str | Scenario],
    *,
    uncertainty: int,
    patients: int = 1000,
    seed: int = 1,
    workers: int = 1,
    chunk_size: int = 250,
    followup_years: float = 1.0,
    overrides: dict | None = None,
    immunosuppressed_fraction: float | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    scheduler: Any = None,
    scheduler_file: str | None = None,
    posterior: Posterior | None = None,
):
    """:func:`imiqsim.trial.run_trial` with ``uncertainty`` parameter draws (module docstring).

    Parameters
    ----------
    uncertainty : int
        Parameter draws K (2 to 200, at most one per patient).
    posterior : Posterior, optional
        Default: :meth:`Posterior.load` (``data/posterior.json``).
    overrides : dict, optional
        Parameter values set on top of every draw.
    Other parameters
        As :func:`imiqsim.trial.run_trial`.

    Returns
    -------
    TrialResult
        Outcomes carry a ``parameter_draw`` column; endpoints carry ``ci95`` (sampling and
        parameter uncertainty), ``ci95_sampling`` and ``parameter_sd``.
    """
    from imiqsim.trial.endpoints import endpoint, endpoints
    from imiqsim.trial.executors import chunk_starts, execute
    from imiqsim.trial.outcomes import TRACE_VARIABLES
    from imiqsim.trial.run import MAX_PATIENTS, ArmResult, TrialResult, plan_trial

    if (
        isinstance(uncertainty, bool)
        or not isinstance(uncertainty, int)
        or not (2 <= uncertainty <= 200)
    ):
        raise InputError("uncertainty", uncertainty, "a whole number of parameter draws, 2 to 200")
    if patients < uncertainty:
        raise InputError(
            "patients", patients, f"at least one patient per parameter draw ({uncertainty})"
        )
    plan = plan_trial(
        arms,
        patients=patients,
        seed=seed,
        workers=workers,
        chunk_size=chunk_size,
        followup_years=followup_years,
        overrides=overrides,
        immunosuppressed_fraction=immunosuppressed_fraction,
        max_patients=None if force else MAX_PATIENTS,
    )
    post = posterior or Posterior.load()
    draws = post.draw(uncertainty, seed)
    edges = np.round(np.linspace(0, patients, uncertainty + 1)).astype(int)
    jobs, args = [], []
    for ai, sc in enumerate(plan.scenarios):
        for k in range(uncertainty):
            ov = {**_overrides_for(draws[k], sc.indication), **(overrides or {})}
            for start, n in chunk_starts(int(edges[k + 1] - edges[k]), chunk_size):
                s0 = int(edges[k]) + start
                jobs.append((ai, k))
                args.append((sc, seed, s0, n, followup_years, ov, immunosuppressed_fraction))
    results: list[dict | None] = [None] * len(jobs)

    def keep(j: int, r: dict) -> None:
        results[j] = r

    execute(
        _chunk,
        args,
        on_done=keep,
        workers=workers,
        scheduler=scheduler,
        scheduler_file=scheduler_file,
        progress=progress,
    )
    arm_results = []
    for ai, (name, sc) in enumerate(zip(plan.names, plan.scenarios, strict=True)):
        parts, draw_of = [], []
        for (a, k), r in zip(jobs, results, strict=True):
            if a == ai and r is not None:
                parts.append(r)
                draw_of.append(k)
        df = pd.concat(
            [p["outcomes"].assign(parameter_draw=k) for p, k in zip(parts, draw_of, strict=True)],
            ignore_index=True,
        )
        df.insert(0, "arm", name)
        traces = {v: np.concatenate([p["traces"][v] for p in parts]) for v in TRACE_VARIABLES}
        ar = ArmResult(name, sc, df, parts[0]["t_days"], traces)
        pooled = endpoints(df.drop(columns=["parameter_draw"]))
        per = [
            endpoints(df[df["parameter_draw"] == k].drop(columns=["parameter_draw"]))
            for k in range(uncertainty)
        ]
        ar.endpoints = {
            nm: combine_endpoint(
                e, [p[nm].get("value") for p in per], percent=endpoint(nm).is_percent
            )
            for nm, e in pooled.items()
        }
        arm_results.append(ar)
    return TrialResult(arm_results, seed, patients, followup_years)
