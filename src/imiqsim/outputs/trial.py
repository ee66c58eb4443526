"""The data files of a virtual trial: per-patient outcomes, the summary, per-patient traces.

>>> from imiqsim.trial import run_trial
>>> from imiqsim.outputs.trial import write_trial_outputs
>>> tr = run_trial(["ak-5pct", "ak-5pct-vehicle"], patients=200)   # doctest: +SKIP
>>> write_trial_outputs(tr, "out")     # doctest: +SKIP
[...outcomes.parquet, ...summary.json, ...traces.nc]

Written before any figure (:func:`imiqsim.outputs.trial_report.write_trial_bundle`),
so a plotting failure never loses the simulated data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from imiqsim import __version__
from imiqsim._json import json_safe
from imiqsim.outputs.files import atomic_path, write_text_atomic
from imiqsim.vocabulary import DISCLAIMER_SHORT, HOURS_PER_DAY

if TYPE_CHECKING:
    import xarray as xr

    from imiqsim.trial import ArmResult, TrialResult

__all__ = [
    "OUTCOMES_NAME",
    "SUMMARY_NAME",
    "TRACES_NAME",
    "end_of_treatment_days",
    "outcomes_frame",
    "traces_dataset",
    "write_trial_outputs",
]

OUTCOMES_NAME = "outcomes.parquet"
SUMMARY_NAME = "summary.json"
TRACES_NAME = "traces.nc"


def end_of_treatment_days(arm: ArmResult) -> float:
    """Day of an arm's last scheduled application."""
    return float(arm.scenario.events().last_application_h()) / HOURS_PER_DAY


def outcomes_frame(result: TrialResult) -> pd.DataFrame:
    """All arms' per-patient outcomes in one frame (columns ``arm`` and ``patient`` first).

    A column that is boolean in one arm and float in another (an arm with a
    failed patient keeps its rows, as NaN) becomes float everywhere, so the
    frame stores cleanly as Parquet.
    """
    frames = []
    for a in result.arms:
        df = a.outcomes.copy()
        if "arm" not in df.columns:
            df.insert(0, "arm", a.name)
        frames.append(df)
    cols = list(dict.fromkeys(c for f in frames for c in f.columns))
    for c in cols:
        kinds = {f[c].dtype.kind for f in frames if c in f.columns}
        if len(kinds) > 1 and kinds <= {"b", "f", "i", "u"}:
            for f in frames:
                if c in f.columns:
                    f[c] = f[c].astype(float)
    df = pd.concat(frames, ignore_index=True)
    first = [c for c in ("arm", "patient") if c in df.columns]
    df = df[first + [c for c in df.columns if c not in first]]
    df["arm"] = df["arm"].astype(str)
    return df


def _units_of(names: Sequence[str]) -> dict[str, tuple[str, str]]:
    """name -> (unit, description) from the model (empty strings if unknown)."""
    from imiqsim.model import get_model

    m = get_model()
    out = {s.name: (s.unit, s.description) for s in m.states}
    out.update({o.name: (o.unit, o.description) for o in m.observables})
    return {n: out.get(n, ("", "")) for n in names}


def traces_dataset(result: TrialResult) -> xr.Dataset:
    """The per-patient traces as an ``xarray.Dataset`` with dims ``(arm, patient, time)``.

    ``time`` is in days. When arms have different output grids the time axis
    is their union and each arm holds NaN at times outside its own grid (no
    interpolation: every number is a simulated output).
    """
    import xarray as xr

    arms = result.arms
    grids = [np.asarray(a.t_days, dtype=float) for a in arms]
    same = all(
        g.shape == grids[0].shape and np.allclose(g, grids[0], rtol=0, atol=1e-9) for g in grids
    )
    t = grids[0] if same else np.unique(np.round(np.concatenate(grids), 9))
    n = max(len(a.outcomes) for a in arms)
    variables = list(dict.fromkeys(v for a in arms for v in a.traces))
    units = _units_of(variables)
    data_vars: dict[str, tuple] = {}
    for v in variables:
        arr = np.full((len(arms), n, t.size), np.nan, dtype=np.float32)
        for i, (a, g) in enumerate(zip(arms, grids, strict=True)):
            if v not in a.traces:
                continue
            x = np.asarray(a.traces[v], dtype=np.float32)
            if same:
                arr[i, : x.shape[0], :] = x
            else:
                idx = np.searchsorted(t, np.round(g, 9))
                arr[i, : x.shape[0]][:, idx] = x  # basic slice first: a view, then columns
        unit, desc = units[v]
        data_vars[v] = (("arm", "patient", "time"), arr, {"units": unit, "long_name": desc})
    status = np.full((len(arms), n), -1, dtype=np.int32)
    for i, a in enumerate(arms):
        if "status" in a.outcomes.columns:
            status[i, : len(a.outcomes)] = a.outcomes["status"].to_numpy(dtype=np.int32)
    data_vars["status"] = (
        ("arm", "patient"),
        status,
        {"long_name": "solver status (0 = ok; -1 = no such patient)"},
    )
    pid = (
        arms[0].outcomes["patient"].to_numpy()
        if "patient" in arms[0].outcomes.columns and len(arms[0].outcomes) == n
        else np.arange(n)
    )
    coords = {
        "arm": [a.name for a in arms],
        "patient": np.asarray(pid, dtype=np.int64),
        "time": ("time", t, {"units": "days", "long_name": "time since the first application"}),
        "scenario": ("arm", [a.scenario.name for a in arms]),
        "indication": ("arm", [a.scenario.indication for a in arms]),
        "end_of_treatment_day": ("arm", [end_of_treatment_days(a) for a in arms]),
        "assessment_day": ("arm", [a.scenario.assessment_time_h() / HOURS_PER_DAY for a in arms]),
    }
    attrs = {
        "title": "imiqsim virtual trial: per-patient traces",
        "imiqsim_version": __version__,
        "seed": int(result.seed),
        "n_patients_per_arm": int(result.n_patients),
        "followup_years": float(result.followup_years),
        "disclaimer": DISCLAIMER_SHORT,
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def write_trial_outputs(result: TrialResult, out_dir: str | os.PathLike) -> list[Path]:
    """Write the trial's data: ``outcomes.parquet``, ``summary.json``, ``traces.nc``.

    - ``outcomes.parquet``: one row per patient per arm, all outcome columns and
      covariates of :attr:`ArmResult.outcomes`, with columns ``arm`` and ``patient``.
    - ``summary.json``: :meth:`TrialResult.to_dict` (endpoints with 95% CIs,
      pairwise differences), strict JSON (non-finite numbers as ``null``).
    - ``traces.nc``: NetCDF4 (engine h5netcdf), one variable per trace with dims
      ``(arm, patient, time)``, time in days; see :func:`traces_dataset`.

    Each file is written under a temporary name and renamed into place, so a
    file that exists is complete. Returns the paths written, in that order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    p = out / OUTCOMES_NAME
    with atomic_path(p) as tmp:
        outcomes_frame(result).to_parquet(tmp, index=False)
    paths.append(p)
    p = out / SUMMARY_NAME
    write_text_atomic(p, json.dumps(json_safe(result.to_dict()), indent=2, allow_nan=False) + "\n")
    paths.append(p)
    p = out / TRACES_NAME
    ds = traces_dataset(result)
    enc = {
        v: {"zlib": True, "complevel": 1, "chunksizes": (1, ds.sizes["patient"], ds.sizes["time"])}
        for v in ds.data_vars
        if ds[v].dims == ("arm", "patient", "time")
    }
    with atomic_path(p) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=enc)
    paths.append(p)
    return paths
