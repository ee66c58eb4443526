"""Static figures of one simulated patient (matplotlib, Agg; no display needed).

>>> import imiqsim
>>> from imiqsim.outputs.patient_figures import plot_cascade
>>> res = imiqsim.simulate("ak-5pct")                        # doctest: +SKIP
>>> fig = plot_cascade(res.dataset, "cascade.png")           # doctest: +SKIP

Both functions take the ``xarray.Dataset`` of a single patient (dimension
``time`` in days, one variable per state/observable with a ``units``
attribute), return a :class:`matplotlib.figure.Figure` and, when ``path`` is
given, also write it as PNG (dpi 120).  Figures are created without pyplot, so
nothing is registered with a GUI backend and nothing needs closing.

The cytokines, immune cells and kill mechanisms drawn are the model's
(:mod:`imiqsim.outputs.style`): a new one is plotted without editing this
module. Series that are absent are skipped; series that are all zero
(knockouts, vehicle) are clipped to a floor on log axes rather than breaking
them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imiqsim.outputs.style import (
    DRUG_LAYERS,
    FOOTER,
    LSR_COMPONENTS,
    TLR7_SIGNALS,
    circulating_cells,
    colour,
    cytokines,
    kill_tallies,
    label,
    new_figure,
    pretty_unit,
    skin_cells,
)

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

DPI = 120

# Number of axes in the figures (main panels + twin axes); tests rely on these.
CASCADE_N_AXES = 12
LESIONS_N_AXES = 2


def _series(names: Sequence[str], *, short: bool = False) -> list[tuple[str, str, str]]:
    """``(name, label, colour)`` of the model's series ``names``."""
    return [(n, label(n, short=short), colour(n, names)) for n in names]


_LEGEND = {
    "fontsize": 7.5,
    "framealpha": 0.85,
    "handlelength": 1.8,
    "borderaxespad": 0.3,
    "columnspacing": 1.0,
}
# legends of the time panels sit above the plot area, right-aligned beside the panel title
_ABOVE = {
    "loc": "lower right",
    "bbox_to_anchor": (1.0, 1.0),
    "frameon": False,
    "borderaxespad": 0.15,
}


# --------------------------------------------------------------------------- helpers


def _check(ds):
    import xarray as xr

    from imiqsim.errors import InputError

    if not isinstance(ds, xr.Dataset):
        raise InputError("ds", type(ds).__name__, "an xarray.Dataset of one simulated patient")
    if "time" not in ds.dims or ds.sizes["time"] < 1:
        raise InputError("ds", dict(ds.sizes), "a Dataset with a non-empty 'time' dimension (days)")
    extra = [d for d in ds.dims if d != "time"]
    if extra:
        raise InputError(
            "ds", dict(ds.sizes), "a single-patient Dataset (only the 'time' dimension)"
        )


def _time(ds) -> np.ndarray:
    return np.asarray(ds["time"].values, dtype=float)


def _get(ds, name) -> np.ndarray | None:
    if name not in ds.data_vars:
        return None
    y = np.asarray(ds[name].values, dtype=float).reshape(-1)
    return y


def _units(ds, name, default="") -> str:
    if name in ds.variables:
        return pretty_unit(str(ds[name].attrs.get("units", default)))
    return default


def _floor_for(arrays: Iterable[np.ndarray | None], decades: float) -> tuple[float, float, bool]:
    """(bottom, top, any_positive) for a log axis spanning at most ``decades``."""
    vals = [a[np.isfinite(a)] for a in arrays if a is not None]
    vals = [v[v > 0] for v in vals if v.size]
    pos = np.concatenate(vals) if vals else np.array([])
    if pos.size == 0:
        return 1e-3, 1.0, False
    top = float(pos.max()) * 2.0
    bottom = max(float(pos.min()) * 0.5, top / 10.0**decades)
    if bottom >= top:
        bottom = top / 10.0
    return bottom, top, True


