"""Virtual-trial outputs: data files and a self-contained HTML report.

>>> from imiqsim.trial import run_trial
>>> from imiqsim.report import write_trial_outputs, write_trial_report
>>> tr = run_trial(["ak-5pct", "ak-5pct-vehicle"], patients=200)   # doctest: +SKIP
>>> write_trial_outputs(tr, "out")       # data first: outcomes.parquet, summary.json, traces.nc
>>> write_trial_report(tr, "out")        # then out/report.html (+ the figure PNGs)

:func:`write_trial_outputs` writes the numbers (per-patient outcomes as
Parquet, the summary with endpoints and pairwise differences as JSON, the
per-patient traces as NetCDF); :func:`write_trial_report` writes
``report.html`` (one file: inline CSS, figures embedded as base64 PNG, no
scripts, no external assets) and the same figures as PNG files beside it.
:func:`write_trial_bundle` does both, data first, so a plotting failure
never loses the simulated data.

Bands in the figures are percentiles across virtual patients (spread of the
population), not confidence intervals; endpoint intervals are 95% CIs
(Wilson for proportions, Newcombe for differences, order statistics for
medians).

Research and teaching software, not a medical device.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imiqsim import __version__
from imiqsim._json import json_safe
from imiqsim.stats import proportion
from imiqsim.trial.endpoints import ENDPOINTS, Endpoint, report_endpoints

DISCLAIMER = (
    "Research and teaching software, not a medical device. Simulated outcomes are model "
    "predictions, not clinical evidence or treatment advice."
)
FOOTER = "imiqsim \u2014 research and teaching software, not a medical device"
DPI = 110
#: lesion burden relative to baseline is drawn no lower than this (log axis)
LESION_FLOOR = 1e-6

REPORT_NAME = "report.html"
OUTCOMES_NAME = "outcomes.parquet"
SUMMARY_NAME = "summary.json"
TRACES_NAME = "traces.nc"
#: figure files written next to report.html, in report order
FIGURE_NAMES = ("fig_lesions_lsr.png", "fig_kinetics.png", "fig_waterfall.png", "fig_subgroups.png")

#: one colour per arm (Okabe-Ito, colour-blind safe), reused cyclically
ARM_COLOURS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)

_CYTOKINES = (("ifn_alpha", "IFN-\u03b1"), ("tnf_alpha", "TNF-\u03b1"), ("il12", "IL-12"))
_CELLS = (
    ("pdc", "pDC"),
    ("macrophage", "macrophages"),
    ("dendritic_cells", "DC / Langerhans"),
    ("nk_cells", "NK cells"),
    ("cd4_th1", "CD4 Th1"),
    ("cd8_ctl", "CD8 CTL"),
    ("memory_t", "memory T"),
)
_UNIT_PRETTY = {"ug/mL": "\u00b5g/mL", "cells/mm2": "cells/mm\u00b2", "cells/uL": "cells/\u00b5L"}


# --------------------------------------------------------------------------- endpoints


#: the endpoint table's rows, in order: entries of the endpoint registry (imiqsim.trial.endpoints)
ENDPOINT_INFO: tuple[Endpoint, ...] = report_endpoints()
_INFO = {e.name: e for e in ENDPOINTS}


def _finite(x: Any) -> bool:
    return (
        x is not None
        and isinstance(x, (int, float, np.integer, np.floating))
        and math.isfinite(float(x))
    )


def _num(x: float, digits: int, sign: bool = False) -> str:
    s = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    return s.replace("-", "\u2212")  # typographic minus


def _dash(a: float, b: float, digits: int) -> str:
    """``"41.2–49.0"``; ``"−8.6 to 2.0"`` when a bound is negative (an en dash would be ambiguous)."""
    sep = " to " if (a < 0 or b < 0) else "\u2013"
    return f"{_num(a, digits)}{sep}{_num(b, digits)}"


def format_proportion(ep: dict, digits: int = 1) -> str:
    """``"45.1% (41.2–49.0)"`` for a ``{"value", "ci95"}`` endpoint (fractions); ``"—"`` if empty."""
    v = ep.get("value")
    if not _finite(v):
        return "\u2014"
    lo, hi = (ep.get("ci95") or [None, None])[:2]
    s = f"{_num(100 * float(v), digits)}%"
    if _finite(lo) and _finite(hi):
        s += f" ({_dash(100 * float(lo), 100 * float(hi), digits)})"
    return s


def format_days(ep: dict, digits: int = 1) -> str:
    """``"67.3 d (61.8–76.2)"`` for a median in days; ``"—"`` if empty."""
    v = ep.get("value")
    if not _finite(v):
        return "\u2014"
    lo, hi = (ep.get("ci95") or [None, None])[:2]
    s = f"{_num(float(v), digits)} d"
    if _finite(lo) and _finite(hi):
        s += f" ({_dash(float(lo), float(hi), digits)})"
    return s


def format_difference(d: dict, digits: int = 1) -> str:
    """``"+38.2 pp (27.9–47.3)"``: a difference of proportions in percentage points."""
    v = d.get("value")
    if not _finite(v):
        return "\u2014"
    lo, hi = d.get("ci95", [None, None])[:2]
    s = f"{_num(100 * float(v), digits, sign=True)} pp"
    if _finite(lo) and _finite(hi):
        s += f" ({_dash(100 * float(lo), 100 * float(hi), digits)})"
    return s


def format_endpoint(key: str, ep: dict) -> str:
    """The table text of one endpoint of one arm (as shown in report.html)."""
    days = key in _INFO and _INFO[key].unit == "days"
    return format_days(ep) if days else format_proportion(ep)


def _n_text(key: str, ep: dict) -> str:
    n = int(ep.get("n") or 0)
    if key in _INFO and _INFO[key].kind in ("proportion", "pooled_proportion") and "k" in ep:
        return f"{int(ep['k'])}/{n}"
    return f"n = {n}"


# --------------------------------------------------------------------------- data outputs

_json_safe = json_safe


def outcomes_frame(result) -> pd.DataFrame:
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


def traces_dataset(result):
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
    data_vars = {}
    for v in variables:
        arr = np.full((len(arms), n, t.size), np.nan, dtype=np.float32)
        for i, (a, g) in enumerate(zip(arms, grids)):
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
        "end_of_treatment_day": ("arm", [_end_of_treatment_days(a) for a in arms]),
        "assessment_day": ("arm", [a.scenario.assessment_time_h() / 24.0 for a in arms]),
    }
    attrs = {
        "title": "imiqsim virtual trial: per-patient traces",
        "imiqsim_version": __version__,
        "seed": int(result.seed),
        "n_patients_per_arm": int(result.n_patients),
        "followup_years": float(result.followup_years),
        "disclaimer": "research and teaching software, not a medical device",
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def write_trial_outputs(result, out_dir: str | os.PathLike) -> list[Path]:
    """Write the trial's data: ``outcomes.parquet``, ``summary.json``, ``traces.nc``.

    - ``outcomes.parquet``: one row per patient per arm, all outcome columns and
      covariates of :attr:`ArmResult.outcomes`, with columns ``arm`` and ``patient``.
    - ``summary.json``: :meth:`TrialResult.to_dict` (endpoints with 95% CIs,
      pairwise differences), strict JSON (non-finite numbers as ``null``).
    - ``traces.nc``: NetCDF4 (engine h5netcdf), one variable per trace with dims
      ``(arm, patient, time)``, time in days; see :func:`traces_dataset`.

    Returns the paths written, in that order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    p = out / OUTCOMES_NAME
    outcomes_frame(result).to_parquet(p, index=False)
    paths.append(p)
    p = out / SUMMARY_NAME
    p.write_text(
        json.dumps(_json_safe(result.to_dict()), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    paths.append(p)
    p = out / TRACES_NAME
    ds = traces_dataset(result)
    enc = {
        v: {"zlib": True, "complevel": 1, "chunksizes": (1, ds.sizes["patient"], ds.sizes["time"])}
        for v in ds.data_vars
        if ds[v].dims == ("arm", "patient", "time")
    }
    ds.to_netcdf(p, engine="h5netcdf", encoding=enc)
    paths.append(p)
    return paths


# --------------------------------------------------------------------------- figures


def _end_of_treatment_days(arm) -> float:
    """Day of the last scheduled application."""
    return float(arm.scenario.events().last_application_h()) / 24.0


def _colour(i: int) -> str:
    return ARM_COLOURS[i % len(ARM_COLOURS)]


def _ok_rows(arm) -> np.ndarray:
    if "status" in arm.outcomes.columns:
        return arm.outcomes["status"].to_numpy() == 0
    return np.ones(len(arm.outcomes), dtype=bool)


def _bands(x: np.ndarray, q=(5, 25, 50, 75, 95)) -> np.ndarray:
    """Percentiles across patients (axis 0) of an (N, T) array -> (len(q), T); NaN-aware only if needed."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] == 0:
        return np.full((len(q), x.shape[1]), np.nan)
    if np.isnan(x).any():
        return np.nanpercentile(x, q, axis=0)
    return np.percentile(x, q, axis=0)


def _new_fig(w: float, h: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=DPI, layout="constrained")
    return fig


def _style(ax):
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(True, color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=8)


def _footer(fig):
    """Disclaimer line at the bottom right, in a strip kept free of axes."""
    h = fig.get_figheight()
    strip = 0.2 / h
    fig.get_layout_engine().set(rect=(0.0, strip, 1.0, 1.0 - strip))
    fig.text(0.995, 0.04 / h, FOOTER, ha="right", va="bottom", fontsize=6.5, color="0.55")


def _time_mark_handles():
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], color="0.35", linestyle=(0, (5, 3)), linewidth=1, label="last application"),
        Line2D([], [], color="0.35", linestyle=(0, (1, 2)), linewidth=1, label="assessment visit"),
    ]


def _mark_times(ax, arms):
    """Dashed line at the last application and dotted line at the assessment visit (per arm if they differ)."""
    eots = [_end_of_treatment_days(a) for a in arms]
    ass = [a.scenario.assessment_time_h() / 24.0 for a in arms]
    one = len(set(np.round(eots, 3))) == 1 and len(set(np.round(ass, 3))) == 1
    seen = set()
    for i, (e, s) in enumerate(zip(eots, ass)):
        col = "0.35" if one else _colour(i)
        for x, ls, txt in ((e, (0, (5, 3)), "end of treatment"), (s, (0, (1, 2)), "assessment")):
            key = (round(x, 3), txt)
            if key in seen:
                continue
            seen.add(key)
            ax.axvline(x, color=col, linestyle=ls, linewidth=1.0, zorder=1)
        if one:
            break


def _band_plot(ax, t, b, colour, label, outer=True):
    if outer:
        ax.fill_between(t, b[0], b[4], color=colour, alpha=0.12, linewidth=0)
    ax.fill_between(t, b[1], b[3], color=colour, alpha=0.28, linewidth=0)
    ax.plot(t, b[2], color=colour, linewidth=1.6, label=label)


def _window_days(arms) -> float:
    return max(a.scenario.assessment_time_h() / 24.0 for a in arms) + 14.0


def fig_lesions_lsr(result):
    """Lesion burden relative to baseline (log) and LSR score over time: median, 25–75% and 5–95% bands."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    arms = result.arms
    fig = _new_fig(11.0, 4.3)
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1.0]})
    floor = LESION_FLOOR
    lo_seen = 1.0
    for i, a in enumerate(arms):
        ok = _ok_rows(a)
        lb = np.asarray(a.traces["lesion_burden"], dtype=np.float64)[ok]
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = lb / lb[:, :1]
        rel = np.where(np.isfinite(rel), np.maximum(rel, floor), np.nan)
        b = _bands(rel)
        lo_seen = min(lo_seen, float(np.nanmin(b[0])) if np.isfinite(b[0]).any() else 1.0)
        _band_plot(ax1, np.asarray(a.t_days), b, _colour(i), a.name)
    ax1.set_yscale("log")
    ax1.axhline(1.0, color="0.5", linewidth=0.8)
    bottom = max(floor, 10 ** math.floor(math.log10(max(lo_seen, floor))) / 2)
    top = ax1.get_ylim()[1]
    ax1.set_ylim(bottom, max(top, 3.0))
    ax1.yaxis.set_major_locator(LogLocator(base=10, numticks=10))
    ax1.yaxis.set_minor_formatter(NullFormatter())
    ax1.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:.10g}%"))
    ax1.set_xlim(0, max(float(np.max(a.t_days)) for a in arms))
    _mark_times(ax1, arms)
    ax1.set_xlabel("days since first application", fontsize=9)
    ax1.set_ylabel("lesion cells / baseline (log)", fontsize=9)
    ax1.set_title("Lesion burden relative to baseline", loc="left", fontsize=10, fontweight="bold")
    _style(ax1)

    win = _window_days(arms)
    for i, a in enumerate(arms):
        ok = _ok_rows(a)
        t = np.asarray(a.t_days)
        k = t <= win + 1e-9
        b = _bands(np.asarray(a.traces["lsr_score"])[ok][:, k])
        _band_plot(ax2, t[k], b, _colour(i), a.name)
    ax2.set_xlim(0, win)
    ax2.set_ylim(bottom=0)
    _mark_times(ax2, arms)
    ax2.set_xlabel("days since first application", fontsize=9)
    ax2.set_ylabel("LSR sum score (0\u201318)", fontsize=9)
    ax2.set_title("Local skin reaction score", loc="left", fontsize=10, fontweight="bold")
    _style(ax2)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Line2D([], [], color=_colour(i), linewidth=1.6, label=a.name) for i, a in enumerate(arms)
    ]
    handles += [
        Patch(color="0.5", alpha=0.45, label="25\u201375th percentile"),
        Patch(color="0.5", alpha=0.15, label="5\u201395th percentile"),
    ] + _time_mark_handles()
    fig.legend(
        handles=handles, loc="outside upper center", ncol=len(handles), fontsize=8, frameon=False
    )
    _footer(fig)
    return fig


