"""Side-by-side comparison of treatments (e.g. imiquimod vs cryotherapy), every number simulated.

``imiqsim compare ak-5pct ak-cryo --patients 1000`` runs both as one virtual trial (the same
virtual patients in both arms) and builds the table a clinician expects: mechanism, who applies it
and where, field vs lesion-directed, cosmetic outcome, local and systemic side effects, initial,
histological and sustained clearance, recurrence, and how each arm's model was calibrated. Numbers
carry 95% CIs. Every treatment answers for itself (its delivery, mechanism and calibration): no
product names here.
"""

from __future__ import annotations

from pathlib import Path

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
    """Write the comparison page and JSON (:func:`imiqsim.outputs.compare.write_comparison`)."""
    from imiqsim.outputs.compare import write_comparison

    return write_comparison(tr, out_dir, command)[0]