def _log_plot(ax, t, series, decades=6.0, empty_note="all zero"):
    """Plot ``(y, kwargs)`` pairs on a log axis, clipping to a floor; returns the floor."""
    from matplotlib.ticker import LogLocator, NullFormatter

    bottom, top, any_pos = _floor_for([y for y, _ in series], decades)
    ax.set_yscale("log")
    # few minor ticks and no minor labels: readable, and much cheaper to lay out
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=8))
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0), numticks=8))
    ax.yaxis.set_minor_formatter(NullFormatter())
    for y, kw in series:
        yy = np.where(np.isfinite(y), np.maximum(y, bottom), np.nan)
        ax.plot(t, yy, **kw)
    ax.set_ylim(bottom, top)
    if not any_pos and series:
        ax.text(
            0.5,
            0.5,
            empty_note,
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=9,
            color="0.45",
            style="italic",
        )
    return bottom


def _dose_ticks(ax, dose_times, color="0.35", label="_nolegend_"):
    if dose_times is None or len(dose_times) == 0:
        return
    ax.vlines(
        dose_times,
        0.0,
        0.045,
        transform=ax.get_xaxis_transform(),
        colors=color,
        linewidth=0.8,
        alpha=0.6,
        zorder=0.5,
        label=label,
    )


def _resolve_doses(ds, dose_times_days):
    """``None`` -> no ticks; ``"auto"`` -> infer from jumps of cumulative ``applied``."""
    if dose_times_days is None:
        return None
    if isinstance(dose_times_days, str):
        if dose_times_days != "auto":
            from imiqsim.errors import InputError

            raise InputError(
                "dose_times_days", dose_times_days, "a sequence of days, None or 'auto'"
            )
        applied = _get(ds, "applied")
        if applied is None or applied.size < 2:
            return None
        t = _time(ds)
        jumps = np.diff(applied) > 1e-12 * max(float(np.nanmax(applied)), 1e-300)
        return t[1:][jumps]
    d = np.asarray(list(dose_times_days), dtype=float).reshape(-1)
    return d[np.isfinite(d)]


def _set_xlim(ax, t):
    lo, hi = float(np.nanmin(t)), float(np.nanmax(t))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    ax.set_xlim(lo, hi)


def _twin(ax):
    tw = ax.twinx()
    # the host draws the (shared) time axis; an invisible duplicate saves layout time
    tw.xaxis.set_visible(False)
    return tw


def _panel_title(ax, text):
    ax.set_title(text, loc="left", fontsize=10, fontweight="bold")


def _merged_legend(ax, twin, **kw):
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels() if twin is not None else ([], [])
    if h1 or h2:
        # the legend sits on the top-most axes so that twin lines do not cover it
        (twin if twin is not None else ax).legend(h1 + h2, l1 + l2, **{**_LEGEND, **kw})


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 else f"{v:.3g}"


def _slots(ds) -> list[str]:
    found = []
    for name in ds.data_vars:
        m = re.fullmatch(r"lesion_(\d+)", str(name))
        if m:
            found.append((int(m.group(1)), str(name)))
    return [n for _, n in sorted(found)]


def _threshold(ds, visible_threshold):
    if visible_threshold is not None:
        v = float(visible_threshold)
        return v if np.isfinite(v) and v > 0 else None
    v = ds.attrs.get("visible_threshold_cells")
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v > 0 else None


def _default_title(ds, what):
    bits = [str(ds.attrs[k]) for k in ("scenario", "indication") if ds.attrs.get(k)]
    return f"imiqsim \u2014 {what}" + (f": {' / '.join(bits)}" if bits else "")


def _finish(fig, path, title):
    fig.suptitle(title, fontsize=13, fontweight="bold")
    fig.text(0.5, 0.004, FOOTER, ha="center", va="bottom", fontsize=8, color="0.4")
    if path is not None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=DPI, format="png")
    return fig


# --------------------------------------------------------------------------- panels


def _panel_drug(ax, ds, t):
    series = []
    for name, lab, color in DRUG_LAYERS:
        y = _get(ds, name)
        if y is not None:
            series.append((y, {"color": color, "lw": 1.1, "label": lab}))
    _log_plot(ax, t, series, decades=6, empty_note="no drug (all zero)")
    ax.set_ylabel(f"imiquimod amount [{_units(ds, 'film', 'mg')}]")
    _panel_title(ax, "1 \u00b7 Drug by layer")
    tw = _twin(ax)
    serum = _get(ds, "serum_conc_ng_ml")
    skin = _get(ds, "skin_conc_ug_ml")
    s2 = []
    if serum is not None:
        s2.append((serum, {"color": "k", "lw": 1.3, "ls": "--", "label": "serum conc. (right)"}))
    _log_plot(tw, t, s2, decades=6, empty_note="")
    tw.set_ylabel(f"serum concentration [{_units(ds, 'serum_conc_ng_ml', 'ng/mL')}]")
    if skin is not None and np.nanmax(skin) > 0:
        ax.text(
            0.99,
            0.955,
            f"peak skin conc. {np.nanmax(skin):.3g} {_units(ds, 'skin_conc_ug_ml')}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=7.5,
            color="0.3",
        )
    return tw