def fig_kinetics(result):
    """Small multiples of cytokine and immune-cell medians with 25–75% bands, over treatment + assessment."""
    arms = result.arms
    panels = [(v, lab, "cytokine") for v, lab in _CYTOKINES] + [
        (v, lab, "cell") for v, lab in _CELLS
    ]
    panels = [p for p in panels if any(p[0] in a.traces for a in arms)]
    ncol = 5
    nrow = max(1, math.ceil(len(panels) / ncol))
    fig = _new_fig(12.5, 2.55 * nrow + 0.6)
    axes = np.atleast_1d(fig.subplots(nrow, ncol, sharex=True)).reshape(-1)
    units = _units_of([p[0] for p in panels])
    win = _window_days(arms)
    for ax, (v, lab, grp) in zip(axes, panels):
        for i, a in enumerate(arms):
            if v not in a.traces:
                continue
            ok = _ok_rows(a)
            t = np.asarray(a.t_days)
            k = t <= win + 1e-9
            b = _bands(np.asarray(a.traces[v])[ok][:, k], q=(25, 25, 50, 75, 75))
            _band_plot(ax, t[k], b, _colour(i), a.name, outer=False)
        ax.set_xlim(0, win)
        ax.set_ylim(bottom=0)
        _mark_times(ax, arms)
        u = units[v][0]
        ax.set_title(
            lab,
            loc="left",
            fontsize=9.5,
            fontweight="bold",
            color="#6a3d9a" if grp == "cytokine" else "0.15",
        )
        ax.set_ylabel(_UNIT_PRETTY.get(u, u), fontsize=8)
        _style(ax)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[max(0, len(panels) - ncol) : len(panels)]:
        ax.set_xlabel("days", fontsize=8.5)
        ax.xaxis.set_tick_params(labelbottom=True)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Line2D([], [], color=_colour(i), linewidth=1.6, label=a.name) for i, a in enumerate(arms)
    ]
    handles += [
        Patch(color="0.5", alpha=0.45, label="25\u201375th percentile")
    ] + _time_mark_handles()
    fig.legend(
        handles=handles, loc="outside upper center", ncol=len(handles), fontsize=8, frameon=False
    )
    _footer(fig)
    return fig


