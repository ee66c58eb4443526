"""Figures of a virtual trial: lesion burden and LSR bands, kinetics, waterfall, subgroups.

>>> from imiqsim.trial import run_trial
>>> from imiqsim.outputs.trial_figures import fig_kinetics, png_bytes
>>> tr = run_trial(["ak-5pct", "ak-5pct-vehicle"], patients=50)    # doctest: +SKIP
>>> png_bytes(fig_kinetics(tr))[:4]                                 # doctest: +SKIP
b'\\x89PNG'

Bands are percentiles across virtual patients (spread of the population), not
confidence intervals; the subgroup forest plot shows Wilson 95% CIs. The
kinetics panels are the model's cytokines and immune cells that the trial
traced (:mod:`imiqsim.outputs.style`), so a new cytokine or cell traced by the
trial appears without editing this module.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from imiqsim.outputs.style import (
    FOOTER,
    circulating_cells,
    cytokines,
    label,
    new_figure,
    ordered,
    pretty_unit,
    skin_cells,
)
from imiqsim.outputs.trial import end_of_treatment_days
from imiqsim.trial.stats import proportion
from imiqsim.vocabulary import HOURS_PER_DAY

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure

    from imiqsim.trial import TrialResult

__all__ = [
    "ARM_COLOURS",
    "DPI",
    "LESION_FLOOR",
    "arm_colour",
    "fig_kinetics",
    "fig_lesions_lsr",
    "fig_subgroups",
    "fig_waterfall",
    "kinetics_panels",
    "png_bytes",
    "subgroup_table",
    "units_of",
    "window_days",
]

DPI = 110
#: lesion burden relative to baseline is drawn no lower than this (log axis)
LESION_FLOOR = 1e-6

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


def units_of(names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """name -> (unit, description) from the model (empty strings if unknown)."""
    from imiqsim.model import get_model

    m = get_model()
    out = {s.name: (s.unit, s.description) for s in m.states}
    out.update({o.name: (o.unit, o.description) for o in m.observables})
    return {n: out.get(n, ("", "")) for n in names}


def arm_colour(i: int) -> str:
    """The colour of arm ``i`` in every trial figure and the report."""
    return ARM_COLOURS[i % len(ARM_COLOURS)]


def _ok_rows(arm) -> np.ndarray:
    if "status" in arm.outcomes.columns:
        return arm.outcomes["status"].to_numpy() == 0
    return np.ones(len(arm.outcomes), dtype=bool)


def _bands(x: np.ndarray, q=(5, 25, 50, 75, 95)) -> np.ndarray:
    """Percentiles across patients (axis 0) of an (N, T) array -> (len(q), T).

    NaN-aware only if needed (the plain percentile is faster).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] == 0:
        return np.full((len(q), x.shape[1]), np.nan)
    if np.isnan(x).any():
        return np.nanpercentile(x, q, axis=0)
    return np.percentile(x, q, axis=0)


def _new_fig(w: float, h: float):
    return new_figure((w, h), dpi=DPI, layout="constrained")


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
    """Dashed line at the last application, dotted at the assessment (per arm if they differ)."""
    eots = [end_of_treatment_days(a) for a in arms]
    ass = [a.scenario.assessment_time_h() / HOURS_PER_DAY for a in arms]
    one = len(set(np.round(eots, 3))) == 1 and len(set(np.round(ass, 3))) == 1
    seen = set()
    for i, (e, s) in enumerate(zip(eots, ass, strict=True)):
        col = "0.35" if one else arm_colour(i)
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


def window_days(arms) -> float:
    return max(a.scenario.assessment_time_h() / HOURS_PER_DAY for a in arms) + 14.0


def fig_lesions_lsr(result: TrialResult) -> Figure:
    """Lesion burden relative to baseline (log) and LSR score over time.

    Median, 25–75% and 5–95% bands across patients.
    """
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
        _band_plot(ax1, np.asarray(a.t_days), b, arm_colour(i), a.name)
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

    win = window_days(arms)
    for i, a in enumerate(arms):
        ok = _ok_rows(a)
        t = np.asarray(a.t_days)
        k = t <= win + 1e-9
        b = _bands(np.asarray(a.traces["lsr_score"])[ok][:, k])
        _band_plot(ax2, t[k], b, arm_colour(i), a.name)
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
        Line2D([], [], color=arm_colour(i), linewidth=1.6, label=a.name) for i, a in enumerate(arms)
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


