"""Interactive Bokeh figures of the dashboard (hover shows the values; plots pan and zoom).

Built in the server process from the picklable results of :mod:`imiqsim.web.backend`. The
patient cascade has the eight panels of ``cascade.png`` (drug by layer, TLR7 signalling,
cytokines, immune cells, lesions, local skin reactions, kills by mechanism, systemic exposure);
several runs overlay (the latest solid, earlier ones dashed).
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from bokeh.layouts import gridplot
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    DataRange1d,
    FactorRange,
    HoverTool,
    LinearAxis,
    LinearColorMapper,
    LinearScale,
    LogColorMapper,
    Range1d,
    Span,
)
from bokeh.palettes import Category10_10, Viridis256
from bokeh.plotting import figure

from imiqsim.web import backend

__all__ = [
    "SLOTS",
    "Trace",
    "cascade_payload",
    "cascade_template",
    "field_figure",
    "patient_job",
    "trial_bands",
    "trial_job",
    "trace_of",
    "warm_up",
    "waterfall",
]

_PALETTE = Category10_10
_DASHES = ("solid", "dashed", "dotted", "dotdash")
_WIDTH, _HEIGHT = 560, 270
_TOOLS = "pan,box_zoom,reset"


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
        [(name, lab) for name, lab, _ in backend.DRUG_LAYERS],
        None,
    ),
    (
        "2 · TLR7 signalling",
        "fraction (0-1)",
        False,
        [(name, lab) for name, lab, _, _ in backend.TLR7_SIGNALS],
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
        [("lsr_score", "LSR sum (0-18)")]
        + [(name, lab) for name, lab, _ in backend.LSR_COMPONENTS],
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


#: overlay slots of the cascade, newest first: (name, line dash, line width, alpha)
SLOTS: tuple[tuple[str, str, float, float], ...] = (
    ("latest", "solid", 2.0, 1.0),
    ("previous", "dashed", 1.3, 0.8),
    ("earlier", "dotted", 1.3, 0.8),
)


def _columns() -> list[str]:
    cols = ["t"]
    for _, _, _, series, right in _PANELS:
        cols += [v for v, _ in series] + ([v for v, _ in right[1]] if right else [])
    return cols


@dataclass
class Trace:
    """One patient run as the cascade shows it: its label and a compact JSON-ready payload.

    ``payload`` holds the plotted columns as base64 float32 (NaN where a log axis would show
    zero or values far below the panel's peak), the share of lesion cells killed by each
    mechanism, and the visibility threshold.
    """

    label: str
    payload: dict


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def trace_of(run: backend.PatientRun) -> Trace:
    """The cascade data of a patient run (computed in the worker that simulated it)."""
    ds = run.dataset
    cols: dict[str, str] = {"t": _b64(ds["time"].values)}
    for title, _, log, series, right in _PANELS:
        panel: dict[str, np.ndarray] = {}
        for var, _ in list(series) + (list(right[1]) if right else []):
            if var == "flu_like_pct":
                panel[var] = 100.0 * np.asarray(ds["flu_like_probability"].values, dtype=float)
            elif var in ds:
                panel[var] = np.asarray(ds[var].values, dtype=float)
            else:
                panel[var] = np.full(ds.sizes["time"], np.nan)
        if log:
            # a log axis shows the panel's top decades; zero (knockouts, vehicle) cannot be shown
            left = [panel[v] for v, _ in series]
            finite = [y[np.isfinite(y)] for y in left]
            top = max((float(y.max()) for y in finite if y.size), default=0.0)
            floor = top / 10 ** _LOG_DECADES.get(title[0], 5.0) if top > 0 else np.inf
            for v, _ in series:
                y = panel[v]
                panel[v] = np.where(y >= floor, y, np.nan)
        cols.update({v: _b64(y) for v, y in panel.items()})
    tallies = backend.kill_tallies()
    kills = {st: max(float(ds[st].values[-1]), 0.0) if st in ds else 0.0 for st in tallies}
    total = sum(kills.values())
    payload = {
        "columns": cols,
        "cells": [kills[st] for st in tallies],
        "share": [100.0 * kills[st] / total if total > 0 else 0.0 for st in tallies],
        "threshold": float(run.visible_threshold),
    }
    return Trace(run.label, payload)


def cascade_payload(traces: Sequence[Trace]) -> str:
    """The data of up to ``len(SLOTS)`` runs (oldest first) for :func:`cascade_template`."""
    newest = list(traces)[::-1][: len(SLOTS)]
    return json.dumps(
        {
            "slots": [t.payload for t in newest],
            "labels": [t.label for t in newest],
            "threshold": newest[0].payload["threshold"] if newest else None,
        }
    )


def _hover(renderers) -> HoverTool:
    # one tool per panel: each line is named after its column, so "@$name" is its value
    return HoverTool(
        renderers=renderers,
        tooltips=[("", "$name"), ("value", "@$name{%0.4g}"), ("day", "@t{0.0}")],
        formatters={"@$name": "printf"},
    )


@functools.cache
def cascade_template() -> str:
    """The eight-panel cascade with empty data, as JSON text (built once per process).

    One Bokeh document whose eight figures are separate roots (see :func:`_roots`), laid out
    two per row by :class:`imiqsim.web.embed.BokehItem`.

    Its data sources are named ``slot0`` (latest run) ... and ``kills``, the visibility line
    ``threshold``; :class:`imiqsim.web.embed.BokehItem` fills them from a
    :func:`cascade_payload`, so a run costs the server no Bokeh model at all.
    """
    empty = {c: np.zeros(0, dtype=np.float32) for c in _columns()}
    sources = [ColumnDataSource(dict(empty), name=f"slot{k}") for k in range(len(SLOTS))]
    figs = []
    x_range = DataRange1d(only_visible=True)
    for title, ylabel, log, series, right in _PANELS:
        p = figure(
            title=title,
            width=_WIDTH,
            height=_HEIGHT,
            y_axis_type="log" if log else "linear",
            tools=_TOOLS,
            x_axis_label="day",
            y_axis_label=ylabel,
            x_range=x_range,
            y_range=DataRange1d(only_visible=True),
        )
        lines = [(v, lab, {}) for v, lab in series]
        if right is not None:
            p.extra_y_ranges = {"right": DataRange1d(start=0, only_visible=True)}
            p.extra_y_scales = {"right": LinearScale()}  # linear even beside a log axis
            p.add_layout(LinearAxis(y_range_name="right", axis_label=right[0]), "right")
            lines += [(v, lab, {"y_range_name": "right"}) for v, lab in right[1]]
        drawn = []
        right_lines = []
        for k, (src, (_, dash, width, alpha)) in enumerate(zip(sources, SLOTS, strict=True)):
            for i, (var, lab, extra) in enumerate(lines):
                r = p.line(
                    "t",
                    var,
                    source=src,
                    color="black" if extra else _PALETTE[i % len(_PALETTE)],
                    line_dash=dash,
                    line_width=width,
                    alpha=alpha,
                    name=var,
                    **({"legend_label": lab} if k == 0 else {}),
                    **extra,
                )
                drawn.append(r)
                if extra:
                    right_lines.append(r)
        if right_lines:
            p.extra_y_ranges["right"].renderers = right_lines
        p.y_range.renderers = [r for r in drawn if r not in right_lines]
        p.add_tools(_hover(drawn))
        if title.startswith("5"):
            p.add_layout(
                Span(
                    location=None,
                    dimension="width",
                    line_color="#d62728",
                    line_dash="dotted",
                    line_width=1.5,
                    name="threshold",
                )
            )
        p.legend.location = "top_right"
        p.legend.label_text_font_size = "8pt"
        p.legend.background_fill_alpha = 0.7
        p.legend.click_policy = "hide"
        figs.append(p)
    figs.insert(6, _kills_figure())
    return _roots(figs)


def _kills_figure():
    tallies = backend.kill_tallies()
    factors = [(label, slot) for label, _ in tallies.values() for slot, *_ in SLOTS]
    n = len(factors)
    colours = [_PALETTE[i // len(SLOTS) % len(_PALETTE)] for i in range(n)]
    src = ColumnDataSource(
        {"y": factors, "share": np.zeros(n), "cells": np.zeros(n), "colour": colours},
        name="kills",
    )
    p = figure(
        title="7 · Lesion cells killed, by mechanism (share at the end)",
        y_range=FactorRange(*reversed(factors)),
        x_range=Range1d(0, 100),
        width=_WIDTH,
        height=_HEIGHT,
        tools="",
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


_LOG_MAPS = ("lesion_cells", "skin_conc_ug_ml")


def field_figure(run: backend.FieldRun, var: str, index: int):
    """One map of the field at time ``index``; returns (figure, its image source)."""
    maps = run.maps
    da = maps[var]
    x, y = maps["x"].values, maps["y"].values
    dx = float(x[1] - x[0]) if x.size > 1 else 1.0
    hi = float(np.nanmax(da.values)) if np.isfinite(da.values).any() else 1.0
    lo = float(np.nanmin(da.values)) if np.isfinite(da.values).any() else 0.0
    if var in _LOG_MAPS and hi > 0:
        # lesion cells span decades: a log colour scale shows the shrinking lesions
        mapper = LogColorMapper(palette=Viridis256, low=hi / 1e4, high=hi)
    else:
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


# --------------------------------------------------------------------------- jobs
# The figures are built in the worker processes and travel as Bokeh JSON items: building several
# hundred Bokeh models is the costliest step of a patient run, and there it runs in parallel.


def warm_up() -> None:
    """A worker's start: load the compiled kernel and Bokeh's modules before the first job."""
    from bokeh.embed import json_item

    backend.warm_up()
    p = figure(width=10, height=10)
    p.line([0, 1], [0, 1])
    json_item(p)
    trace_of(backend.run_patient_job(backend.load_scenario_named("ak-5pct"), {}, [], "warm-up"))


def _item(layout) -> str:
    # JSON text, not a dict: the server forwards a string without walking it
    from bokeh.embed import json_item

    return json.dumps(json_item(layout))


def _roots(figs) -> str:
    """Figures sharing one document but each its own root (JSON text for ``BokehItem``).

    A grid of plots is one layout: when one plot's axis labels change width (a log axis
    showing new decades), Bokeh lays out and repaints the whole grid; as separate roots in a
    CSS grid, each plot lays out and repaints alone.
    """
    from bokeh.embed.util import OutputDocumentFor, standalone_docs_json

    with OutputDocumentFor(figs) as doc:
        doc.title = ""
        [doc_json] = standalone_docs_json(figs).values()
    return json.dumps({"doc": doc_json, "root_ids": [f.id for f in figs], "columns": 2})


def patient_job(sc, overrides, knockouts, label: str) -> tuple[backend.PatientRun, Trace]:
    """Simulate a patient and prepare its cascade data: (run, its trace)."""
    run = backend.run_patient_job(sc, overrides, knockouts, label)
    return run, trace_of(run)


def trial_job(
    arms, patients: int, seed: int, followup_years: float, compare: bool, progress=None
) -> tuple[backend.TrialRun, str | None, str | None]:
    """Run a trial and draw its bands and waterfall: (run, bands item, waterfall item)."""
    run = backend.run_trial_job(arms, patients, seed, followup_years, compare, progress=progress)
    if compare:
        return run, None, None
    names = [a["name"] for a in run.summary["arms"]]
    return run, _item(trial_bands(run, names)), _item(waterfall(run, names))