def _panel_tlr7(ax, ds, t):
    for name, lab, color, ls in TLR7_SIGNALS:
        y = _get(ds, name)
        if y is not None:
            ax.plot(t, y, color=color, ls=ls, lw=1.2, label=lab)
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("fraction [0\u20131]")
    _panel_title(ax, "2 \u00b7 TLR7 signalling")
    _merged_legend(ax, None, ncol=3, **_ABOVE)


def _panel_cytokines(ax, ds, t):
    series = []
    for name, lab, color in _series(cytokines()):
        y = _get(ds, name)
        if y is not None:
            series.append((y, {"color": color, "lw": 1.2, "label": lab}))
    _log_plot(ax, t, series, decades=4)
    ax.set_ylabel(f"local concentration [{_units(ds, 'ifn_alpha', 'pg/mL')}]")
    _panel_title(ax, "3 \u00b7 Local cytokines (treated tissue)")
    _merged_legend(ax, None, ncol=3, **_ABOVE)


def _panel_cells(ax, ds, t):
    series = []
    for name, lab, color in _series(skin_cells(), short=True):
        y = _get(ds, name)
        if y is not None:
            series.append((y, {"color": color, "lw": 1.2, "label": lab}))
    _log_plot(ax, t, series, decades=4)
    ax.set_ylabel(f"in skin [{_units(ds, 'macrophage', 'cells/mm2')}]")
    _panel_title(ax, "4 \u00b7 Immune cells")
    tw = _twin(ax)
    s2 = []
    for name, lab, color in _series(circulating_cells()):
        y = _get(ds, name)
        if y is not None:
            s2.append((y, {"color": color, "lw": 1.4, "ls": "--", "label": f"{lab} (right)"}))
    _log_plot(tw, t, s2, decades=4, empty_note="")
    tw.set_ylabel(f"circulating [{_units(ds, 'memory_t', 'cells/uL')}]")
    _merged_legend(ax, tw, ncol=4, **_ABOVE)
    return tw


def _panel_lesions(ax, ds, t, threshold):
    burden = _get(ds, "lesion_burden")
    slots = [(n, _get(ds, n)) for n in _slots(ds)]
    series = [
        (y, {"color": "0.6", "lw": 0.6, "alpha": 0.7, "label": "_nolegend_"}) for _, y in slots
    ]
    if slots:
        series[0][1]["label"] = "single lesions"
    if burden is not None:
        series.append((burden, {"color": "k", "lw": 2.0, "label": "total burden"}))
    arrays = [y for y, _ in series] + ([np.array([threshold])] if threshold else [])
    bottom, top, _ = _floor_for(arrays, 5)
    _log_plot(ax, t, series, decades=5)
    ax.set_ylim(bottom, top)
    if threshold:
        ax.axhline(
            threshold, color="#d62728", ls=":", lw=1.3, label="visibility threshold (per lesion)"
        )
    ax.set_ylabel(f"abnormal cells [{_units(ds, 'lesion_burden', 'cells')}]")
    _panel_title(ax, "5 \u00b7 Lesions")
    tw = _twin(ax)
    _lesion_counts(tw, ds, t, ("histological (right)", 1.2), ("visible lesions (right)", 1.6))
    tw.set_ylabel(f"count [{_units(ds, 'visible_lesions', 'lesions')}]")
    _merged_legend(ax, tw, ncol=3, **_ABOVE)
    return tw


def _lesion_counts(ax, ds, t, histological: tuple[str, float], visible: tuple[str, float]):
    """Step lines of the histological and visible lesion counts; each ``(label, line width)``."""
    nmax = 1.0
    for name, (lab, lw), color, ls in (
        ("histological_lesions", histological, "#2ca02c", "--"),
        ("visible_lesions", visible, "#1f77b4", "-"),
    ):
        y = _get(ds, name)
        if y is not None:
            ax.step(t, y, where="post", color=color, lw=lw, ls=ls, label=lab)
            nmax = max(nmax, float(np.nanmax(y)))
    ax.set_ylim(-0.2, nmax * 1.15 + 0.5)
    ax.yaxis.get_major_locator().set_params(integer=True)