def kinetics_panels(result: TrialResult) -> list[tuple[str, str, str]]:
    """``(variable, label, "cytokine" | "cell")`` of the kinetics figure, in panel order.

    The model's cytokines, then its skin and circulating immune cells, that
    some arm of the trial traced.
    """
    traced = {v for a in result.arms for v in a.traces}
    cells = ordered(skin_cells() + circulating_cells())
    panels = [(v, label(v), "cytokine") for v in cytokines() if v in traced]
    panels += [(v, label(v), "cell") for v in cells if v in traced]
    return panels


def fig_kinetics(result: TrialResult) -> Figure:
    """Small multiples of cytokine and immune-cell medians with 25–75% bands.

    Over the course and up to two weeks after the assessment visit. The panels
    are the model's cytokines, then its skin and circulating immune cells,
    that the trial traced.
    """
    arms = result.arms
    panels = kinetics_panels(result)
    ncol = 5
    nrow = max(1, math.ceil(len(panels) / ncol))
    fig = _new_fig(12.5, 2.55 * nrow + 0.6)
    axes = np.atleast_1d(fig.subplots(nrow, ncol, sharex=True)).reshape(-1)
    units = units_of([p[0] for p in panels])
    win = window_days(arms)
    for ax, (v, lab, grp) in zip(axes, panels, strict=False):  # spare axes hidden
        for i, a in enumerate(arms):
            if v not in a.traces:
                continue
            ok = _ok_rows(a)
            t = np.asarray(a.t_days)
            k = t <= win + 1e-9
            b = _bands(np.asarray(a.traces[v])[ok][:, k], q=(25, 25, 50, 75, 75))
            _band_plot(ax, t[k], b, arm_colour(i), a.name, outer=False)
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
        ax.set_ylabel(pretty_unit(u), fontsize=8)
        _style(ax)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[max(0, len(panels) - ncol) : len(panels)]:
        ax.set_xlabel("days", fontsize=8.5)
        ax.xaxis.set_tick_params(labelbottom=True)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Line2D([], [], color=arm_colour(i), linewidth=1.6, label=a.name) for i, a in enumerate(arms)
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


def fig_waterfall(result: TrialResult) -> Figure:
    """Per-patient % reduction in visible lesions, sorted (one panel per arm), with the 75% line."""
    from matplotlib.patches import Patch

    arms = result.arms
    ncol = min(len(arms), 3)
    nrow = math.ceil(len(arms) / ncol)
    fig = _new_fig(4.6 * ncol + 0.6, 3.5 * nrow + 0.5)
    axes = np.atleast_1d(fig.subplots(nrow, ncol, sharey=True, squeeze=False)).reshape(-1)
    ymin = -100.0
    lowest = 0.0
    for ax, (i, a) in zip(axes, enumerate(arms), strict=False):  # spare axes hidden
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
        ax.set_title(
            a.name, loc="left", fontsize=10, fontweight="bold", color=arm_colour(i), pad=16
        )
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

    handles: list[Artist] = [Patch(color=c, label=lab) for lab, c in _WF_COLOURS]
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


def subgroup_table(result: TrialResult, endpoint: str = "complete_clearance") -> list[dict]:
    """Complete clearance by sex and immune status, with Wilson CIs.

    Rows ``{"group", "level", "arm", "k", "n", "value", "ci95"}``.

    Only patients without a solver failure count; levels with no patient in
    any arm are left out. The first rows (group ``"all"``) are the whole arm.
    """
    rows = []
    specs: list[tuple[str, str | None, str]] = [
        ("all", None, "all patients"),
        ("sex", "sex", ""),
        ("immune status", "immune_status", ""),
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


def fig_subgroups(result: TrialResult, rows: list[dict] | None = None) -> Figure:
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
            ax.text(103, y, f"{r['k']}/{r['n']}", va="center", fontsize=7.5, color=arm_colour(i))
        xs_a, ys_a = np.array(xs), np.array(ys)
        ax.hlines(ys_a, lo, hi, color=arm_colour(i), linewidth=1.6)
        ax.plot(xs_a, ys_a, "o", color=arm_colour(i), markersize=5, label=a.name)
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
        Line2D([], [], color=arm_colour(i), marker="o", linewidth=1.6, label=a.name)
        for i, a in enumerate(arms)
    ]
    fig.legend(
        handles=handles, loc="outside upper center", ncol=len(handles), fontsize=8, frameon=False
    )
    _footer(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes (dpi of the trial figures, white background)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()
