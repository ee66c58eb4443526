"""Interactive Bokeh figures of the dashboard (hover shows the values; plots pan and zoom).

Built in the server process from the picklable results of :mod:`imiqsim.web.backend`. The
patient cascade has the eight panels of ``cascade.png`` (drug by layer, TLR7 signalling,
cytokines, immune cells, lesions, local skin reactions, kills by mechanism, systemic exposure);
several runs overlay (the latest solid, earlier ones dashed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from bokeh.layouts import gridplot
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    FactorRange,
    HoverTool,
    LinearAxis,
    LinearColorMapper,
    Range1d,
    Span,
)
from bokeh.palettes import Category10_10, Viridis256
from bokeh.plotting import figure

from imiqsim.web import backend

__all__ = ["cascade_grid", "field_figure", "trial_bands", "waterfall"]

_PALETTE = Category10_10
_DASHES = ("solid", "dashed", "dotted", "dotdash")
_WIDTH, _HEIGHT = 560, 270
_TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def _cytokine_label(name: str) -> str:
    """``ifn_alpha`` -> ``IFN-α``, ``il12`` -> ``IL-12``."""
    if name.startswith("il"):
        return "IL-" + name[2:]
    head, _, tail = name.partition("_")
    return head.upper() + ("-α" if tail == "alpha" else f" {tail}" if tail else "")


#: the time panels: (title, y label, log axis, [(variable, label)], right axis or None)
_PANELS: tuple = (
    (
        "1 · Drug by layer",
        "imiquimod (mg)",
        True,
        [
            ("film", "film"),
            ("stratum_corneum", "stratum corneum"),
            ("epidermis", "epidermis"),
            ("dermis", "dermis"),
            ("blood", "blood"),
        ],
        None,
    ),
    (
        "2 · TLR7 signalling",
        "fraction (0-1)",
        False,
        [
            ("tlr7_occupancy", "TLR7 occupancy"),
            ("tlr7_activation", "TLR7 activation"),
            ("tlr7_tolerance", "TLR7 tolerance"),
            ("pdc_irf7", "pDC IRF7"),
            ("macrophage_nfkb", "macrophage NF-κB"),
            ("dc_activation", "DC activation"),
        ],
        None,
    ),
    (
        "3 · Local cytokines",
        "pg/mL",
        True,
        [(c, _cytokine_label(c)) for c in backend.CYTOKINES],
        None,
    ),
    (
        "4 · Immune cells in skin",
        "cells/mm2",
        True,
        [(c, c.replace("_", " ")) for c in backend.SKIN_CELLS],
        None,
    ),
    (
        "5 · Lesions",
        "abnormal cells (all lesions)",
        True,
        [("lesion_burden", "lesion burden")],
        ("visible lesions", [("visible_lesions", "visible lesions")]),
    ),
    (
        "6 · Local skin reactions",
        "score",
        False,
        [
            ("lsr_score", "LSR sum (0-18)"),
            ("erythema_score", "erythema"),
            ("oedema_score", "oedema"),
            ("weeping_score", "weeping"),
            ("erosion_score", "erosion"),
            ("crusting_score", "crusting"),
            ("flaking_score", "flaking"),
        ],
        None,
    ),
    (
        "8 · Systemic exposure",
        "serum imiquimod (ng/mL)",
        False,
        [("serum_conc_ng_ml", "serum imiquimod")],
        ("flu-like symptoms (%)", [("flu_like_pct", "flu-like symptoms")]),
    ),
)


#: decades shown below the highest value on a log axis
_LOG_DECADES = {"1": 6.0, "3": 4.0, "4": 4.0, "5": 6.0}


def _source(run: backend.PatientRun, log_vars: set[str]) -> ColumnDataSource:
    ds = run.dataset
    data = {"t": ds["time"].values}
    for _, _, _, series, right in _PANELS:
        for var, _ in list(series) + (list(right[1]) if right else []):
            if var == "flu_like_pct":
                y = 100.0 * ds["flu_like_probability"].values
            elif var in ds:
                y = np.asarray(ds[var].values, dtype=float)
            else:
                continue
            if var in log_vars:
                y = np.where(y > 0, y, np.nan)  # a log axis cannot show zero (knockouts, vehicle)
            data[var] = y
    return ColumnDataSource(data)


def _hover(renderer, label: str, var: str, run_label: str) -> HoverTool:
    return HoverTool(
        renderers=[renderer],
        tooltips=[("run", run_label), (label, f"@{{{var}}}{{%0.4g}}"), ("day", "@t{0.0}")],
        formatters={f"@{{{var}}}": "printf"},
    )


def cascade_grid(runs: Sequence[backend.PatientRun]):
    """The eight-panel cascade of one or more patient runs (latest last), as one Bokeh grid."""
    log_vars = {v for _, _, log, series, _ in _PANELS if log for v, _ in series}
    sources = [_source(r, log_vars) for r in runs]
    figs = []
    x_range = None
    for title, ylabel, log, series, right in _PANELS:
        kw = {"x_range": x_range} if x_range is not None else {}
        p = figure(
            title=title,
            width=_WIDTH,
            height=_HEIGHT,
            y_axis_type="log" if log else "linear",
            tools=_TOOLS,
            x_axis_label="day",
            y_axis_label=ylabel,
            **kw,
        )
        x_range = p.x_range
        if right is not None:
            top = 1.0
            for src in sources:
                for var, _ in right[1]:
                    if var in src.data:
                        top = max(top, float(np.nanmax(src.data[var])) * 1.15)
            p.extra_y_ranges = {"right": Range1d(0, top)}
            p.add_layout(LinearAxis(y_range_name="right", axis_label=right[0]), "right")
        latest = len(runs) - 1
        for k, (run, src) in enumerate(zip(runs, sources, strict=True)):
            dash = _DASHES[(latest - k) % len(_DASHES)]
            lines = [(v, lab, {}) for v, lab in series]
            if right is not None:
                lines += [(v, lab, {"y_range_name": "right"}) for v, lab in right[1]]
            for i, (var, lab, extra) in enumerate(lines):
                if var not in src.data:
                    continue
                legend = {"legend_label": lab} if k == latest else {}
                r = p.line(
                    "t",
                    var,
                    source=src,
                    color=_PALETTE[i % len(_PALETTE)] if right is None or not extra else "black",
                    line_dash=dash,
                    line_width=2 if k == latest else 1.3,
                    alpha=1.0 if k == latest else 0.75,
                    **legend,
                    **extra,
                )
                p.add_tools(_hover(r, lab, var, run.label))
        if log:
            top = max(
                (float(np.nanmax(src.data[v])) for src in sources for v, _ in series
                 if v in src.data and np.isfinite(src.data[v]).any()),
                default=1.0,
            )  # fmt: skip
            p.y_range = Range1d(top / 10 ** _LOG_DECADES.get(title[0], 5.0), top * 3.0)
        if title.startswith("5") and runs:
            p.add_layout(
                Span(
                    location=runs[-1].visible_threshold,
                    dimension="width",
                    line_color="#d62728",
                    line_dash="dotted",
                    line_width=1.5,
                )
            )
        if p.legend:
            p.legend.location = "top_right"
            p.legend.label_text_font_size = "8pt"
            p.legend.background_fill_alpha = 0.7
            p.legend.click_policy = "hide"
        figs.append(p)
    figs.insert(6, _kills_figure(runs))
    return gridplot(figs, ncols=2, merge_tools=True, toolbar_location="right")


def _kills_figure(runs: Sequence[backend.PatientRun]):
    tallies = backend.kill_tallies()
    mech = [label for label, _ in tallies.values()]
    names = [f"run {r.label.split(':')[0].removeprefix('run ')}" for r in runs]
    factors = [(m, n) for m in mech for n in names]
    share, cells, colours = [], [], []
    for m_i, state in enumerate(tallies):
        for r in runs:
            total = sum(max(float(r.dataset[s].values[-1]), 0.0) for s in tallies if s in r.dataset)
            v = max(float(r.dataset[state].values[-1]), 0.0) if state in r.dataset else 0.0
            share.append(100.0 * v / total if total > 0 else 0.0)
            cells.append(v)
            colours.append(_PALETTE[m_i % len(_PALETTE)])
    src = ColumnDataSource({"y": factors, "share": share, "cells": cells, "colour": colours})
    p = figure(
        title="7 · Lesion cells killed, by mechanism (share at the end)",
        y_range=FactorRange(*reversed(factors)),
        x_range=Range1d(0, 100),
        width=_WIDTH,
        height=_HEIGHT,
        tools="save",
        x_axis_label="share of cumulative kills (%)",
    )
    r = p.hbar(y="y", right="share", height=0.8, source=src, color="colour")
    p.add_tools(
        HoverTool(
            renderers=[r],
            tooltips=[
                ("mechanism, run", "@y"),
                ("share", "@share{0.0}%"),
                ("cells killed", "@cells{%0.4g}"),
            ],
            formatters={"@cells": "printf"},
        )
    )
    p.yaxis.major_label_text_font_size = "7pt"
    p.yaxis.group_text_font_size = "8pt"
    p.yaxis.group_label_orientation = "horizontal"
    p.min_border_left = 150
    return p


def trial_bands(run: backend.TrialRun, arm_names: Sequence[str]):
    """Percentile bands (5-95, 25-75, median) of the trial's traces, one panel per variable."""
    figs = []
    x_range = None
    for var, label, log in backend.BAND_VARIABLES:
        kw = {"x_range": x_range} if x_range is not None else {}
        p = figure(
            title=label,
            width=_WIDTH,
            height=240,
            y_axis_type="log" if log else "linear",
            tools=_TOOLS,
            x_axis_label="day",
            **kw,
        )
        x_range = p.x_range
        top = max(
            (float(np.nanmax(b[var])) for b in run.bands if np.isfinite(b[var]).any()),
            default=1.0,
        )
        if log:
            p.y_range = Range1d(top / 1e6, top * 3.0)
        for i, (name, t, bands) in enumerate(zip(arm_names, run.t_days, run.bands, strict=True)):
            b = np.asarray(bands[var], dtype=float)
            if log:
                b = np.where(b > top / 1e8, b, top / 1e8)  # fill bands down to below the axis
            src = ColumnDataSource(
                {"t": t, "p5": b[0], "p25": b[1], "p50": b[2], "p75": b[3], "p95": b[4]}
            )
            colour = _PALETTE[i % len(_PALETTE)]
            p.varea("t", "p5", "p95", source=src, fill_color=colour, fill_alpha=0.12)
            p.varea("t", "p25", "p75", source=src, fill_color=colour, fill_alpha=0.3)
            r = p.line("t", "p50", source=src, color=colour, line_width=2, legend_label=name)
            p.add_tools(
                HoverTool(
                    renderers=[r],
                    tooltips=[
                        ("arm", name),
                        ("day", "@t{0.0}"),
                        ("median", "@p50{%0.4g}"),
                        ("25-75%", "@p25{%0.3g} - @p75{%0.3g}"),
                        ("5-95%", "@p5{%0.3g} - @p95{%0.3g}"),
                    ],
                    formatters={f"@{k}": "printf" for k in ("p5", "p25", "p50", "p75", "p95")},
                )
            )
        p.legend.location = "top_right"
        p.legend.label_text_font_size = "8pt"
        figs.append(p)
    return gridplot(figs, ncols=2, merge_tools=True, toolbar_location="right")