def _panel_lsr(ax, ds, t):
    comps = [(lab, _get(ds, name), color) for name, lab, color in LSR_COMPONENTS]
    comps = [
        (lab, np.nan_to_num(np.maximum(y, 0.0)), color) for lab, y, color in comps if y is not None
    ]
    if comps:
        ax.stackplot(
            t,
            *[y for _, y, _ in comps],
            labels=[lab for lab, _, _ in comps],
            colors=[c for _, _, c in comps],
            alpha=0.85,
            linewidth=0,
        )
    total = _get(ds, "lsr_score")
    if total is None and comps:
        total = np.sum([y for _, y, _ in comps if y is not None], axis=0)
    top = 3.0
    if total is not None:
        ax.plot(t, total, color="k", lw=1.2, label="LSR sum")
        if np.isfinite(total).any():
            top = max(top, float(np.nanmax(total)) * 1.25)
    ax.set_ylim(0, top)
    ax.set_ylabel(
        f"score [components {_units(ds, 'erythema_score', '0-3')}, "
        f"sum {_units(ds, 'lsr_score', '0-18')}]"
    )
    _panel_title(ax, "6 \u00b7 Local skin reactions")
    _merged_legend(ax, None, ncol=3, **_ABOVE)


def _panel_systemic(ax, ds, t):
    for name, lab, color in _series(cytokines()):
        y = _get(ds, f"{name}_serum")
        if y is None:
            continue
        base = y[0] if np.isfinite(y[0]) and y[0] > 0 else np.nan
        ax.plot(t, y / base, color=color, lw=1.1, label=lab)
    ax.set_ylabel("serum level / day-0 level [fold]")
    lo, hi = ax.get_ylim()
    if np.isfinite([lo, hi]).all() and hi - lo < 0.02:
        mid = 0.5 * (lo + hi)
        ax.set_ylim(mid - 0.01, mid + 0.01)
    _panel_title(ax, "8 \u00b7 Systemic exposure")
    tw = _twin(ax)
    flu = _get(ds, "flu_like_probability")
    if flu is not None:
        tw.plot(t, 100.0 * flu, color="k", lw=1.5, ls="--", label="flu-like symptoms (right)")
        top = float(np.nanmax(100.0 * flu)) if np.isfinite(flu).any() else 0.0
        tw.set_ylim(0, max(top * 1.25, 1.0))
    tw.set_ylabel("probability of flu-like symptoms [%]")
    _merged_legend(ax, tw, ncol=4, **_ABOVE)
    return tw


def _panel_kills(ax, ds):
    # every tally the model declares; a direct kill (freezing, a cytotoxic) only where it happened,
    # so an immune-only course is not drawn with empty bars for treatments it did not get
    tallies = kill_tallies()
    rows = []
    for name, (lab, kind) in tallies.items():
        y = _get(ds, name)
        if y is not None:
            v = y[np.isfinite(y)]
            last = float(v[-1]) if v.size else 0.0
            if kind == "direct" and not last > 0:
                continue
            rows.append((lab, last, colour(name, list(tallies))))
    total = sum(max(v, 0.0) for _, v, _ in rows)
    _panel_title(ax, "7 \u00b7 Lesion cells killed, by mechanism")
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of cumulative kills at end of simulation [%]")
    if not rows:
        ax.text(
            0.5,
            0.5,
            "no kill counters in dataset",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=9,
            color="0.45",
            style="italic",
        )
        ax.set_yticks([])
        return
    ypos = np.arange(len(rows))[::-1]
    shares = [100.0 * max(v, 0.0) / total if total > 0 else 0.0 for _, v, _ in rows]
    ax.barh(ypos, shares, color=[c for _, _, c in rows], height=0.65)
    ax.set_yticks(ypos, [lab for lab, _, _ in rows], fontsize=8.5)
    for y, s, (_, v, _) in zip(ypos, shares, rows, strict=True):
        txt = f"{s:.1f}%  ({v:.3g} cells)"
        inside = s > 60
        ax.text(
            s - 1 if inside else s + 1,
            y,
            txt,
            va="center",
            ha="right" if inside else "left",
            fontsize=8,
            color="w" if inside else "0.15",
        )
    unit = _units(ds, next(iter(tallies), ""), "cells")
    note = f"total {total:.3g} {unit}" if total > 0 else "no lesion cells killed"
    ax.text(
        0.99, 0.02, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="0.3"
    )
    ax.grid(axis="x", alpha=0.3)


