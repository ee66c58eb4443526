"""Allowed ranges of the model parameters, as data: ``model/parameter_bounds.csv``.

Each row holds a parameter name or a shell-style pattern (``k_*``, ``*_present``), a kind
(``range`` or ``switch``), the bounds with their inclusive flags, and the reason in words.
An exact name wins over every pattern; among patterns the first matching row wins. A new
parameter usually needs no row: its name follows a convention a pattern already covers
(``k_*`` rates, ``*_fraction`` fractions, ``*_hill`` Hill coefficients ...).

:func:`check_parameters` enforces the bounds wherever parameter values come from the user
(``--set``, a scenario file's ``[parameters]``, the Python API): a value outside is an
:class:`~imiqsim.errors.InputError` that names the parameter, the value and the range.

Examples
--------
>>> from imiqsim.model.bounds import bound_for, check_parameters
>>> bound_for("nk_present").describe()
'0 or 1'
>>> bound_for("k_nk_kill").describe()
'>= 0'
>>> check_parameters({"cd8_fraction": 1e6})
Traceback (most recent call last):
...
imiqsim.errors.InputError: parameters.cd8_fraction: got 1000000.0; must be in [0, 1] (a fraction)
"""

from __future__ import annotations

import csv
import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from numbers import Real
from typing import Any

from imiqsim.errors import InputError, ModelDefinitionError

__all__ = [
    "BOUNDS_FILE",
    "Bound",
    "bound_for",
    "check_parameter",
    "check_parameters",
    "load_bounds",
    "uncovered",
]

BOUNDS_FILE = "parameter_bounds.csv"


@dataclass(frozen=True)
class Bound:
    """One row of the bounds table.

    Attributes
    ----------
    pattern : str
        A parameter name or a shell-style pattern.
    kind : str
        ``"range"`` or ``"switch"`` (exactly 0 or 1).
    lo, hi : float or None
        The bounds (None: unbounded on that side).
    lo_inclusive, hi_inclusive : bool
        Whether the bound itself is allowed.
    reason : str
        What the parameter is, in words (shown in error messages).
    """

    pattern: str
    kind: str
    lo: float | None
    hi: float | None
    lo_inclusive: bool
    hi_inclusive: bool
    reason: str

    def allows(self, value: float) -> bool:
        """Whether ``value`` (a finite number) is allowed."""
        if self.kind == "switch":
            return value in (0.0, 1.0)
        if self.lo is not None and (
            value < self.lo or (value == self.lo and not self.lo_inclusive)
        ):
            return False
        if self.hi is not None and (
            value > self.hi or (value == self.hi and not self.hi_inclusive)
        ):
            return False
        return True

    def describe(self) -> str:
        """The allowed values in words: ``'0 or 1'``, ``'> 0'``, ``'in [0, 1]'`` ..."""
        if self.kind == "switch":
            return "0 or 1"
        if self.lo is not None and self.hi is not None:
            return (
                f"in {'[' if self.lo_inclusive else '('}{self.lo:g}, "
                f"{self.hi:g}{']' if self.hi_inclusive else ')'}"
            )
        if self.lo is not None:
            return f"{'>=' if self.lo_inclusive else '>'} {self.lo:g}"
        if self.hi is not None:
            return f"{'<=' if self.hi_inclusive else '<'} {self.hi:g}"
        return "any finite number"


def _flag(text: str, where: str) -> bool:
    t = text.strip().lower()
    if t in ("", "true"):
        return t == "true"
    if t == "false":
        return False
    raise ModelDefinitionError(f"{where}: inclusive flag {text!r} is not true/false")


def _num(text: str, where: str) -> float | None:
    t = text.strip()
    if not t:
        return None
    try:
        v = float(t)
    except ValueError:
        raise ModelDefinitionError(f"{where}: bound {text!r} is not a number") from None
    if not math.isfinite(v):
        raise ModelDefinitionError(f"{where}: bound {text!r} is not finite")
    return v


@lru_cache(maxsize=1)
def load_bounds() -> tuple[Bound, ...]:
    """The rows of ``parameter_bounds.csv``, in file order."""
    text = resources.files("imiqsim.model").joinpath(BOUNDS_FILE).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    rows = []
    for i, r in enumerate(csv.DictReader(lines), start=2):
        where = f"{BOUNDS_FILE} row {i} ({r.get('pattern')})"
        kind = (r.get("kind") or "").strip()
        if kind not in ("range", "switch"):
            raise ModelDefinitionError(f"{where}: kind {kind!r} is not range or switch")
        lo, hi = _num(r.get("min") or "", where), _num(r.get("max") or "", where)
        lo_inc = _flag(r.get("min_inclusive") or "", where)
        hi_inc = _flag(r.get("max_inclusive") or "", where)
        if lo is not None and hi is not None and lo > hi:
            raise ModelDefinitionError(f"{where}: min {lo} > max {hi}")
        rows.append(
            Bound(
                r["pattern"].strip(), kind, lo, hi, lo_inc, hi_inc, (r.get("reason") or "").strip()
            )
        )
    return tuple(rows)


@lru_cache(maxsize=4096)
def bound_for(name: str) -> Bound | None:
    """The row that governs parameter ``name``: its exact row, else the first matching pattern."""
    rows = load_bounds()
    for b in rows:
        if b.pattern == name:
            return b
    for b in rows:
        if any(c in b.pattern for c in "*?[") and fnmatch.fnmatchcase(name, b.pattern):
            return b
    return None


def check_parameter(name: str, value: Any, field: str | None = None) -> float:
    """Return ``value`` as a float if parameter ``name`` may take it; else raise InputError.

    ``field`` names the value in the message (default ``parameters.<name>``).
    """
    field = field or f"parameters.{name}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InputError(field, value, "must be a number")
    v = float(value)
    if not math.isfinite(v):
        raise InputError(field, value, "must be a finite number (not inf or nan)")
    b = bound_for(name)
    if b is not None and not b.allows(v):
        raise InputError(field, v, f"must be {b.describe()} ({b.reason})")
    return v


def check_parameters(values: Mapping[str, Any], prefix: str = "parameters") -> None:
    """Check every ``name: value`` of an override mapping (:func:`check_parameter`).

    Unknown names are left to the model (which lists the close matches).
    """
    for name, v in values.items():
        check_parameter(str(name), v, f"{prefix}.{name}" if prefix else str(name))


def uncovered(names: Iterable[str]) -> list[str]:
    """The names no row of the table governs (a test keeps this empty for the model)."""
    return [n for n in names if bound_for(n) is None]