_WF_COLOURS = (
    ("complete clearance (100%)", "#1a7f37"),
    ("partial clearance (\u226575%)", "#7fbf7b"),
    ("<75% reduction", "#9e9e9e"),
    ("more lesions than baseline", "#c0392b"),
)


def fig_waterfall(result):
    """Per-patient % reduction in visible lesions, sorted (one panel per arm), with the 75% line."""
    from matplotlib.patches import Patch

    arms = result.arms
    ncol = min(len(arms), 3)
    nrow = math.ceil(len(arms) / ncol)
    fig = _new_fig(4.6 * ncol + 0.6, 3.5 * nrow + 0.5)
    axes = np.atleast_1d(fig.subplots(nrow, ncol, sharey=True, squeeze=False)).reshape(-1)
    ymin = -100.0
    lowest = 0.0
    for ax, (i, a) in zip(axes, enumerate(arms)):
        df = a.outcomes[_ok_rows(a)]
        red = df["lesion_reduction"].to_numpy(dtype=float) * 100
        cc = df["complete_clearance"].to_numpy(dtype=float) == 1.0
        keep = np.isfinite(red)
        red, cc = red[keep], cc[keep]
        order = np.lexsort((~cc, -red))  # largest reduction first; clearers first among ties
        red, cc = red[order], cc[order]
        shown = np.clip(red, ymin, 100.0)
        if shown.size:
            lowest = min(lowest, float(shown.min()))
        cls = np.where(cc, 0, np.where(red >= 75.0 - 1e-9, 1, np.where(red >= 0, 2, 3)))
        x = np.arange(red.size)
        for c, (_, col) in enumerate(_WF_COLOURS):
            m = cls == c
            if m.any():
                ax.bar(x[m], shown[m], width=1.0, color=col, linewidth=0, align="edge")
        ax.axhline(75.0, color="0.2", linestyle=(0, (4, 2)), linewidth=1.0)
        ax.axhline(0.0, color="0.3", linewidth=0.7)
        ax.set_xlim(0, max(red.size, 1))
        n = red.size
        ncc, npc = int(cc.sum()), int((red >= 75.0 - 1e-9).sum())
        sub = (
            f"n = {n}; complete {100 * ncc / n:.1f}%, \u226575% {100 * npc / n:.1f}%"
            if n
            else "no patients"
        )
        ax.set_title(a.name, loc="left", fontsize=10, fontweight="bold", color=_colour(i), pad=16)
        ax.text(
            0.0, 1.02, sub, transform=ax.transAxes, ha="left", va="bottom", fontsize=8, color="0.3"
        )
        ax.set_xlabel("patients, sorted", fontsize=8.5)
        ax.set_xticks([])
        _style(ax)
        ax.grid(False, axis="x")
    for ax in axes[::ncol]:
        ax.set_ylabel("reduction in visible lesions (%)", fontsize=8.5)
    for ax in axes[len(arms) :]:
        ax.set_visible(False)
    bottom = -25.0 * math.ceil(-lowest / 25.0) if lowest < 0 else 0.0
    axes[0].set_ylim(bottom - 5, 108)
    axes[0].set_yticks([v for v in (-100, -75, -50, -25, 0, 25, 50, 75, 100) if v >= bottom])
    from matplotlib.lines import Line2D

    handles = [Patch(color=c, label=lab) for lab, c in _WF_COLOURS]
    handles.append(
        Line2D(
            [],
            [],
            color="0.2",
            linestyle=(0, (4, 2)),
            linewidth=1.0,
            label="75% (partial-clearance threshold)",
        )
    )
    fig.legend(handles=handles, loc="outside upper center", ncol=5, fontsize=8, frameon=False)
    _footer(fig)
    return fig