# --------------------------------------------------------------------------- public API


def plot_cascade(
    ds: xr.Dataset,
    path: str | os.PathLike | None = None,
    *,
    title: str | None = None,
    dose_times_days: Sequence[float] | str | None = None,
    visible_threshold: float | None = None,
) -> Figure:
    """The whole treatment cascade of one patient, stage by stage.

    Panels: (1) drug by skin layer (log) with serum concentration (right axis);
    (2) TLR7 occupancy/activation/tolerance and pDC IRF7, macrophage NF-kB,
    DC activation; (3) six local cytokines (log); (4) immune cells in skin
    (log, cells/mm2) and circulating effector/memory T cells (right, cells/uL);
    (5) lesion cells (log; total and single lesions, visibility threshold) with
    visible/histological lesion counts (right); (6) local-skin-reaction
    components stacked with their sum; (7) share of cumulative lesion-cell
    kills by mechanism at the end; (8) serum cytokines (fold of day 0) and
    probability of flu-like symptoms (right).

    Parameters
    ----------
    ds : xarray.Dataset
        One patient's time courses (``imiqsim.simulate(...).dataset``).
    path : str or Path, optional
        Where to write the PNG (dpi 120); parent folders are created.
    title : str, optional
        Figure title; default names the scenario/indication from ``ds.attrs``.
    dose_times_days : sequence of float or "auto", optional
        Application times (days), drawn as faint ticks at the foot of each time
        panel.  ``"auto"`` infers them from the cumulative ``applied`` state.
    visible_threshold : float, optional
        Abnormal cells above which a lesion is clinically visible (the
        ``visible_threshold_cells`` parameter); drawn as a line in panel 5.
        Falls back to ``ds.attrs["visible_threshold_cells"]`` when present.

    Returns
    -------
    matplotlib.figure.Figure
        With :data:`CASCADE_N_AXES` axes (8 panels + 4 right-hand twins).
    """
    _check(ds)
    t = _time(ds)
    doses = _resolve_doses(ds, dose_times_days)
    thr = _threshold(ds, visible_threshold)

    fig = new_figure((15, 16))
    gs = fig.add_gridspec(4, 2, height_ratios=[1, 1, 1, 0.8])
    axes = [fig.add_subplot(gs[i // 2, i % 2]) for i in range(6)]
    for a in axes[1:]:
        a.sharex(axes[0])
    ax_kill = fig.add_subplot(gs[3, 0])
    ax_sys = fig.add_subplot(gs[3, 1], sharex=axes[0])

    time_axes = axes + [ax_sys]
    for i, a in enumerate(time_axes):
        _dose_ticks(a, doses, label="dose applications" if i == 0 else "_nolegend_")
    tw_drug = _panel_drug(axes[0], ds, t)
    _merged_legend(axes[0], tw_drug, ncol=3, **_ABOVE)
    _panel_tlr7(axes[1], ds, t)
    _panel_cytokines(axes[2], ds, t)
    _panel_cells(axes[3], ds, t)
    _panel_lesions(axes[4], ds, t, thr)
    _panel_lsr(axes[5], ds, t)
    _panel_kills(ax_kill, ds)
    _panel_systemic(ax_sys, ds, t)

    _set_xlim(axes[0], t)
    xlabel = f"time [{ds['time'].attrs.get('units', 'days')}]"
    for i, a in enumerate(time_axes):
        a.grid(True, which="major", alpha=0.25)
        if i in (4, 5, 6):
            a.set_xlabel(xlabel)
        if i < 4:
            a.tick_params(labelbottom=True)

    fig.tight_layout(rect=(0, 0.015, 1, 0.975), h_pad=1.6, w_pad=1.5)
    return _finish(fig, path, title or _default_title(ds, "treatment cascade"))


def plot_lesions(
    ds: xr.Dataset,
    path: str | os.PathLike | None = None,
    *,
    title: str | None = None,
    dose_times_days: Sequence[float] | str | None = None,
    visible_threshold: float | None = None,
    histology_threshold: float | None = None,
) -> Figure:
    """Abnormal cells in each lesion slot (log) and the visible/histological counts.

    Parameters are as for :func:`plot_cascade`; ``histology_threshold`` (the
    ``histology_threshold_cells`` parameter) adds a second line when given.
    Slots that are empty throughout are left out of the legend.

    Returns
    -------
    matplotlib.figure.Figure
        With :data:`LESIONS_N_AXES` axes (lesion curves, lesion counts).
    """
    import matplotlib as mpl

    _check(ds)
    t = _time(ds)
    doses = _resolve_doses(ds, dose_times_days)
    thr = _threshold(ds, visible_threshold)
    hthr = None if histology_threshold is None else float(histology_threshold)
    if hthr is not None and not (np.isfinite(hthr) and hthr > 0):
        hthr = None

    fig = new_figure((11, 8))
    gs = fig.add_gridspec(2, 1, height_ratios=[3, 1])
    ax = fig.add_subplot(gs[0])
    axc = fig.add_subplot(gs[1], sharex=ax)

    _dose_ticks(ax, doses)
    _dose_ticks(axc, doses, label="dose applications")
    names = _slots(ds)
    cmap = mpl.colormaps["tab10"] if len(names) <= 10 else mpl.colormaps["viridis"]
    series: list[tuple[np.ndarray, dict]] = []
    empty = 0
    for i, n in enumerate(names):
        y = np.asarray(ds[n].values, dtype=float).reshape(-1)  # a slot name is in ds (_slots)
        color = cmap(i % 10) if len(names) <= 10 else cmap(i / max(len(names) - 1, 1))
        nonzero = bool(np.nanmax(np.abs(y)) > 0) if np.isfinite(y).any() else False
        empty += not nonzero
        label = f"lesion {n.split('_')[-1]}" if nonzero else "_nolegend_"
        # alternate solid/dashed so that identical neighbouring slots stay distinguishable
        series.append(
            (y, {"color": color, "lw": 1.3, "ls": "-" if i % 2 == 0 else "--", "label": label})
        )
    burden = _get(ds, "lesion_burden")
    if burden is not None:
        series.append(
            (burden, {"color": "k", "lw": 2.2, "ls": "-", "alpha": 0.8, "label": "total"})
        )
    extra = [np.array([v]) for v in (thr, hthr) if v]
    bottom, top, _ = _floor_for([*(y for y, _ in series), *extra], 6)
    _log_plot(ax, t, series, decades=6, empty_note="no lesion cells")
    ax.set_ylim(bottom, top)
    if thr:
        ax.axhline(thr, color="#d62728", ls=":", lw=1.4, label=f"visible above {_fmt(thr)} cells")
    if hthr:
        ax.axhline(
            hthr,
            color="#2ca02c",
            ls=":",
            lw=1.4,
            label=f"histology detects above {_fmt(hthr)} cells",
        )
    ax.set_ylabel(
        f"abnormal cells per lesion [{_units(ds, names[0] if names else 'lesion_burden', 'cells')}]"
    )
    leg_title = f"{empty} empty slot{'s' if empty != 1 else ''} not shown" if empty else None
    _merged_legend(ax, None, loc="upper right", ncol=3, title=leg_title, title_fontsize=7.5)
    ax.set_title("Lesion slots", loc="left", fontsize=10, fontweight="bold")
    ax.grid(True, alpha=0.25)
    ax.tick_params(labelbottom=False)

    _lesion_counts(axc, ds, t, ("histological", 1.3), ("visible", 1.7))
    axc.set_ylabel("lesion count")
    axc.set_xlabel(f"time [{ds['time'].attrs.get('units', 'days')}]")
    _merged_legend(axc, None, loc="upper right", ncol=3)
    axc.grid(True, alpha=0.25)
    _set_xlim(ax, t)

    fig.tight_layout(rect=(0, 0.02, 1, 0.965), h_pad=1.0)
    return _finish(fig, path, title or _default_title(ds, "lesions"))


__all__ = ["CASCADE_N_AXES", "FOOTER", "LESIONS_N_AXES", "plot_cascade", "plot_lesions"]
