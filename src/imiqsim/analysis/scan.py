"""Parameter and regimen scans: a virtual trial with CIs at every point of a grid.

One- or more-dimensional grids over model parameters and regimen fields (strength,
applications per week, weeks, leave-on hours, cycle lengths, area; see
:data:`imiqsim.analysis.factors.REGIMEN_FACTORS`). Every point simulates the same virtual
patients (common random numbers), so a scan point equals a separate ``trial`` run of that
regimen with the same seed and patients, and differences between points are not sampling noise.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from imiqsim.analysis import _backend as be
from imiqsim.analysis.evaluate import VirtualTrial
from imiqsim.analysis.factors import parse_values

__all__ = ["ScanResult", "scan"]


@dataclass
class ScanResult:
    """A scan as a labelled :class:`xarray.Dataset`.

    Variables ``value``, ``ci95_low``, ``ci95_high``, ``n`` (patients counted) and ``k`` (events,
    NaN for non-proportions) have dims ``output`` and one dim per scanned factor (coordinates:
    the scanned values); ``regimen`` holds each point's treatment in words.
    """

    dataset: xr.Dataset

    @property
    def factors(self) -> list[str]:
        return [d for d in self.dataset["value"].dims if d != "output"]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per point and output."""
        ds = self.dataset
        df = ds[["value", "ci95_low", "ci95_high", "n", "k"]].to_dataframe().reset_index()
        reg = ds["regimen"].to_dataframe().reset_index()
        return df.merge(reg, on=self.factors)

    def to_dict(self) -> dict[str, Any]:
        df = self.to_dataframe()
        df = df.astype(object).where(pd.notna(df), None)
        return {
            "factors": {f: [float(x) for x in self.dataset[f].values] for f in self.factors},
            "points": df.to_dict(orient="records"),
            "attrs": dict(self.dataset.attrs),
        }

    def write(self, out: str | Path) -> list[Path]:
        """Write ``scan.nc``, ``scan.csv``, ``scan.json`` and ``scan.png``."""
        from imiqsim.analysis import figures

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "scan.nc", out / "scan.csv", out / "scan.json"]
        self.dataset.to_netcdf(paths[0], engine="h5netcdf")
        self.to_dataframe().to_csv(paths[1], index=False)
        paths[2].write_text(json.dumps(self.to_dict(), indent=2, default=float))
        paths.append(figures.scan_figure(self, out / "scan.png"))
        return paths


def scan(
    scenario: str | be.Scenario,
    values: Mapping[str, Sequence[float]] | Sequence[str],
    *,
    outputs: Sequence[str] = ("complete_clearance",),
    patients: int = 200,
    seed: int = 1,
    followup_years: float = 0.0,
    workers: int | None = 1,
    progress: Callable[[int, int], None] | None = None,
) -> ScanResult:
    """Scan parameters and regimen fields over a grid of virtual trials.

    Parameters
    ----------
    scenario : str or Scenario
        Preset name, scenario file or scenario.
    values : mapping or sequence of str
        ``{factor: [values]}``, or specs ``"NAME=LO:HI:N"`` / ``"NAME=a,b,c"``. The grid is
        the product of all factors.
    outputs : sequence of str
        Trial endpoints or numeric outcome columns.
    patients, seed, followup_years
        The virtual trial at each point (the same patients at every point).
    workers : int or None
        Processes evaluating points side by side (one point per core, one pool for the whole
        scan); 1 (default): this process, the engine's threads sharing each point; None: one per
        core for a scan of at least :data:`~imiqsim.analysis.evaluate.AUTO_POOL_PATIENTS`
        patients in all. The numbers do not depend on it.
    progress : callable, optional
        ``progress(done, total)`` after every point.

    Returns
    -------
    ScanResult

    Examples
    --------
    >>> r = scan("sbcc-5pct", ["applications_per_week=3,5,7"], patients=20)  # doctest: +SKIP
    >>> r.dataset["value"].sel(output="complete_clearance").values  # doctest: +SKIP
    array([0.7 , 0.8 , 0.85])
    """
    if isinstance(values, Mapping):
        grid = {k: [float(x) for x in v] for k, v in values.items()}
    else:
        grid = dict(parse_values(s) for s in values)
    if not grid or any(len(v) == 0 for v in grid.values()):
        raise be.InputError("values", values, "at least one factor with at least one value")
    if not outputs:
        raise be.InputError("outputs", list(outputs), "at least one output")
    vt = VirtualTrial(
        scenario, patients=patients, seed=seed, followup_years=followup_years, workers=workers
    )
    names = vt.check_factors(list(grid))
    if len(set(names)) != len(names):
        raise be.InputError("values", list(grid), "each factor once")
    axes = [grid[k] for k in grid]
    shape = tuple(len(a) for a in axes) + (len(outputs),)
    val, lo, hi = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    n_, k_ = np.zeros(shape), np.full(shape, np.nan)
    words = np.empty(shape[:-1], dtype=object)
    idxs = list(itertools.product(*[range(len(a)) for a in axes]))
    points = [
        {nm: axes[j][i] for j, (nm, i) in enumerate(zip(names, idx, strict=True))} for idx in idxs
    ]
    # every point is validated before the first simulation: a bad corner fails at once
    results = vt.evaluate_many(points, outputs, progress=progress)
    for idx, res in zip(idxs, results, strict=True):
        for o, out in enumerate(outputs):
            e = res.estimates[out]
            val[idx + (o,)], lo[idx + (o,)], hi[idx + (o,)] = e.value, e.low, e.high
            n_[idx + (o,)] = e.n
            k_[idx + (o,)] = np.nan if e.k is None else e.k
        words[idx] = res.description
    dims = tuple(names) + ("output",)
    ds = xr.Dataset(
        {
            "value": (dims, val),
            "ci95_low": (dims, lo),
            "ci95_high": (dims, hi),
            "n": (dims, n_),
            "k": (dims, k_),
            "regimen": (tuple(names), words.astype(str)),
        },
        coords={**{nm: axes[j] for j, nm in enumerate(names)}, "output": list(outputs)},
    )
    ds = ds.transpose("output", *names)
    ds.attrs.update(
        scenario=vt.scenario.name,
        patients_per_point=vt.patients,
        seed=vt.seed,
        followup_years=vt.followup_years,
        common_random_numbers=vt.crn_note,
        ci="95%: Wilson score for proportions, order statistics for medians, normal "
        "approximation for means of outcome columns",
        disclaimer=be.DISCLAIMER_SHORT,
    )
    return ScanResult(ds)