_WF_CLASSES = (
    ("complete clearance", "#2ca02c"),
    ("partial (>= 75%)", "#98df8a"),
    ("some reduction", "#ffbb78"),
    ("more lesions", "#d62728"),
)


def waterfall(run: backend.TrialRun, arm_names: Sequence[str]):
    """Per-patient % reduction in visible lesions, sorted, one panel per arm."""
    figs = []
    for name, df in zip(arm_names, run.waterfall, strict=True):
        red = df["reduction_pct"].to_numpy(dtype=float)
        cc = df["complete_clearance"].to_numpy(dtype=bool)
        cls = np.where(cc, 0, np.where(red >= 75.0 - 1e-9, 1, np.where(red >= 0, 2, 3)))
        src = ColumnDataSource(
            {
                "x": np.arange(red.size),
                "top": np.clip(red, -100.0, 100.0),
                "reduction": red,
                "patient": df["patient"].to_numpy(),
                "colour": [_WF_CLASSES[c][1] for c in cls],
                "outcome": [_WF_CLASSES[c][0] for c in cls],
            }
        )
        p = figure(
            title=f"{name}: per-patient lesion reduction",
            width=_WIDTH,
            height=260,
            y_range=Range1d(-105, 105),
            tools="box_zoom,reset,save",
            x_axis_label="patients, sorted",
            y_axis_label="visible lesions reduced (%)",
        )
        r = p.vbar(x="x", top="top", width=1.0, source=src, color="colour", line_width=0)
        p.add_layout(Span(location=75, dimension="width", line_dash="dashed", line_color="#333"))
        p.add_tools(
            HoverTool(
                renderers=[r],
                tooltips=[
                    ("patient", "@patient"),
                    ("reduction", "@reduction{0.0}%"),
                    ("outcome", "@outcome"),
                ],
            )
        )
        figs.append(p)
    return gridplot(figs, ncols=2, merge_tools=True, toolbar_location="right")


