"""The virtual-trial report: one self-contained HTML page with the endpoint table and figures.

>>> from imiqsim.trial import run_trial
>>> from imiqsim.outputs.trial_report import write_trial_bundle
>>> tr = run_trial(["ak-5pct", "ak-5pct-vehicle"], patients=200)   # doctest: +SKIP
>>> write_trial_bundle(tr, "out")      # doctest: +SKIP

:func:`write_trial_report` writes ``report.html`` (inline CSS, figures
embedded as base64 PNG, no scripts, no external assets; template
``imiqsim/outputs/templates/trial_report.html``) and the same figures as PNG
beside it. :func:`write_trial_bundle` writes the data files first
(:func:`imiqsim.outputs.trial.write_trial_outputs`), so a plotting failure
never loses the simulated data. Endpoint intervals are 95% CIs (Wilson for
proportions, Newcombe for differences, order statistics for medians).
"""

from __future__ import annotations

import base64
import datetime as _dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from imiqsim import __version__
from imiqsim._json import json_safe
from imiqsim.outputs.files import figure_step, write_bytes_atomic, write_text_atomic
from imiqsim.outputs.formatting import format_days, format_difference, format_proportion
from imiqsim.outputs.trial import end_of_treatment_days, write_trial_outputs
from imiqsim.outputs.trial_figures import (
    LESION_FLOOR,
    arm_colour,
    fig_kinetics,
    fig_lesions_lsr,
    fig_subgroups,
    fig_waterfall,
    kinetics_panels,
    png_bytes,
    subgroup_table,
    window_days,
)
from imiqsim.trial.endpoints import Endpoint, differences, endpoint, report_endpoints
from imiqsim.vocabulary import DISCLAIMER, HOURS_PER_DAY

if TYPE_CHECKING:
    from imiqsim.trial import TrialResult

__all__ = [
    "FIGURE_NAMES",
    "REPORT_NAME",
    "format_endpoint",
    "write_trial_bundle",
    "write_trial_report",
]

REPORT_NAME = "report.html"
#: figure files written next to report.html, in report order
FIGURE_NAMES = ("fig_lesions_lsr.png", "fig_kinetics.png", "fig_waterfall.png", "fig_subgroups.png")


def format_endpoint(key: str, ep: dict) -> str:
    """The table text of one endpoint of one arm (as shown in report.html)."""
    return format_days(ep) if endpoint(key).unit == "days" else format_proportion(ep)


def _n_text(info: Endpoint, ep: dict) -> str:
    n = int(ep.get("n") or 0)
    if info.kind in ("proportion", "pooled_proportion") and "k" in ep:
        return f"{int(ep['k'])}/{n}"
    return f"n = {n}"


def _endpoint_rows(result) -> tuple[list[dict], list[str]]:
    """The report's endpoint table: the registry's report rows that some arm has."""
    arms = result.arms
    diffs = json_safe(differences(result))
    diff_names = [f"{d['arms'][0]} \u2212 {d['arms'][1]}" for d in diffs]
    rows = []
    for info in report_endpoints():
        eps = [a.endpoints.get(info.name) for a in arms]
        if all(e is None for e in eps):
            continue
        if info.report_optional and not any(e and int(e.get("n") or 0) > 0 for e in eps):
            continue
        cells = []
        for e in eps:
            e = e or {}
            text = format_days(e) if info.unit == "days" else format_proportion(e)
            cells.append({"text": text, "n": _n_text(info, e) if e else ""})
        dcells = []
        for d in diffs:
            de = d["endpoints"].get(info.name)
            dcells.append(format_difference(de) if de else "")
        rows.append({"key": info.name, "label": info.label, "cells": cells, "diffs": dcells})
    return rows, diff_names


def _template():
    from importlib import resources

    import jinja2

    src = (
        resources.files("imiqsim.outputs")
        .joinpath("templates", "trial_report.html")
        .read_text(encoding="utf-8")
    )
    env = jinja2.Environment(
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined
    )
    return env.from_string(src)


def write_trial_report(
    result: TrialResult,
    out_dir: str | os.PathLike,
    *,
    title: str | None = None,
    command: str | None = None,
) -> Path:
    """Write ``out_dir/report.html`` (self-contained) and the figure PNGs beside it.

    Returns the path of the HTML page.

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
    for name, (caption, make, kw) in zip(FIGURE_NAMES, makers, strict=True):
        png = png_bytes(make(result, **kw))
        write_bytes_atomic(out / name, png)
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
                "colour": arm_colour(i),
                "scenario": a.scenario.name,
                "describe": a.scenario.describe(),
                "n": len(a.outcomes),
                "failed": n_failed,
                "eot": end_of_treatment_days(a),
                "assessment": a.scenario.assessment_time_h() / HOURS_PER_DAY,
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
        endpoint_info=[e for e in report_endpoints() if e.name in {r["key"] for r in ep_rows}],
        command=command,
        indications=indications,
        window=window_days(arms),
        lesion_floor=f"{LESION_FLOOR * 100:.10g}%",
        kinetics_cytokines=", ".join(
            lab for _, lab, grp in kinetics_panels(result) if grp == "cytokine"
        ),
    )
    p = out / REPORT_NAME
    write_text_atomic(p, html)
    return p


def write_trial_bundle(
    result: TrialResult,
    out_dir: str | os.PathLike,
    *,
    title: str | None = None,
    command: str | None = None,
    on_figure_error: Callable[[str], None] | None = None,
) -> list[Path]:
    """:func:`write_trial_outputs` then :func:`write_trial_report`; returns every path written.

    The data files are on disk before any figure is drawn, so a plotting
    error never loses the simulated data. The error is raised, or, with
    ``on_figure_error``, reported through it in one line and the data paths
    alone are returned.
    """
    paths = write_trial_outputs(result, out_dir)
    html = figure_step(
        lambda: write_trial_report(result, out_dir, title=title, command=command),
        "write the HTML report",
        on_figure_error,
    )
    if html is None:
        return paths
    return paths + [Path(out_dir) / n for n in FIGURE_NAMES] + [html]