def subgroup_table(result, endpoint: str = "complete_clearance") -> list[dict]:
    """Rows ``{"group", "level", "arm", "k", "n", "value", "ci95"}`` (Wilson CIs) by sex and immune status.

    Only patients without a solver failure count; levels with no patient in
    any arm are left out. The first rows (group ``"all"``) are the whole arm.
    """
    rows = []
    specs = [
        ("all", None, "all patients"),
        ("sex", "sex", None),
        ("immune status", "immune_status", None),
    ]
    for group, col, fixed in specs:
        if col is not None and not all(col in a.outcomes.columns for a in result.arms):
            continue
        levels = (
            [fixed]
            if col is None
            else sorted({str(x) for a in result.arms for x in a.outcomes[col].dropna().unique()})
        )
        for lev in levels:
            for a in result.arms:
                df = a.outcomes[_ok_rows(a)]
                if col is not None:
                    df = df[df[col].astype(str) == lev]
                p = proportion(df[endpoint].to_numpy(dtype=float))
                rows.append(
                    {
                        "group": group,
                        "level": {"F": "female", "M": "male"}.get(lev, lev),
                        "arm": a.name,
                        **p,
                    }
                )
    return rows


def fig_subgroups(result, rows: list[dict] | None = None):
    """Forest plot of complete clearance by subgroup, one marker per arm, with Wilson 95% CIs."""
    from matplotlib.lines import Line2D

    arms = result.arms
    rows = subgroup_table(result) if rows is None else rows
    labels = list(dict.fromkeys((r["group"], r["level"]) for r in rows))
    na = len(arms)
    fig = _new_fig(8.6, 0.55 + 0.34 * len(labels) * max(na, 2) / 2 + 0.9)
    ax = fig.subplots()
    step = 0.8 / max(na, 1)
    for i, a in enumerate(arms):
        ys, xs, lo, hi = [], [], [], []
        for j, lab in enumerate(labels):
            r = next(
                (r for r in rows if (r["group"], r["level"]) == lab and r["arm"] == a.name), None
            )
            if r is None or r["n"] == 0:
                continue
            y = j + (i - (na - 1) / 2) * step
            ys.append(y)
            xs.append(100 * r["value"])
            lo.append(100 * r["ci95"][0])
            hi.append(100 * r["ci95"][1])
            ax.text(103, y, f"{r['k']}/{r['n']}", va="center", fontsize=7.5, color=_colour(i))
        xs_a, ys_a = np.array(xs), np.array(ys)
        ax.hlines(ys_a, lo, hi, color=_colour(i), linewidth=1.6)
        ax.plot(xs_a, ys_a, "o", color=_colour(i), markersize=5, label=a.name)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(
        [f"{lev}" if g == "all" else f"{g}: {lev}" for g, lev in labels], fontsize=8.5
    )
    ax.set_ylim(len(labels) - 0.5, -0.5)
    for j in range(1, len(labels)):
        if labels[j][0] != labels[j - 1][0]:
            ax.axhline(j - 0.5, color="0.8", linewidth=0.8)
    ax.set_xlim(-2, 114)
    ax.set_xticks([0, 20, 40, 60, 80, 100])
    ax.spines["bottom"].set_bounds(0, 100)
    ax.text(103, -0.5, "k/n", va="bottom", fontsize=7.5, color="0.4")
    ax.set_xlabel("complete clearance, % (Wilson 95% CI)", fontsize=9)
    ax.set_title("Complete clearance by subgroup", loc="left", fontsize=10, fontweight="bold")
    _style(ax)
    ax.grid(False, axis="y")
    handles = [
        Line2D([], [], color=_colour(i), marker="o", linewidth=1.6, label=a.name)
        for i, a in enumerate(arms)
    ]
    fig.legend(
        handles=handles, loc="outside upper center", ncol=len(handles), fontsize=8, frameon=False
    )
    _footer(fig)
    return fig


