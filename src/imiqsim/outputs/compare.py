"""The files of a side-by-side comparison: ``comparison.html`` and ``comparison.json``.

>>> from imiqsim.trial import run_trial
>>> from imiqsim.outputs.compare import write_comparison
>>> tr = run_trial(["ak-5pct", "ak-cryo"], patients=100)      # doctest: +SKIP
>>> [p.name for p in write_comparison(tr, "out/compare")]     # doctest: +SKIP
['comparison.html', 'comparison.json']

The table itself (its rows and their words) is :mod:`imiqsim.compare`'s; this
module only writes it.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from imiqsim import __version__
from imiqsim.outputs.files import write_text_atomic
from imiqsim.vocabulary import DISCLAIMER

if TYPE_CHECKING:
    from imiqsim.trial import TrialResult

__all__ = ["HTML_NAME", "JSON_NAME", "comparison_html", "write_comparison"]

HTML_NAME = "comparison.html"
JSON_NAME = "comparison.json"


def comparison_html(tr: TrialResult, rows: list[dict], command: str = "") -> str:
    """The comparison page: one table, every cell a simulated value or the treatment's own words."""
    names = [a.name for a in tr.arms]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    failed = "".join(
        f"<p class='alert'>{k} of {len(a.outcomes)} patients of {html.escape(a.name)} could not "
        "be simulated (solver failure) and are left out of its rows.</p>"
        for a in tr.arms
        if (k := int((a.outcomes["status"] != 0).sum()) if "status" in a.outcomes else 0)
    )
    body = "".join(
        "<tr><td><b>"
        + html.escape(r["feature"])
        + "</b></td>"
        + "".join(f"<td>{html.escape(str(r[n]))}</td>" for n in names)
        + "</tr>"
        for r in rows
    )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse}\n"
        "td,th{border:1px solid #ccc;padding:6px 8px;vertical-align:top;font-size:14px}"
        "th{background:#f3f3f3}\n"
        ".disclaimer{border:2px solid #b00;padding:.6em;background:#fff4f4;margin:1em 0}"
    )
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>imiqsim comparison</title>
<style>{style}</style></head><body>
<h1>{html.escape(" vs ".join(names))}</h1>
<p>imiqsim {__version__}; {tr.n_patients} virtual patients per arm (the same patients in every
arm), seed {tr.seed}; follow-up {tr.followup_years:g} years; generated {when}.
{html.escape(command)}</p>
<div class="disclaimer">{html.escape(DISCLAIMER)}</div>
{failed}<table><tr><th>feature</th>{head}</tr>{body}</table>
<p>Percentages: simulated proportion (Wilson 95% CI). Lesion-level rows pool lesions over patients.
Complete clearance = no visible lesion at the assessment visit; histological = no lesion above the
histological detection limit; recurrence and sustained clearance count any visible lesion
(recurrent or new) among complete clearers.</p></body></html>"""


def write_comparison(tr: TrialResult, out_dir: str | os.PathLike, command: str = "") -> list[Path]:
    """Write ``comparison.html`` and ``comparison.json`` (:func:`imiqsim.compare.comparison_dict`).

    Parameters
    ----------
    tr : imiqsim.trial.TrialResult
        The arms to compare, simulated on the same virtual patients.
    out_dir : path
        Folder, created if needed.
    command : str
        The command line that reproduces the run, shown on the page.

    Returns
    -------
    list of Path
        ``[comparison.html, comparison.json]``.
    """
    from imiqsim.compare import comparison_dict

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = comparison_dict(tr)
    page = out / HTML_NAME
    write_text_atomic(page, comparison_html(tr, d["rows"], command))
    js = out / JSON_NAME
    write_text_atomic(js, json.dumps(d, indent=1, default=str))
    return [page, js]
