"""Side-by-side comparison of treatments (e.g. imiquimod vs cryotherapy), every number simulated.

``imiqsim compare ak-5pct ak-cryo --patients 1000`` runs both as one virtual trial (the same
virtual patients in both arms) and builds the table a clinician expects: mechanism, who applies it
and where, field vs lesion-directed, cosmetic outcome, local and systemic side effects, initial,
histological and sustained clearance, recurrence, and how each arm's model was calibrated. Numbers
carry 95% CIs. Every treatment answers for itself (its delivery, mechanism and calibration): no
product names here.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from pathlib import Path

from imiqsim import __version__
from imiqsim.scenario import Scenario
from imiqsim.trial import TrialResult
from imiqsim.trial.endpoints import comparison_endpoints
from imiqsim.vocabulary import DISCLAIMER as _DISCLAIMER

#: the disclaimer on every comparison (one text for all of imiqsim)
DISCLAIMER = _DISCLAIMER


def _pct(e: dict | None) -> str:
    if not e or e.get("value") is None:
        return "n/a"
    lo, hi = e["ci95"]
    return f"{100 * e['value']:.1f}% ({100 * lo:.1f}-{100 * hi:.1f})"


def _who(sc: Scenario) -> str:
    return sc.treatment.delivery(sc.area_cm2).who_and_where()


def _directed(sc: Scenario) -> str:
    return sc.treatment.delivery(sc.area_cm2).directed


def _mechanism(sc: Scenario, ep: dict) -> str:
    f = ep.get("fraction_killed_by_immune", {}).get("value")
    share = (
        ""
        if f is None
        else f" ({100 * f:.0f}% of killed lesion cells killed by immune effectors, "
        f"{100 * (1 - f):.0f}% directly)"
    )
    return sc.treatment.mechanism() + share


def comparison_rows(tr: TrialResult) -> list[dict]:
    """The side-by-side table as a list of ``{"feature": ..., ARM: value or text}``."""
    arms = tr.arms
    rows: list[dict] = []

    def add(feature: str, fn) -> None:
        row = {"feature": feature}
        for a in arms:
            row[a.name] = fn(a)
        rows.append(row)

    add("mechanism", lambda a: _mechanism(a.scenario, a.endpoints))
    add("who applies it and where", lambda a: _who(a.scenario))
    add("treatment", lambda a: a.scenario.treatment_text())
    add("field vs lesion-directed", lambda a: _directed(a.scenario))
    for ep in comparison_endpoints():  # the endpoint rows, from the one registry
        add(ep.compare_label, lambda a, name=ep.name: _pct(a.endpoints.get(name)))
    add("model calibration", lambda a: a.scenario.treatment.calibration)
    return rows


def comparison_dict(tr: TrialResult) -> dict:
    d = tr.to_dict()
    d["rows"] = comparison_rows(tr)
    d["disclaimer"] = DISCLAIMER
    return d


def write_comparison_html(tr: TrialResult, out_dir: Path, command: str = "") -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = comparison_rows(tr)
    names = [a.name for a in tr.arms]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join(
        "<tr><td><b>"
        + html.escape(r["feature"])
        + "</b></td>"
        + "".join(f"<td>{html.escape(str(r[n]))}</td>" for n in names)
        + "</tr>"
        for r in rows
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>imiqsim comparison</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}
table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:6px 8px;vertical-align:top;font-size:14px}}
th{{background:#f3f3f3}}
.disclaimer{{border:2px solid #b00;padding:.6em;background:#fff4f4;margin:1em 0}}</style></head>
<body>
<h1>{html.escape(" vs ".join(names))}</h1>
<p>imiqsim {__version__}; {tr.n_patients} virtual patients per arm (the same patients in every
arm), seed {tr.seed}; follow-up {tr.followup_years:g} years;
generated {_dt.datetime.now().strftime("%Y-%m-%d %H:%M")}.
{html.escape(command)}</p>
<div class="disclaimer">{DISCLAIMER}</div>
<table><tr><th>feature</th>{head}</tr>{body}</table>
<p>Percentages: simulated proportion (Wilson 95% CI). Lesion-level rows pool lesions over patients.
Complete clearance = no visible lesion at the assessment visit; histological = no lesion above the
histological detection limit; recurrence and sustained clearance count any visible lesion
(recurrent or new) among complete clearers.</p></body></html>"""
    path = out_dir / "comparison.html"
    path.write_text(page, encoding="utf-8")
    (out_dir / "comparison.json").write_text(json.dumps(comparison_dict(tr), indent=1, default=str))
    return path