def field_figure(run: backend.FieldRun, var: str, index: int):
    """One map of the field at time ``index``; returns (figure, its image source)."""
    maps = run.maps
    da = maps[var]
    x, y = maps["x"].values, maps["y"].values
    dx = float(x[1] - x[0]) if x.size > 1 else 1.0
    hi = float(np.nanmax(da.values)) if np.isfinite(da.values).any() else 1.0
    lo = float(np.nanmin(da.values)) if np.isfinite(da.values).any() else 0.0
    mapper = LinearColorMapper(palette=Viridis256, low=lo, high=hi if hi > lo else lo + 1.0)
    side = float(x[-1] - x[0] + dx)
    src = ColumnDataSource({"image": [np.asarray(da.values[index], dtype=float)]})
    label = dict(backend.FIELD_VARIABLES).get(var, var)
    p = figure(
        title=f"{label}, day {maps['time'].values[index]:.0f}",
        width=620,
        height=560,
        x_range=Range1d(0, side),
        y_range=Range1d(0, side),
        tools="pan,wheel_zoom,reset,save",
        x_axis_label="mm",
        y_axis_label="mm",
        match_aspect=True,
    )
    r = p.image(
        image="image",
        x=float(x[0] - dx / 2),
        y=float(y[0] - dx / 2),
        dw=side,
        dh=side,
        source=src,
        color_mapper=mapper,
    )
    p.add_tools(
        HoverTool(
            renderers=[r],
            tooltips=[("x, y (mm)", "$x{0.0}, $y{0.0}"), (var, "@image{%0.4g}")],
            formatters={"@image": "printf"},
        )
    )
    p.add_layout(ColorBar(color_mapper=mapper, width=12), "right")
    return p, src
