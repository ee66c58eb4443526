"""Units for the SBML export: the model's unit strings, unit-carrying literals, consistency.

The model's tables give every state, parameter and observable a unit string
(``"mg"``, ``"pg/mL/h per cell/mm2"``, ``"1"``, ``"0-3"``). :func:`parse_model_unit`
turns one into a :class:`Unit` (a factor times SBML base units, normalised to
metre, gram, second and item). :class:`Renderer` writes a model expression as
SBML L3 infix in which every literal number carries the unit its place in the
expression needs (``1e-4`` in ``treated_area_cm2 * epidermis_thickness_um *
1e-4`` becomes ``1e-4`` of ``mL / (cm2 um)``), so libsbml can check the whole
expression; where the model itself combines quantities of different
dimensions, the renderer records the place in :attr:`Renderer.issues`.

Examples
--------
>>> parse_model_unit("ng/mL")  # 1e-9 g per 1e-6 m3
Unit(factor=0.001, dims=(('gram', 1.0), ('metre', -3.0)))
>>> parse_model_unit("0-18").is_dimensionless
True
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from imiqsim.model import parse_expr

__all__ = ["DIMENSIONLESS", "Renderer", "Unit", "UnitRegistry", "parse_model_unit"]


@dataclass(frozen=True)
class Unit:
    """``factor`` times the product of SBML base units ``kind ** exponent``.

    ``dims`` is sorted by kind and holds no zero exponent; kinds are
    ``metre``, ``gram``, ``second`` and ``item`` (a litre is ``1e-3 metre**3``).
    """

    factor: float
    dims: tuple[tuple[str, float], ...] = ()

    @staticmethod
    def of(factor: float, dims: Mapping[str, float]) -> Unit:
        return Unit(float(factor), tuple(sorted((k, float(e)) for k, e in dims.items() if e != 0)))

    @property
    def is_dimensionless(self) -> bool:
        return not self.dims

    def same_dims(self, other: Unit) -> bool:
        return self.dims == other.dims

    def __mul__(self, other: Unit) -> Unit:
        d = dict(self.dims)
        for k, e in other.dims:
            d[k] = d.get(k, 0.0) + e
        return Unit.of(self.factor * other.factor, d)

    def __truediv__(self, other: Unit) -> Unit:
        return self * other**-1.0

    def __pow__(self, n: float) -> Unit:
        return Unit.of(self.factor**n, {k: e * n for k, e in self.dims})

    def same(self, other: Unit) -> bool:
        """Same dimensions and the same factor (to round-off)."""
        return self.dims == other.dims and math.isclose(self.factor, other.factor, rel_tol=1e-12)

    def describe(self) -> str:
        """Readable form, e.g. ``1e-09 gram metre^-3``."""
        body = " ".join(f"{k}^{e:g}" if e != 1 else k for k, e in self.dims) or "dimensionless"
        return body if self.factor == 1.0 else f"{self.factor:g} {body}"


DIMENSIONLESS = Unit(1.0)

#: unit token -> its value in base units
_TOKENS: dict[str, Unit] = {
    "g": Unit.of(1.0, {"gram": 1}),
    "mg": Unit.of(1e-3, {"gram": 1}),
    "ug": Unit.of(1e-6, {"gram": 1}),
    "ng": Unit.of(1e-9, {"gram": 1}),
    "pg": Unit.of(1e-12, {"gram": 1}),
    "L": Unit.of(1e-3, {"metre": 3}),
    "mL": Unit.of(1e-6, {"metre": 3}),
    "uL": Unit.of(1e-9, {"metre": 3}),
    "h": Unit.of(3600.0, {"second": 1}),
    "min": Unit.of(60.0, {"second": 1}),
    "s": Unit.of(1.0, {"second": 1}),
    "d": Unit.of(86400.0, {"second": 1}),
    "m": Unit.of(1.0, {"metre": 1}),
    "cm": Unit.of(1e-2, {"metre": 1}),
    "mm": Unit.of(1e-3, {"metre": 1}),
    "um": Unit.of(1e-6, {"metre": 1}),
    "cm2": Unit.of(1e-4, {"metre": 2}),
    "mm2": Unit.of(1e-6, {"metre": 2}),
    "cm3": Unit.of(1e-6, {"metre": 3}),
    "mm3": Unit.of(1e-9, {"metre": 3}),
    "cells": Unit.of(1.0, {"item": 1}),
    "cell": Unit.of(1.0, {"item": 1}),
    "DC": Unit.of(1.0, {"item": 1}),
    # a number of lesions is a multiplicity (lesion_burden = count x cells per lesion)
    "lesions": DIMENSIONLESS,
    "lesion": DIMENSIONLESS,
    "1": DIMENSIONLESS,
}
#: score ranges such as "0-3" or "0-18" are dimensionless
_RANGE_RE = re.compile(r"^\d+(\.\d+)?-\d+(\.\d+)?$")


def parse_model_unit(unit: str, field: str = "unit") -> Unit:
    """Parse one of the model's unit strings.

    Parameters
    ----------
    unit : str
        ``"mg"``, ``"1/h"``, ``"cells/mm2/h"``, ``"pg/mL/h per cell/mm2"``
        (``per`` divides by everything after it), ``"0-18"`` (a score),
        ``"1"``, ``"log10 cells"`` (a logarithm: dimensionless).
    field : str
        What the unit belongs to, for the error message.

    Returns
    -------
    Unit

    Raises
    ------
    ValueError
        Naming ``field``, the unit and the tokens allowed, if a token is unknown.
    """
    u = unit.strip()
    if _RANGE_RE.match(u) or u.startswith("log10 ") or u == "":
        if u == "":
            raise ValueError(f"{field}: empty unit; give a unit such as '1' or 'mg'")
        return DIMENSIONLESS
    out = DIMENSIONLESS
    for gi, group in enumerate(u.split(" per ")):
        for ti, tok in enumerate(group.strip().split("/")):
            tok = tok.strip()
            if tok not in _TOKENS:
                raise ValueError(
                    f"{field}: unit {unit!r} has the token {tok!r}; allowed tokens: "
                    f"{sorted(_TOKENS)}, joined by '/' and ' per ', or a score range like "
                    "'0-3', or 'log10 <unit>'"
                )
            t = _TOKENS[tok]
            out = out * t if (gi == 0) == (ti == 0) else out / t
    return out


class UnitRegistry:
    """SBML UnitDefinitions for the units a document uses, created on first use."""

    def __init__(self, libsbml: Any, model: Any) -> None:
        self._libsbml = libsbml
        self._model = model
        self._ids: list[tuple[Unit, str]] = []

    def uid(self, unit: Unit, hint: str = "", text: str = "") -> str:
        """The UnitSId of ``unit`` (``dimensionless`` for a plain number).

        ``hint`` names a new definition; ``text`` (the model's unit string)
        lays it out token by token (``pg/mL``: gram at scale -12 over litre at
        scale -3), as libsbml derives a concentration species' units from its
        substance and compartment, so both compare identical.
        """
        if unit.same(DIMENSIONLESS):
            return "dimensionless"
        for u, i in self._ids:
            if u.same(unit):
                return i
        sid = hint or _canonical_id(unit)
        taken = {i for _u, i in self._ids}
        base, k = sid, 2
        while sid in taken:
            sid, k = f"{base}_{k}", k + 1
        layout = _layout(text) if text else None
        if layout is None:
            dims = unit.dims or (("dimensionless", 1.0),)
            layout = [(k, e, unit.factor if i == 0 else 1.0) for i, (k, e) in enumerate(dims)]
        self._define(sid, text or unit.describe(), layout)
        self._ids.append((unit, sid))
        return sid

    def _define(self, sid: str, name: str, layout: list[tuple[str, float, float]]) -> None:
        """A UnitDefinition of ``kind ** e`` units, each with the factor ``f`` of its own."""
        ls = self._libsbml
        ud = self._model.createUnitDefinition()
        ud.setId(sid)
        ud.setName(name)
        for kind, e, f in layout:
            u = ud.createUnit()
            u.setKind(ls.UnitKind_forName(kind))
            u.setExponent(e)
            # f = (multiplier * 10**scale)**e
            lg = math.log10(f) / e
            if abs(lg - round(lg)) < 1e-9:
                u.setScale(round(lg))
                u.setMultiplier(1.0)
            else:
                u.setScale(0)
                u.setMultiplier(f ** (1.0 / e))


#: volume tokens laid out in litres (SBML's own volume unit) for unit definitions
_LITRES = {"L": 1.0, "mL": 1e-3, "uL": 1e-6}


def _layout(text: str) -> list[tuple[str, float, float]] | None:
    """``[(kind, exponent, factor of kind**exponent)]`` of a model unit string, token by token."""
    u = text.strip()
    if _RANGE_RE.match(u) or u.startswith("log10 "):
        return None
    kinds: dict[str, list[float]] = {}
    for gi, group in enumerate(u.split(" per ")):
        for ti, tok in enumerate(group.strip().split("/")):
            tok = tok.strip()
            sign = 1.0 if (gi == 0) == (ti == 0) else -1.0
            if tok in _LITRES:
                parts = [("litre", 1.0, _LITRES[tok])]
            elif tok in _TOKENS and _TOKENS[tok].dims:
                ((kind, e),) = _TOKENS[tok].dims
                parts = [(kind, e, _TOKENS[tok].factor)]
            elif tok in _TOKENS:
                continue
            else:
                return None
            for kind, e, f in parts:
                acc = kinds.setdefault(kind, [0.0, 1.0])
                acc[0] += sign * e
                acc[1] *= f**sign
    leftover = 1.0
    out = []
    for kind, (e, f) in sorted(kinds.items()):
        if e == 0:
            leftover *= f
        else:
            out.append((kind, e, f))
    if not out:
        return [("dimensionless", 1.0, leftover)] if leftover != 1.0 else None
    k0, e0, f0 = out[0]
    out[0] = (k0, e0, f0 * leftover)
    return out


def _canonical_id(unit: Unit) -> str:
    parts = []
    for k, e in unit.dims:
        es = f"{e:g}".replace("-", "m").replace(".", "p")
        parts.append(k if e == 1 else f"{k}{es}")
    s = "u_" + ("_".join(parts) or "dimensionless")
    if unit.factor != 1.0:
        s += "_x" + f"{unit.factor:.6g}".replace("-", "m").replace("+", "").replace(".", "p")
    return s


def _num(v: float) -> str:
    return repr(float(v))


def _literal_exponent(node: ast.expr) -> float | None:
    if isinstance(node, ast.Constant):
        return float(cast(float, node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        v = float(cast(float, node.operand.value))
        return -v if isinstance(node.op, ast.USub) else v
    return None


class Renderer:
    """Write model expressions as SBML L3 infix with unit-carrying literals.

    Parameters
    ----------
    units : Mapping[str, Unit]
        Unit of every name an expression may use (states, parameters,
        observables, an event's amount).
    rename : callable
        Model name -> SBML infix (an id, or an expression for event folding).
    registry : UnitRegistry
        Where literal units get their UnitDefinitions.
    smooth : bool
        ``pos``, ``min``, ``max`` and ``hill`` with ``abs`` (as
        :func:`imiqsim.model.to_sbml_infix` with ``smooth=True``) rather than
        ``piecewise``; ``step`` is ``piecewise`` either way.

    Notes
    -----
    The rendering is term for term that of :func:`imiqsim.model.to_sbml_infix`
    except that literals carry units and that ``hill(x, k, n)`` with a
    dimensioned ``x`` and a non-literal ``n`` is written ``(x/k)^n / (1 +
    (x/k)^n)`` (the same function; a dimensioned quantity raised to a
    parameter has no SBML unit). Model places that combine different
    dimensions (adding cells to cells/mm2, the exponent of a dimensioned
    base) are rendered all the same and listed in :attr:`issues`.
    """

    def __init__(
        self,
        units: Mapping[str, Unit],
        rename: Callable[[str], str],
        registry: UnitRegistry,
        smooth: bool,
    ) -> None:
        self.units = units
        self.rename = rename
        self.registry = registry
        self.smooth = smooth
        self.issues: list[str] = []
        self._where = ""

    def render(self, expr: str, expected: Unit | None, where: str) -> tuple[str, Unit]:
        """Infix of ``expr`` and its unit; ``expected`` fixes the units of free literals."""
        self._where = where
        node = parse_expr(expr)
        infix, unit = self._r(node, expected)
        if expected is not None and not unit.same_dims(expected):
            self._issue(f"has units {unit.describe()}, expected {expected.describe()}")
        return infix, unit

    def literal(self, value: float, unit: Unit) -> str:
        """A number with its unit, as L3 infix."""
        return f"({_num(value)} {self.registry.uid(unit)})"

    # -- inference

    def _issue(self, what: str) -> None:
        msg = f"{self._where}: {what}"
        if msg not in self.issues:
            self.issues.append(msg)

    def _synth(self, n: ast.expr) -> Unit | None:
        """Unit of ``n`` from its names alone; None if free literals decide it."""
        if isinstance(n, ast.Constant):
            return None
        if isinstance(n, ast.Name):
            return self._name_unit(n.id)
        if isinstance(n, ast.UnaryOp):
            return self._synth(n.operand)
        if isinstance(n, ast.BinOp):
            a, b = self._synth(n.left), self._synth(n.right)
            if isinstance(n.op, (ast.Add, ast.Sub)):
                return a if a is not None else b
            if isinstance(n.op, ast.Pow):
                if a is None:
                    return None
                e = _literal_exponent(n.right)
                return a**e if e is not None else a
            if a is None or b is None:
                return None
            return a * b if isinstance(n.op, ast.Mult) else a / b
        f, args = _call(n)
        if f in ("exp", "log", "step", "hill"):
            return DIMENSIONLESS
        if f == "sqrt":
            a = self._synth(args[0])
            return None if a is None else a**0.5
        if f == "pos":
            return self._synth(args[0])
        a, b = self._synth(args[0]), self._synth(args[1])  # min, max
        return a if a is not None else b

    def _name_unit(self, name: str) -> Unit:
        if name not in self.units:
            raise ValueError(f"{self._where}: name {name!r} has no unit")
        return self.units[name]

    # -- rendering

    def _r(self, n: ast.expr, expected: Unit | None) -> tuple[str, Unit]:
        if isinstance(n, ast.Constant):
            u = expected if expected is not None else DIMENSIONLESS
            return self.literal(float(cast(float, n.value)), u), u
        if isinstance(n, ast.Name):
            return self.rename(n.id), self._name_unit(n.id)
        if isinstance(n, ast.UnaryOp):
            s, u = self._r(n.operand, expected)
            return (f"(-{s})" if isinstance(n.op, ast.USub) else s), u
        if isinstance(n, ast.BinOp):
            return self._binop(n, expected)
        return self._callr(n, expected)

    def _binop(self, n: ast.BinOp, expected: Unit | None) -> tuple[str, Unit]:
        sa, sb = self._synth(n.left), self._synth(n.right)
        if isinstance(n.op, (ast.Add, ast.Sub)):
            target = sa or sb or expected or DIMENSIONLESS
            (a, ua), (b, ub) = self._r(n.left, target), self._r(n.right, target)
            if not ua.same_dims(ub):
                op = "adds" if isinstance(n.op, ast.Add) else "subtracts"
                self._issue(f"{op} {ub.describe()} and {ua.describe()}")
            op = "+" if isinstance(n.op, ast.Add) else "-"
            return f"({a} {op} {b})", ua
        if isinstance(n.op, ast.Pow):
            e = _literal_exponent(n.right)
            b, _ = self._r(n.right, DIMENSIONLESS)
            if e is None:
                a, ua = self._r(n.left, DIMENSIONLESS)
                if not ua.is_dimensionless:
                    self._issue(f"raises {ua.describe()} to a non-literal power")
                return f"({a} ^ {b})", DIMENSIONLESS
            want = expected ** (1.0 / e) if (sa is None and expected is not None and e) else None
            a, ua = self._r(n.left, want)
            return f"({a} ^ {b})", ua**e
        mult = isinstance(n.op, ast.Mult)
        if sa is not None and sb is not None:
            (a, ua), (b, ub) = self._r(n.left, sa), self._r(n.right, sb)
        elif sa is not None:  # the right side holds free literals
            want = None if expected is None else (expected / sa if mult else sa / expected)
            (a, ua), (b, ub) = self._r(n.left, sa), self._r(n.right, want)
        else:
            b, ub = self._r(n.right, sb)
            want = None if expected is None else (expected / ub if mult else expected * ub)
            a, ua = self._r(n.left, want)
        op = "*" if mult else "/"
        return f"({a} {op} {b})", (ua * ub if mult else ua / ub)

    def _callr(self, n: ast.expr, expected: Unit | None) -> tuple[str, Unit]:
        f, args = _call(n)
        if f in ("exp", "log"):
            a, ua = self._r(args[0], DIMENSIONLESS)
            if not ua.is_dimensionless:
                self._issue(f"takes {f} of {ua.describe()}")
            return (f"exp({a})" if f == "exp" else f"ln({a})"), DIMENSIONLESS
        if f == "sqrt":
            a, ua = self._r(args[0], None if expected is None else expected**2)
            return f"sqrt({a})", ua**0.5
        if f == "step":
            a, ua = self._r(args[0], self._synth(args[0]))
            one, zero = self.literal(1, DIMENSIONLESS), self.literal(0, DIMENSIONLESS)
            return f"piecewise({one}, {a} > {self.literal(0, ua)}, {zero})", DIMENSIONLESS
        if f == "pos":
            a, ua = self._r(args[0], expected)
            if self.smooth:
                return f"(({a} + abs({a})) / {self.literal(2, DIMENSIONLESS)})", ua
            z = self.literal(0, ua)
            return f"piecewise({a}, {a} > {z}, {z})", ua
        if f in ("min", "max"):
            target = self._synth(args[0]) or self._synth(args[1]) or expected
            (a, ua), (b, ub) = self._r(args[0], target), self._r(args[1], target)
            if not ua.same_dims(ub):
                self._issue(f"takes {f} of {ua.describe()} and {ub.describe()}")
            if self.smooth:
                sign = "-" if f == "min" else "+"
                two = self.literal(2, DIMENSIONLESS)
                return f"(({a} + {b} {sign} abs({a} - {b})) / {two})", ua
            rel = "<" if f == "min" else ">"
            return f"piecewise({a}, {a} {rel} {b}, {b})", ua
        if f == "hill":
            return self._hill(args)
        raise ValueError(f"{self._where}: unknown function {f}")  # pragma: no cover

    def _hill(self, args: list[ast.expr]) -> tuple[str, Unit]:
        target = self._synth(args[0]) or self._synth(args[1]) or DIMENSIONLESS
        (x, ux), (k, uk) = self._r(args[0], target), self._r(args[1], target)
        if not ux.same_dims(uk):
            self._issue(f"hill of {ux.describe()} with a half-constant in {uk.describe()}")
        nn, _ = self._r(args[2], DIMENSIONLESS)
        literal_n = _literal_exponent(args[2]) is not None
        px = f"(({x} + abs({x})) / {self.literal(2, DIMENSIONLESS)})" if self.smooth else x
        if literal_n or ux.is_dimensionless:
            body = f"({px}^{nn} / ({k}^{nn} + {px}^{nn}))"
        else:
            q = f"({px} / {k})"
            body = f"({q}^{nn} / ({self.literal(1, DIMENSIONLESS)} + {q}^{nn}))"
        if self.smooth:
            return body, DIMENSIONLESS
        zero = self.literal(0, DIMENSIONLESS)
        return f"piecewise({body}, {x} > {self.literal(0, ux)}, {zero})", DIMENSIONLESS


def _call(node: ast.expr) -> tuple[str, list[ast.expr]]:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise ValueError(f"unexpected construct {ast.dump(node)}")  # pragma: no cover
    return node.func.id, list(node.args)
