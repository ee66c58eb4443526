"""Global sensitivity of trial outcomes to model parameters (SALib: Sobol and Morris).

Each sample point is a virtual trial of ``patients`` patients with common random numbers (the
same virtual patients at every point, see :mod:`imiqsim.analysis.evaluate`). Parameters vary
over ranges taken from the parameter table (:func:`imiqsim.analysis.factors.default_ranges`:
a width per provenance, fractions on the odds scale; overridable).

- ``method="sobol"``: Saltelli sampling (``n`` base samples, ``n * (D + 2)`` points), first-order
  ``S1`` and total-order ``ST`` indices with bootstrap 95% CIs.
- ``method="morris"``: elementary effects on ``n`` trajectories (``n * (D + 1)`` points):
  ``mu_star`` (with a bootstrap CI), ``mu`` and ``sigma``; the screening method for all
  parameters at once.

Convergence: the indices are computed again from the first half of the design (``n / 2`` base
samples or trajectories, a valid design of its own), so the result shows how they change when
``n`` doubles. Trajectories (``lesion_burden``, ``ifn_alpha``, ``lsr_score``, ...) get
time-resolved indices of the patients' mean at each output time (a heat map over time).

Ranking: how sure "the k-th strongest driver" is. :func:`rank_bootstrap` resamples the design's
units (trajectories, base samples) and the virtual patients (one draw for all points, so the
common random numbers stay common) and gives each parameter a 90% interval of its rank and the
share of resamples in which it is in the top ``top``: with few patients per point a point rank
is mostly Monte Carlo noise, and the interval says so.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from imiqsim.analysis import _backend as be
from imiqsim.analysis.evaluate import VirtualTrial
from imiqsim.analysis.factors import Range, default_ranges

__all__ = [
    "RANK_LEVEL",
    "SensitivityResult",
    "morris_effects",
    "rank_bootstrap",
    "sensitivity",
]

METHODS = ("sobol", "morris")
#: the index each method ranks parameters by
MAIN_INDEX = {"sobol": "ST", "morris": "mu_star"}
#: coverage of the bootstrap rank interval (``rank_low`` .. ``rank_high``)
RANK_LEVEL = 0.9


def morris_effects(U: np.ndarray, y: np.ndarray, d: int) -> np.ndarray:
    """Elementary effects of a Morris design: shape (trajectories, parameters[, columns of y]).

    ``U``: the design on the unit scale (``n * (d + 1)`` rows, one trajectory after another, one
    parameter changed per step); ``y``: the outputs at its rows, shape (rows,) or (rows, m). The
    effect of a step is its change of ``y`` divided by its signed change of ``U`` (as SALib).

    >>> U = np.array([[0, 0], [1, 0], [1, 1]], dtype=float)
    >>> morris_effects(U, np.array([0.0, 2.0, 2.5]), 2)
    array([[2. , 0.5]])
    """
    r = U.shape[0] // (d + 1)
    U3 = U[: r * (d + 1)].reshape(r, d + 1, d)
    dU = np.diff(U3, axis=1)  # (r, d steps, d parameters): one non-zero per step
    changed = np.argmax(np.abs(dU), axis=2)  # (r, steps)
    delta = np.take_along_axis(dU, changed[..., None], axis=2)[..., 0]
    y = np.asarray(y, dtype=float)
    cols = y.shape[1:]
    dy = np.diff(y[: r * (d + 1)].reshape(r, d + 1, *cols), axis=1)  # (r, steps, ...)
    ee = np.empty((r, d, *cols))
    ee[np.arange(r)[:, None], changed] = dy / delta.reshape(r, d, *([1] * len(cols)))
    return ee


def _sobol_total(y: np.ndarray, d: int, rows: np.ndarray) -> np.ndarray:
    """Total-order indices (Jansen; SALib's estimator) from base samples ``rows``: (d, ...)."""
    n = y.shape[0] // (d + 2)
    Y = y[: n * (d + 2)].reshape(n, d + 2, *y.shape[1:])[rows]
    A, AB, B = Y[:, 0], Y[:, 1 : d + 1], Y[:, d + 1]
    var = np.var(np.concatenate([A, B]), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 0.5 * np.mean((A[:, None] - AB) ** 2, axis=0) / var


def _ranks(index: np.ndarray) -> np.ndarray:
    """Rank of each parameter (1: the largest index) along the last axis; ties share the best
    rank; NaN ranks last."""
    x = np.where(np.isfinite(index), index, -np.inf)
    return 1 + (x[..., None, :] > x[..., :, None]).sum(axis=-1)


def rank_bootstrap(
    method: str,
    U: np.ndarray,
    y: np.ndarray,
    d: int,
    *,
    per_patient: np.ndarray | None = None,
    resamples: int = 200,
    top: int = 5,
    seed: int = 1,
    level: float = RANK_LEVEL,
) -> dict[str, np.ndarray]:
    """How sure the ranking of the parameters is: bootstrap intervals of each one's rank.

    Every resample draws the design's units again (Morris trajectories, Sobol base samples)
    and, when ``per_patient`` (points x patients) is given, the virtual patients again, with one
    draw of patients for every point (the common random numbers stay common), and ranks the
    parameters by the method's main index (``mu_star``, ``ST``). So the interval holds both the
    design's sampling error and the Monte Carlo noise of a finite virtual trial. A percentile
    interval: the point rank of a parameter tied with others (several with no effect at all, say)
    may lie outside it.

    Returns
    -------
    dict
        ``rank_low``, ``rank_high``: the ``level`` interval of each parameter's rank (1: the
        strongest driver); ``p_top``: the share of resamples in which it ranks in the top
        ``top``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> U = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]] * 4, dtype=float)
    >>> y = 4 * U[:, 0] + U[:, 1] + 0.5 * U[:, 2]
    >>> r = rank_bootstrap("morris", U, y, 3, resamples=50)
    >>> r["rank_low"].tolist(), r["rank_high"].tolist(), r["p_top"].tolist()
    ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    """
    rng = np.random.default_rng([int(seed), 2])
    units = U.shape[0] // (d + 1 if method == "morris" else d + 2)
    if per_patient is not None:
        n_pat = per_patient.shape[1]
        draws = rng.integers(0, n_pat, size=(resamples, n_pat))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a point with no counted patient
            Yb = np.stack([np.nanmean(per_patient[:, j], axis=1) for j in draws], axis=1)
    else:
        Yb = np.repeat(np.asarray(y, dtype=float)[:, None], resamples, axis=1)
    pick = rng.integers(0, units, size=(resamples, units))
    cols = np.arange(resamples)
    if method == "morris":
        ee = np.abs(morris_effects(U, Yb, d))  # (units, d, resamples)
        index = np.stack([ee[pick[b], :, b].mean(axis=0) for b in cols])
    else:
        index = np.stack([_sobol_total(Yb[:, b], d, pick[b]) for b in cols])
    ranks = _ranks(index)  # (resamples, d)
    a = (1.0 - level) / 2
    return {
        "rank_low": np.quantile(ranks, a, axis=0, method="lower").astype(float),
        "rank_high": np.quantile(ranks, 1 - a, axis=0, method="higher").astype(float),
        "p_top": (ranks <= top).mean(axis=0),
    }


@dataclass
class SensitivityResult:
    """Sensitivity indices as a labelled :class:`xarray.Dataset` (dims ``output``, ``parameter``).

    ``dataset`` also holds the design (``X``: sample x parameter values), the outputs at every
    point (``Y``), the indices from the first half of the design (``*_half``) and, for
    trajectories, ``index_over_time`` (trajectory x parameter x time_days). ``rank``,
    ``rank_low``, ``rank_high`` and ``p_top`` say how sure the ranking is
    (:func:`rank_bootstrap`).
    """

    dataset: xr.Dataset
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return str(self.dataset.attrs["method"])

    @property
    def main_index(self) -> str:
        return MAIN_INDEX[self.method]

    def ranking(self, output: str) -> list[str]:
        """Parameters from the strongest to the weakest driver of ``output``."""
        s = self.dataset[self.main_index].sel(output=output).to_series()
        return list(s.fillna(-np.inf).sort_values(ascending=False, kind="stable").index)

    def table(self) -> pd.DataFrame:
        """One row per output and parameter, strongest drivers first, with CIs.

        ``rank`` (1: the strongest; ties share a rank), ``rank_low`` .. ``rank_high`` (its
        bootstrap interval) and ``p_top`` (how often it ranks in the top ``attrs["top"]``): see
        :func:`rank_bootstrap`.
        """
        ds = self.dataset
        names = (
            ["S1", "S1_conf", "ST", "ST_conf"]
            if self.method == "sobol"
            else ["mu_star", "mu_star_conf", "mu", "sigma"]
        )
        extra = [k for k in ("rank", "rank_low", "rank_high", "p_top") if k in ds]
        df = ds[names + extra].to_dataframe().reset_index()
        df["low"] = df["parameter"].map(ds["low"].to_series())
        df["high"] = df["parameter"].map(ds["high"].to_series())
        order = df.groupby("output")[self.main_index].rank(ascending=False, method="first")
        if "rank" not in df:
            df["rank"] = order
        return (
            df.assign(_order=order)
            .sort_values(["output", "_order"])
            .drop(columns="_order")
            .reset_index(drop=True)
        )

    def convergence(self, top: int = 5) -> pd.DataFrame:
        """How the main index changed from the first half of the design to all of it."""
        ds, idx = self.dataset, self.main_index
        rows = []
        for out in ds["output"].values:
            full = ds[idx].sel(output=out).to_series()
            half = ds[f"{idx}_half"].sel(output=out).to_series()
            top_full = list(full.fillna(-np.inf).sort_values(ascending=False).index[:top])
            top_half = list(half.fillna(-np.inf).sort_values(ascending=False).index[:top])
            rows.append(
                {
                    "output": str(out),
                    "index": idx,
                    "n_half": int(ds.attrs["n"]) // 2,
                    "n": int(ds.attrs["n"]),
                    "max_abs_change": float(np.nanmax(np.abs(full - half)))
                    if np.isfinite(full - half).any()
                    else float("nan"),
                    f"top{top}_in_common": len(set(top_full) & set(top_half)),
                    f"top{top}": ", ".join(top_full),
                    f"top{top}_half": ", ".join(top_half),
                }
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """Indices, convergence and metadata (JSON-ready)."""
        tab = self.table()
        tab = tab.astype(object).where(pd.notna(tab), None)
        return {
            "method": self.method,
            "attrs": {k: v for k, v in self.dataset.attrs.items() if k != "excluded"},
            "indices": tab.to_dict(orient="records"),
            "convergence": self.convergence().to_dict(orient="records"),
            "excluded": self.excluded,
            "disclaimer": be.DISCLAIMER_SHORT,
        }

    def write(self, out: str | Path) -> list[Path]:
        """Write ``sensitivity.nc``, ``sensitivity.json``, ``sensitivity.csv`` and figures."""
        from imiqsim.analysis import figures

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "sensitivity.nc", out / "sensitivity.json", out / "sensitivity.csv"]
        self.dataset.to_netcdf(paths[0], engine="h5netcdf")
        paths[1].write_text(json.dumps(self.to_dict(), indent=2, default=float))
        self.table().to_csv(paths[2], index=False)
        paths += figures.sensitivity_figures(self, out)
        return paths


def _analyse(
    method: str,
    problem: dict,
    X: np.ndarray,
    y: np.ndarray,
    *,
    num_levels: int,
    bootstrap: int,
    seed: int,
) -> dict[str, np.ndarray]:
    d = problem["num_vars"]
    nan = np.full(d, np.nan)
    if not np.all(np.isfinite(y)) or np.ptp(y) == 0:
        if method == "sobol":
            zero = nan if not np.all(np.isfinite(y)) else np.zeros(d)
            return {"S1": zero, "S1_conf": zero, "ST": zero, "ST_conf": zero}
        zero = nan if not np.all(np.isfinite(y)) else np.zeros(d)
        return {"mu_star": zero, "mu_star_conf": zero, "mu": zero, "sigma": zero}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if method == "sobol":
            from SALib.analyze import sobol

            r = sobol.analyze(
                problem, y, calc_second_order=False, num_resamples=bootstrap, seed=seed
            )
            return {k: np.asarray(r[k], dtype=float) for k in ("S1", "S1_conf", "ST", "ST_conf")}
        from SALib.analyze import morris

        r = morris.analyze(problem, X, y, num_resamples=bootstrap, num_levels=num_levels, seed=seed)
        return {
            k: np.asarray(r[k], dtype=float) for k in ("mu_star", "mu_star_conf", "mu", "sigma")
        }


def sensitivity(
    scenario: str | be.Scenario | None = None,
    *,
    method: str = "morris",
    parameters: Sequence[str] | None = None,
    outputs: Sequence[str] = ("complete_clearance",),
    trajectories: Sequence[str] = (),
    n: int | None = None,
    patients: int = 100,
    seed: int = 1,
    followup_years: float = 0.0,
    ranges: Mapping[str, Range | tuple[float, float]] | None = None,
    widths: Mapping[str, float] | None = None,
    include_switches: bool = False,
    num_levels: int = 4,
    bootstrap: int = 200,
    top: int = 5,
    times: int = 40,
    workers: int | None = 1,
    model: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> SensitivityResult:
    """Global sensitivity analysis of virtual-trial outputs.

    Parameters
    ----------
    scenario : str or Scenario
        Preset name, scenario file or scenario (nominal values: its typical patient).
    method : {"morris", "sobol"}
    parameters : sequence of str, optional
        Parameters to vary (default: every parameter with a default range).
    outputs : sequence of str
        Trial endpoints or numeric outcome columns (e.g. ``complete_clearance``, ``lsr_max``).
    trajectories : sequence of str
        Trace variables for time-resolved indices (``lesion_burden``, ``ifn_alpha``,
        ``lsr_score``, ...).
    n : int, optional
        Sobol: base samples, a power of 2 (default 64); Morris: trajectories, even (default 4).
    patients, seed, followup_years
        The virtual trial at each point (common random numbers).
    ranges, widths, include_switches
        See :func:`imiqsim.analysis.factors.default_ranges`.
    num_levels, bootstrap : int
        Morris grid levels; bootstrap resamples for the CIs and the rank intervals.
    top : int
        ``p_top``: how often a parameter ranks in the top ``top`` (see :func:`rank_bootstrap`).
    times : int
        At most this many output times for the time-resolved indices.
    workers : int or None
        Processes evaluating sample points side by side (see
        :class:`~imiqsim.analysis.evaluate.VirtualTrial`; 1: this process; None: one per core
        for a large design). The indices do not depend on it.
    model : optional
        An evaluator with the interface of :class:`~imiqsim.analysis.evaluate.VirtualTrial`
        (e.g. :class:`~imiqsim.analysis.evaluate.FunctionModel`); then ``ranges`` gives every
        factor and ``scenario`` is not used.
    progress : callable, optional
        ``progress(done, total)`` after every point.

    Returns
    -------
    SensitivityResult

    Examples
    --------
        >>> from imiqsim.analysis.evaluate import FunctionModel
    >>> f = FunctionModel(lambda p: {"y": 4 * p["a"] + p["b"]}, ["a", "b"])
    >>> r = sensitivity(model=f, method="morris", outputs=["y"], n=4,
    ...                 ranges={"a": Range(0, 1, "linear"), "b": Range(0, 1, "linear")})
    >>> r.ranking("y")
    ['a', 'b']
    """
    if method not in METHODS:
        raise be.InputError("method", method, "sobol or morris")
    if n is None:
        n = 64 if method == "sobol" else 4
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise be.InputError("n", n, "a whole number >= 2")
    if method == "sobol" and n & (n - 1):
        raise be.InputError("n", n, "a power of 2 for Sobol sampling (e.g. 64, 128, 256)")
    if method == "morris" and n % 2:
        raise be.InputError("n", n, "an even number of Morris trajectories")
    if not outputs:
        raise be.InputError("outputs", list(outputs), "at least one output")
    if not isinstance(bootstrap, (int, np.integer)) or bootstrap < 10:
        raise be.InputError("bootstrap", bootstrap, "a whole number of resamples >= 10")
    if not isinstance(top, (int, np.integer)) or top < 1:
        raise be.InputError("top", top, "a whole number >= 1")
    excluded: dict[str, str] = {}
    if model is None:
        if scenario is None:
            raise be.InputError("scenario", None, "a preset, scenario file or Scenario")
        model = VirtualTrial(
            scenario, patients=patients, seed=seed, followup_years=followup_years, workers=workers
        )
        rng_map, excluded = default_ranges(
            model.scenario,
            parameters,
            widths=widths,
            ranges=ranges,
            include_switches=include_switches,
        )
        scen_name = model.scenario.name
    else:
        if not ranges:
            raise be.InputError("ranges", ranges, "a range for every factor of a stand-in model")
        rng_map = {
            k: v if isinstance(v, Range) else Range(float(v[0]), float(v[1]), "log")
            for k, v in ranges.items()
        }
        scen_name = "stand-in"
    names = model.check_factors(list(rng_map))
    if len(names) < 2:
        raise be.InputError("parameters", names, "at least two parameters to vary")
    d = len(names)
    problem = {"num_vars": d, "names": names, "bounds": [[0.0, 1.0]] * d}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "sobol":
            from SALib.sample import sobol as sobol_sample

            U = sobol_sample.sample(problem, int(n), calc_second_order=False, seed=seed)
            half_rows = (int(n) // 2) * (d + 2)
        else:
            from SALib.sample import morris as morris_sample

            U = morris_sample.sample(problem, int(n), num_levels=num_levels, seed=seed)
            half_rows = (int(n) // 2) * (d + 1)
    X = np.column_stack([rng_map[k].value(U[:, j]) for j, k in enumerate(names)])
    Y = np.full((len(X), len(outputs)), np.nan)
    traj: dict[str, list[np.ndarray]] = {v: [] for v in trajectories}
    t_days = None
    points = [dict(zip(names, row.tolist(), strict=True)) for row in X]
    if hasattr(model, "evaluate_many"):
        results = model.evaluate_many(
            points, outputs, trajectories, per_patient=True, progress=progress
        )
    else:  # an evaluator with ``evaluate`` only: one point after another
        results = []
        for i, pt in enumerate(points, start=1):
            results.append(model.evaluate(pt, outputs, trajectories))
            if progress:
                progress(i, len(points))
    for i, res in enumerate(results):
        Y[i] = [res.estimates[o].value for o in outputs]
        for v in trajectories:
            traj[v].append(res.trajectories[v])
        t_days = res.t_days
    kw = dict(num_levels=num_levels, bootstrap=bootstrap, seed=seed)
    full = [_analyse(method, problem, U, Y[:, j], **kw) for j in range(len(outputs))]
    half = [
        _analyse(method, problem, U[:half_rows], Y[:half_rows, j], **kw)
        for j in range(len(outputs))
    ]
    data: dict[str, Any] = {}
    for key in full[0]:
        data[key] = (("output", "parameter"), np.array([f[key] for f in full]))
    main = MAIN_INDEX[method]
    for key in [main, "S1"] if method == "sobol" else [main]:
        data[f"{key}_half"] = (("output", "parameter"), np.array([h[key] for h in half]))
    # how sure the ranking is: bootstrap over the design's units and, where each point's output
    # is a mean over the virtual patients, over the patients too (one draw for every point)
    ranked: list[dict[str, Any]] = []
    for j, o in enumerate(outputs):
        pp = [getattr(r, "per_patient", {}).get(o) for r in results]
        per_patient = np.array(pp) if all(v is not None for v in pp) else None
        if np.isfinite(Y[:, j]).all():
            boot = rank_bootstrap(
                method, U, Y[:, j], d, per_patient=per_patient, resamples=bootstrap, top=top,
                seed=seed,
            )  # fmt: skip
        else:
            boot = {k: np.full(d, np.nan) for k in ("rank_low", "rank_high", "p_top")}
        ranked.append(
            {
                **boot,
                "rank": _ranks(full[j][MAIN_INDEX[method]]).astype(float),
                "patients_resampled": per_patient is not None,
            }
        )
    for key in ("rank", "rank_low", "rank_high", "p_top"):
        data[key] = (("output", "parameter"), np.array([rb[key] for rb in ranked]))
    data["X"] = (("sample", "parameter"), X)
    data["Y"] = (("sample", "output"), Y)
    coords: dict[str, Any] = {
        "output": list(outputs),
        "parameter": names,
        "low": ("parameter", [rng_map[k].low for k in names]),
        "high": ("parameter", [rng_map[k].high for k in names]),
        "scale": ("parameter", [rng_map[k].scale for k in names]),
    }
    if trajectories:
        T = len(t_days)
        k = np.unique(np.linspace(0, T - 1, min(times, T)).round().astype(int))
        over_time = np.full((len(trajectories), d, k.size), np.nan)
        for a, v in enumerate(trajectories):
            M = np.array(traj[v])
            for b, kk in enumerate(k):
                over_time[a, :, b] = _analyse(method, problem, U, M[:, kk], **kw)[main]
        data["index_over_time"] = (("trajectory", "parameter", "time_days"), over_time)
        data["mean_trajectory"] = (
            ("trajectory", "time_days"),
            np.array([np.mean(traj[v], axis=0)[k] for v in trajectories]),
        )
        coords["trajectory"] = list(trajectories)
        coords["time_days"] = np.asarray(t_days)[k]
    ds = xr.Dataset(data, coords=coords)
    ds["index_over_time" if trajectories else main].attrs["index"] = main
    ds.attrs.update(
        method=method,
        index=main,
        n=int(n),
        points=int(len(X)),
        patients_per_point=int(model.patients),
        seed=int(seed),
        scenario=scen_name,
        common_random_numbers=model.crn_note,
        convergence="*_half: indices from the first n/2 base samples (Sobol) or trajectories "
        "(Morris) of the same design",
        excluded=json.dumps(excluded),
        disclaimer=be.DISCLAIMER_SHORT,
    )
    ds.attrs.update(
        top=int(top),
        rank_interval=f"rank_low..rank_high: {RANK_LEVEL:.0%} bootstrap interval of each "
        f"parameter's rank by {main} (1: the strongest driver), p_top: share of resamples in "
        f"the top {int(top)}; {int(bootstrap)} resamples of the "
        + ("trajectories" if method == "morris" else "base samples")
        + " and, for outputs that are means over patients ("
        + (
            ", ".join(o for o, rb in zip(outputs, ranked, strict=True) if rb["patients_resampled"])
            or "none"
        )
        + "), of the virtual patients (one draw for every point: common random numbers kept)",
    )
    if method == "morris":
        ds.attrs["num_levels"] = int(num_levels)
    ds.attrs["bootstrap_resamples"] = int(bootstrap)
    if not np.isfinite(Y).all():
        ds.attrs["warning"] = "some outputs were not finite at every point"
    return SensitivityResult(ds, excluded)