def _png_bytes(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


# --------------------------------------------------------------------------- HTML


def _endpoint_rows(result) -> tuple[list[dict], list[str]]:
    arms = result.arms
    diffs = _json_safe(_differences(result))
    diff_names = [f"{d['arms'][0]} \u2212 {d['arms'][1]}" for d in diffs]
    rows = []
    for info in ENDPOINT_INFO:
        eps = [a.endpoints.get(info.name) for a in arms]
        if all(e is None for e in eps):
            continue
        if info.report_optional and not any(e and int(e.get("n") or 0) > 0 for e in eps):
            continue
        cells = []
        for e in eps:
            e = e or {}
            cells.append(
                {"text": format_endpoint(info.name, e), "n": _n_text(info.name, e) if e else ""}
            )
        dcells = []
        for d in diffs:
            de = d["endpoints"].get(info.name)
            dcells.append(format_difference(de) if de else "")
        rows.append({"key": info.name, "label": info.label, "cells": cells, "diffs": dcells})
    return rows, diff_names


def _differences(result) -> list[dict]:
    from imiqsim.trial import differences

    return differences(result)


def _template():
    from importlib import resources

    import jinja2

    src = (
        resources.files("imiqsim")
        .joinpath("templates", "trial_report.html")
        .read_text(encoding="utf-8")
    )
    env = jinja2.Environment(
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined
    )
    return env.from_string(src)


def write_trial_report(
    result, out_dir: str | os.PathLike, *, title: str | None = None, command: str | None = None
) -> Path:
    """Write ``out_dir/report.html`` (self-contained) and the figure PNGs beside it; return the HTML path.

    ``title`` defaults to "Virtual trial: <arm> vs <arm> ..."; ``command``, if
    given, is shown in the methods as the command line that reproduces the run.
    Does not write the data files: call :func:`write_trial_outputs` first (or
    use :func:`write_trial_bundle`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arms = result.arms
    title = title or "Virtual trial: " + " vs ".join(a.name for a in arms)

    sub_rows = subgroup_table(result)
    makers = [
        ("Lesion burden and local skin reactions over time", fig_lesions_lsr, {}),
        ("Cytokine and immune-cell kinetics", fig_kinetics, {}),
        ("Per-patient lesion reduction", fig_waterfall, {}),
        ("Complete clearance by subgroup", fig_subgroups, {"rows": sub_rows}),
    ]
    figures = {}
    for name, (caption, make, kw) in zip(FIGURE_NAMES, makers):
        png = _png_bytes(make(result, **kw))
        (out / name).write_bytes(png)
        figures[name] = {"file": name, "alt": caption, "b64": base64.b64encode(png).decode("ascii")}

    ep_rows, diff_names = _endpoint_rows(result)
    sub_table = []
    labels = list(dict.fromkeys((r["group"], r["level"]) for r in sub_rows))
    for g, lev in labels:
        cells = []
        for a in arms:
            r = next(
                r for r in sub_rows if (r["group"], r["level"]) == (g, lev) and r["arm"] == a.name
            )
            cells.append({"text": format_proportion(r), "n": f"{r['k']}/{r['n']}"})
        sub_table.append({"group": g, "level": lev, "cells": cells})

    arm_info = []
    for i, a in enumerate(arms):
        n_failed = int((a.outcomes["status"] != 0).sum()) if "status" in a.outcomes.columns else 0
        arm_info.append(
            {
                "name": a.name,
                "colour": _colour(i),
                "scenario": a.scenario.name,
                "describe": a.scenario.describe(),
                "n": len(a.outcomes),
                "failed": n_failed,
                "eot": _end_of_treatment_days(a),
                "assessment": a.scenario.assessment_time_h() / 24.0,
            }
        )
    indications = sorted({a.scenario.indication for a in arms})
    html = _template().render(
        title=title,
        date=_dt.date.today().isoformat(),
        version=__version__,
        seed=result.seed,
        n_patients=result.n_patients,
        followup_years=result.followup_years,
        disclaimer=DISCLAIMER,
        arms=arm_info,
        endpoint_rows=ep_rows,
        diff_names=diff_names,
        figures=figures,
        subgroups=sub_table,
        endpoint_info=[e for e in ENDPOINT_INFO if e.name in {r["key"] for r in ep_rows}],
        command=command,
        indications=indications,
        window=_window_days(arms),
        lesion_floor=f"{LESION_FLOOR * 100:.10g}%",
    )
    p = out / REPORT_NAME
    p.write_text(html, encoding="utf-8")
    return p


def write_trial_bundle(
    result, out_dir: str | os.PathLike, *, title: str | None = None, command: str | None = None
) -> list[Path]:
    """:func:`write_trial_outputs` then :func:`write_trial_report`; returns every path written.

    The data files are on disk before any figure is drawn, so a plotting
    error (which is re-raised) never loses the simulated data.
    """
    paths = write_trial_outputs(result, out_dir)
    html = write_trial_report(result, out_dir, title=title, command=command)
    return paths + [Path(out_dir) / n for n in FIGURE_NAMES] + [html]


__all__ = [
    "DISCLAIMER",
    "ENDPOINT_INFO",
    "FIGURE_NAMES",
    "fig_kinetics",
    "fig_lesions_lsr",
    "fig_subgroups",
    "fig_waterfall",
    "format_days",
    "format_difference",
    "format_endpoint",
    "format_proportion",
    "outcomes_frame",
    "subgroup_table",
    "traces_dataset",
    "write_trial_bundle",
    "write_trial_outputs",
    "write_trial_report",
]
