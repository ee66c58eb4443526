"""How estimates are written: the report's typography and the console's plain text.

>>> from imiqsim.outputs.formatting import format_difference, format_proportion, plain_estimate
>>> format_proportion({"value": 0.451, "ci95": [0.412, 0.490]})
'45.1% (41.2–49.0)'
>>> format_difference({"value": 0.011, "ci95": [-0.086, 0.02]})
'+1.1 pp (−8.6 to 2.0)'
>>> plain_estimate({"value": 0.451, "ci95": [0.412, 0.490]})
'45.1% (41.2-49.0)'
>>> plain_estimate({"value": 67.25, "ci95": [61.8, 76.2]}, percent=False)
'67.2 (61.8-76.2)'
>>> plain_estimate({"value": -0.25, "ci95": [-0.494, 0.047]})
'-25.0% (-49.4 to 4.7)'
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

import numpy as np

__all__ = ["format_days", "format_difference", "format_proportion", "plain_estimate"]


def _finite(x: Any) -> TypeGuard[float]:
    return (
        x is not None
        and isinstance(x, (int, float, np.integer, np.floating))
        and math.isfinite(float(x))
    )


def _num(x: float, digits: int, sign: bool = False) -> str:
    s = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    return s.replace("-", "\u2212")  # typographic minus


def _dash(a: float, b: float, digits: int) -> str:
    """``"41.2–49.0"``; ``"−8.6 to 2.0"`` when a bound is negative (a dash would be ambiguous)."""
    sep = " to " if (a < 0 or b < 0) else "\u2013"
    return f"{_num(a, digits)}{sep}{_num(b, digits)}"


def format_proportion(ep: dict, digits: int = 1) -> str:
    """``"45.1% (41.2–49.0)"`` for a ``{"value", "ci95"}`` fraction; ``"—"`` if empty."""
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


def plain_estimate(ep: dict, percent: bool = True) -> str:
    """``"45.1% (41.2-49.0)"`` (or ``"67.2 (61.8-76.2)"`` with ``percent=False``): console tables.

    ``"-"`` when the estimate is empty (nobody in its denominator); the bounds
    are joined by ``" to "`` when one is negative, where a hyphen would read as
    a minus sign.
    """
    if ep.get("value") is None:
        return "-"
    scale, unit = (100.0, "%") if percent else (1.0, "")
    lo, hi = (scale * b for b in ep["ci95"])
    sep = " to " if (lo < 0 or hi < 0) else "-"
    return f"{scale * ep['value']:.1f}{unit} ({lo:.1f}{sep}{hi:.1f})"
