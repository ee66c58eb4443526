"""Export the mechanism (and optionally one dosing schedule) as SBML Level 3 Version 2.

Everything in the document is generated from the model definition
(:func:`imiqsim.model.get_model`): the rate laws, observables and initial
states are rendered from the same expression trees the engine compiles, so
there is no hand-written copy of any rate law here.

Mapping
-------
* every state -> a species whose value is the engine's state value: amounts
  (mg, cells, dimensionless states) with ``hasOnlySubstanceUnits=true``,
  densities and concentrations (cells/mm2, pg/mL, cells/uL) as concentrations
  in a compartment of that area or volume (:data:`LOCATIONS`: the treated
  skin, the skin tissue, serum, the central volume, each sized from the
  model's parameters);
* units: every unit string of the tables becomes a unit definition, every
  literal number carries the unit its place needs
  (:mod:`imiqsim.export.units`), and kinetic laws are in extent (dimensionless)
  per hour through conversion factors of value 1, so libsbml's unit checks
  pass (:func:`unit_issues` lists what the model itself mixes, if anything);
* every parameter -> constant SBML parameter; every observable ->
  non-constant parameter set by an assignment rule (``lesion_burden``,
  ``lsr_score``, ``serum_conc_ng_ml``, ...);
* every reaction -> irreversible SBML reaction with its kinetic law and
  stoichiometry (species used in the rate law but not consumed or produced
  are listed as modifiers);
* timed events -> SBML events, one per distinct event time, with the
  assignments each stage declares for the event's kind and the engine's
  gate and rest-period logic encoded in ``piecewise`` event assignments on
  helper parameters (see :func:`to_sbml`).

Examples
--------
>>> from imiqsim.model import get_model
>>> from imiqsim.export.sbml import to_sbml
>>> text = to_sbml(get_model())
>>> "lesion_burden" in text
True
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from imiqsim.export.annotations import (
    SBO_COMPARTMENT,
    SBO_PARAMETER,
    SBO_PROCESS,
    annotate,
    entity_of,
)
from imiqsim.export.units import DIMENSIONLESS, Renderer, Unit, UnitRegistry, parse_model_unit
from imiqsim.model import Model, names_in, parse_expr
from imiqsim.vocabulary import (
    CHECK,
    EVENT_KINDS,
    GATE_ALWAYS,
    GATE_NOT_CLEAR_AT_CHECK,
    GATE_UNTIL_CLEAR,
)

__all__ = [
    "ANNOTATION_NS",
    "HELPER_PARAMETERS",
    "NEGLIGIBLE_FRACTION",
    "ROUNDOFF_FUNCTION",
    "parse_unit",
    "sbml_errors",
    "sbml_ids",
    "sbml_warnings",
    "to_sbml",
    "unit_issues",
    "write_sbml",
]

#: XML namespace of the machine-readable imiqsim annotations.
ANNOTATION_NS = "https://imiqsim.invalid/sbml-annotation/v1"
_ANNOTATION_PREFIX = "imiqsim"
_XHTML_NS = "http://www.w3.org/1999/xhtml"

#: Non-constant helper parameters written by dose events: id -> (initial value, description).
HELPER_PARAMETERS: dict[str, tuple[float, str]] = {
    "until_clear_stopped": (
        0.0,
        "1 once an until-clear (gate 1) dose found the patient clear; every later gate-1 dose is "
        "then skipped (engine flag `stopped`, imiqsim.engine.policy.dose_decision)",
    ),
    "not_clear_at_check": (
        1.0,
        "1 if the patient was not clear at the most recent CHECK (or no CHECK happened yet); "
        "gate-2 doses are given only while it is 1",
    ),
    "applications_given": (
        0.0,
        "number of gated doses (APPLY or another declared dose kind) actually given (engine "
        "`applications_given`)",
    ),
    "applications_skipped_for_rest": (
        0.0,
        "number of doses skipped because the rest score reached its threshold (the model's dose "
        "gating; engine `doses_skipped_for_rest`)",
    ),
    "events_fired": (
        0.0,
        "number of dose-event times passed; each increment triggers the round-off event "
        "(roundoff_cleanup)",
    ),
    "roundoff_cleanups": (
        0.0,
        "number of times the round-off event fired (it fires while events_fired exceeds it)",
    ),
}

#: At every SBML event, a state whose magnitude is below this fraction of its scale
#: (:attr:`imiqsim.model.State.scale`) is set to exactly 0. Such values are round-off
#: (states that are 0 in exact arithmetic pick up 1e-30..1e-130 from the cancellation in
#: the cytokine baseline balance) and far below the engine's absolute tolerance
#: (``atol_factor`` 1e-8 x scale). libRoadRunner derives CVODE's absolute tolerance of
#: each state from its *current* value whenever it re-initialises the integrator (at
#: every event; sys-bio/roadrunner#1349), so a state holding 1e-104 gets a tolerance of
#: 1e-116 and BDF stalls (CV_TOO_MUCH_WORK right after the first dose).
NEGLIGIBLE_FRACTION = 1e-12
#: SBML function definition used by those event assignments: ``f(x, floor)`` is 0 where
#: ``|x| < floor``, else ``x``.
ROUNDOFF_FUNCTION = "roundoff_to_zero"

_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Names that SBML L3 infix parses as constants, csymbols or operators rather than identifiers.
_RESERVED = {
    "time",
    "t",
    "avogadro",
    "pi",
    "e",
    "exponentiale",
    "true",
    "false",
    "inf",
    "infinity",
    "nan",
    "notanumber",
    "and",
    "or",
    "not",
    "xor",
    "delay",
    "rateOf",
}


# --------------------------------------------------------------------------- identifiers


def sbml_ids(model: Model) -> dict[str, str]:
    """SBML identifier for every state, parameter, observable and reaction name.

    Parameters
    ----------
    model : Model
        The mechanism.

    Returns
    -------
    dict of str to str
        ``name -> SBML id``. Model names are already valid SBML ids
        (``[A-Za-z_][A-Za-z0-9_]*``, asserted here); names that SBML L3
        infix would read as a constant or csymbol (``time``, ``pi``, ``e``,
        ...) get a trailing underscore.

    Raises
    ------
    ValueError
        If a name is not a valid SBML id, or two names map to the same id, or
        a name clashes with the compartment or a helper parameter.
    """
    names = [
        *model.state_names,
        *model.parameter_names,
        *model.observable_names,
        *(r.name for r in model.reactions),
    ]
    out: dict[str, str] = {}
    taken = {*LOCATIONS, "hour", *HELPER_PARAMETERS}
    for n in names:
        if not _ID_RE.match(n):
            raise ValueError(f"model name {n!r} is not a valid SBML id")
        sid = n + "_" if n in _RESERVED else n
        if n in out:
            raise ValueError(f"model name {n!r} used twice")
        if sid in taken or sid.startswith(_CONVERSION_PREFIX):
            raise ValueError(f"model name {n!r} clashes with an SBML id used by the exporter")
        taken.add(sid)
        out[n] = sid
    return out


# --------------------------------------------------------------------------- units

#: unit token -> (factor to SI-ish SBML base units, {SBML base kind: exponent})
_UNIT_TOKENS: dict[str, tuple[float, dict[str, int]]] = {
    "g": (1.0, {"gram": 1}),
    "mg": (1e-3, {"gram": 1}),
    "ug": (1e-6, {"gram": 1}),
    "ng": (1e-9, {"gram": 1}),
    "pg": (1e-12, {"gram": 1}),
    "L": (1.0, {"litre": 1}),
    "mL": (1e-3, {"litre": 1}),
    "uL": (1e-6, {"litre": 1}),
    "h": (3600.0, {"second": 1}),
    "min": (60.0, {"second": 1}),
    "s": (1.0, {"second": 1}),
    "d": (86400.0, {"second": 1}),
    "m": (1.0, {"metre": 1}),
    "cm": (1e-2, {"metre": 1}),
    "mm": (1e-3, {"metre": 1}),
    "um": (1e-6, {"metre": 1}),
    "cm2": (1e-4, {"metre": 2}),
    "mm2": (1e-6, {"metre": 2}),
    "cells": (1.0, {"item": 1}),
    "cell": (1.0, {"item": 1}),
    "DC": (1.0, {"item": 1}),
    "lesions": (1.0, {"item": 1}),
    "lesion": (1.0, {"item": 1}),
    "1": (1.0, {}),
}
#: score ranges such as "0-3" or "0-18" are dimensionless
_RANGE_RE = re.compile(r"^\d+(\.\d+)?-\d+(\.\d+)?$")


def _parse_unit_kinds(unit: str) -> tuple[float, dict[str, tuple[int, float]]] | None:
    """Parse a unit into a leftover factor and ``{kind: (exponent, factor of kind**exponent)}``."""
    u = unit.strip()
    if not u:
        return None
    if _RANGE_RE.match(u):
        return 1.0, {}
    groups = [g.strip() for g in u.split(" per ")]
    kinds: dict[str, list] = {}
    for gi, group in enumerate(groups):
        if not group:
            return None
        sign_group = 1 if gi == 0 else -1
        for ti, tok in enumerate(group.split("/")):
            tok = tok.strip()
            if tok not in _UNIT_TOKENS:
                return None
            f, k = _UNIT_TOKENS[tok]
            sign = sign_group * (1 if ti == 0 else -1)
            if not k:  # "1"
                continue
            ((kind, e),) = k.items()
            acc = kinds.setdefault(kind, [0, 1.0])
            acc[0] += sign * e
            acc[1] *= f**sign
    leftover = 1.0
    out: dict[str, tuple[int, float]] = {}
    for kind, (e, f) in sorted(kinds.items()):
        if e == 0:
            leftover *= f  # the kind cancels; its prefix factors do not always
        else:
            out[kind] = (e, f)
    return leftover, out


def parse_unit(unit: str) -> tuple[float, dict[str, int]] | None:
    """Parse one of the model's unit strings into a factor and SBML base-unit exponents.

    Parameters
    ----------
    unit : str
        E.g. ``"mg"``, ``"1/h"``, ``"cells/mm2/h"``, ``"pg/mL/h per cell/mm2"``
        (``per`` divides by everything after it), ``"0-18"`` (a score:
        dimensionless).

    Returns
    -------
    (float, dict) or None
        ``(factor, {kind: exponent})`` so that one ``unit`` equals
        ``factor * prod(kind**exponent)``; an empty dict means dimensionless.
        None if the string cannot be parsed.

    Examples
    --------
    >>> parse_unit("ug/mL")
    (0.001, {'gram': 1, 'litre': -1})
    >>> parse_unit("0-3")
    (1.0, {})
    """
    parsed = _parse_unit_kinds(unit)
    if parsed is None:
        return None
    factor, kinds = parsed
    for _e, f in kinds.values():
        factor *= f
    return factor, {k: e for k, (e, f) in kinds.items()}


def _unit_id(unit: str) -> str:
    """A UnitSId for a unit string.

    ``"pg/mL/h per cell/mm2"`` -> ``"pg_per_mL_per_h_per_cell_per_mm2"``.
    """
    if unit.strip() == "h":
        return "hour"
    s = unit.strip().replace(" per ", "/")
    s = "_per_".join(p.strip() for p in s.split("/"))
    s = s.replace("-", "_to_")
    s = re.sub(r"[^A-Za-z0-9_]", "_", s)
    if s.startswith("1_per_"):
        s = s[2:]
    if not re.match(r"^[A-Za-z_]", s):
        s = "u_" + s
    # must not be an SBML base unit name
    return s if s not in _SBML_BASE_UNITS else "u_" + s


_SBML_BASE_UNITS = {
    "ampere",
    "avogadro",
    "becquerel",
    "candela",
    "coulomb",
    "dimensionless",
    "farad",
    "gram",
    "gray",
    "henry",
    "hertz",
    "item",
    "joule",
    "katal",
    "kelvin",
    "kilogram",
    "litre",
    "lumen",
    "lux",
    "metre",
    "mole",
    "newton",
    "ohm",
    "pascal",
    "radian",
    "second",
    "siemens",
    "sievert",
    "steradian",
    "tesla",
    "volt",
    "watt",
    "weber",
}


# --------------------------------------------------------------------------- helpers


def _evaluate(expr: str, env: Mapping[str, float]) -> float:
    """Evaluate a model expression numerically with the engine's function semantics."""

    def ev(node: ast.expr) -> float:
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.Div):
                return a / b
            return a**b
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Constant):
            return float(cast(float, node.value))
        if isinstance(node, ast.Name):
            return float(env[node.id])
        f = node.func.id  # type: ignore[attr-defined]
        av: list[float] = [ev(x) for x in node.args]  # type: ignore[attr-defined]
        if f == "exp":
            return math.exp(av[0])
        if f == "log":
            return math.log(av[0])
        if f == "sqrt":
            return math.sqrt(av[0])
        if f == "pos":
            return av[0] if av[0] > 0 else 0.0
        if f == "step":
            return 1.0 if av[0] > 0 else 0.0
        if f == "min":
            return min(av[1], av[0])
        if f == "max":
            return max(av[1], av[0])
        if f == "hill":
            x, k, n = av
            return 0.0 if x <= 0 else x**n / (k**n + x**n)
        raise ValueError(f"unknown function {f}")  # pragma: no cover

    return ev(parse_expr(expr))


def _depends_on(model: Model, name: str) -> set[str]:
    """All state and parameter names an observable (or name) depends on, transitively."""
    obs = {o.name: o.expr for o in model.observables}
    seen: set[str] = set()
    todo = [name]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in obs:
            todo.extend(names_in(obs[n]))
    return seen


def _notes(lines: Sequence[tuple[str, str] | str]) -> str:
    """XHTML notes body; items are ``(label, text)`` pairs or plain strings."""
    ps = []
    for item in lines:
        if isinstance(item, tuple):
            label, text = item
            ps.append(f"<p>{escape(label)}: {escape(str(text))}</p>")
        else:
            ps.append(f"<p>{escape(str(item))}</p>")
    return f'<body xmlns="{_XHTML_NS}">{"".join(ps)}</body>'


def _annotation(tag: str, attrs: Mapping[str, Any]) -> str:
    a = " ".join(f"{k}={quoteattr(str(v))}" for k, v in attrs.items())
    return (
        f"<annotation><{_ANNOTATION_PREFIX}:{tag} "
        f'xmlns:{_ANNOTATION_PREFIX}="{ANNOTATION_NS}" {a}/>'
        "</annotation>"
    )


def _num(v: float) -> str:
    return repr(float(v))


def _fold_events(
    model: Model,
    kinds: Sequence[int],
    amounts: Sequence[float],
    gates: Sequence[int],
    ids: Mapping[str, str],
    smooth: bool,
    units: Mapping[str, Unit],
    registry: UnitRegistry,
    issues: list[str],
) -> tuple[dict[str, str], list[str]]:
    """Compose the engine's sequential processing of same-time events into one assignment set.

    Each event of a kind with a declared effect (:attr:`Model.events`) applies
    its assignments to the values left by the events before it (a state read
    by an assignment is replaced by its current value); a gated dose applies
    them only if its gate and the rest rule allow, and CHECK records whether
    the patient is clear. Returns the assignments ``{variable id: infix of
    trigger-time values}`` of the variables that change and a human-readable
    description per event.

    Observables (the gating quantities, those in assignment expressions) are
    read at trigger time, so an event must not read an observable that
    depends on a state an earlier event at the same time has changed.
    """
    g = model.gating
    clear, score, rest = ids[g.clear_observable], ids[g.rest_score], ids[g.rest_threshold]
    lit = Renderer(units, str, registry, smooth).literal
    one, zero, half = lit(1, DIMENSIONLESS), lit(0, DIMENSIONLESS), lit(0.5, DIMENSIONLESS)
    below = lit(g.clear_below, units[g.clear_observable])
    state_set = set(model.state_names)
    # current value of each variable that changed, as SBML infix of the values at trigger time
    cur: dict[str, str] = {h: h for h in HELPER_PARAMETERS}
    written: set[str] = set()  # model states changed by earlier events at this time
    desc: list[str] = []

    def fresh(what: str, names: set[str]) -> None:
        obs = {n for n in names if n in model.observable_names}
        stale = {d for o in obs for d in _depends_on(model, o)} & written
        if stale:
            raise ValueError(
                f"{what} reads observables that depend on {sorted(stale)}, which an earlier "
                "event at the same time changes; cannot fold events"
            )

    for kind, amt, gate in zip(kinds, amounts, gates, strict=True):
        kind, gate, amt = int(kind), int(gate), float(amt)
        if kind == CHECK:
            fresh("CHECK", {g.clear_observable})
            cur["not_clear_at_check"] = f"piecewise({one}, {clear} >= {below}, {zero})"
            desc.append(EVENT_KINDS[CHECK])
            continue
        effect = model.event_effects.get(kind)
        if effect is None:
            raise ValueError(f"unknown event kind {kind}")
        fresh(effect.kind, {n for e in effect.assignments.values() for n in names_in(e)})

        amount_unit = parse_model_unit(effect.unit or "1", f"unit of the {effect.kind} amount")

        def ren(n: str, effect=effect, amt=amt, amount_unit=amount_unit) -> str:
            if n == effect.amount:
                return lit(amt, amount_unit)
            sid = ids[n]
            return f"({cur[sid]})" if n in state_set and sid in cur else sid

        env = dict(units)
        if effect.amount:
            env[effect.amount] = amount_unit
        rend = Renderer(env, ren, registry, smooth)
        new = {
            ids[st]: rend.render(expr, units[st], f"{effect.kind} event -> {st}")[0]
            for st, expr in effect.assignments.items()
        }
        issues.extend(i for i in rend.issues if i not in issues)
        if effect.gated_dose:
            fresh(effect.kind, {g.clear_observable, g.rest_score})
            if gate == GATE_ALWAYS:
                ok = "true"
            elif gate == GATE_UNTIL_CLEAR:
                stopped = cur["until_clear_stopped"]
                ok = f"(({stopped}) < {half}) && ({clear} >= {below})"
                cur["until_clear_stopped"] = (
                    f"piecewise({one}, (({stopped}) >= {half}) || ({clear} < {below}), {zero})"
                )
            elif gate == GATE_NOT_CLEAR_AT_CHECK:
                ok = f"(({cur['not_clear_at_check']}) >= {half})"
            else:
                raise ValueError(f"unknown gate {gate} on a {effect.kind} event")
            give = f"({ok}) && ({score} < {rest})"
            rested = f"({ok}) && ({score} >= {rest})"
            new = {v: f"piecewise({e}, {give}, {cur.get(v, v)})" for v, e in new.items()}
            cur["applications_given"] = (
                f"({cur['applications_given']}) + piecewise({one}, {give}, {zero})"
            )
            cur["applications_skipped_for_rest"] = (
                f"({cur['applications_skipped_for_rest']}) + piecewise({one}, {rested}, {zero})"
            )
            desc.append(f"{effect.describe(amt)} (gate {gate})")
        else:
            desc.append(effect.describe(amt))
        cur.update(new)
        written |= set(effect.assignments)
    changed = {v: e for v, e in cur.items() if e != v}
    return changed, desc


# --------------------------------------------------------------------------- compartments

#: Id prefix of the conversion-factor parameters (one per substance unit, value 1).
_CONVERSION_PREFIX = "extent_in_"

#: Where states live: location -> (name, spatial dimensions, size source, note). The size
#: source is a parameter or an observable of parameters only; a location is used when some
#: state is placed there (:func:`_place_states`).
LOCATIONS: dict[str, tuple[str, int, str, str]] = {
    "skin": (
        "treated skin surface",
        2,
        "treated_area_cm2",
        "The treated area. Holds the local amounts (mg, cells, dimensionless states) and the "
        "area densities (cells/mm2; lymph-node dendritic cells are counted per mm2 of treated "
        "skin too).",
    ),
    "skin_tissue": (
        "viable epidermis and upper dermis under the treated area",
        3,
        "tissue_volume_ml",
        "Holds the local concentrations (cytokines in pg/mL).",
    ),
    "serum": (
        "serum",
        3,
        "plasma_volume_ml",
        "Holds systemic concentrations (serum cytokines in pg/mL, circulating T cells in "
        "cells/uL).",
    ),
    "systemic": (
        "systemic circulation (central volume of distribution)",
        3,
        "central_volume_l",
        "Holds the systemic drug amounts (mg in blood, and the cumulative amounts excreted "
        "in urine and metabolised, bookkept here).",
    ),
}


@dataclass(frozen=True)
class _Compartment:
    name: str
    dimensions: int
    size: float
    unit: Unit
    unit_hint: str
    unit_text: str
    note: str


@dataclass(frozen=True)
class _Where:
    compartment: str
    #: hasOnlySubstanceUnits: the species is an amount, not a density or concentration
    amount: bool
    substance: Unit
    substance_id: str
    substance_text: str


@dataclass
class _Placement:
    compartments: dict[str, _Compartment]
    states: dict[str, _Where]
    #: substance UnitSId -> (unit, label) for every non-dimensionless substance in use
    substances: dict[str, tuple[Unit, str]]

    def size_of(self, state: str) -> float:
        """The factor from a species' value to its amount (its compartment's size, or 1)."""
        w = self.states[state]
        return 1.0 if w.amount else self.compartments[w.compartment].size


def _constant_values(model: Model, env: Mapping[str, float]) -> dict[str, float]:
    """Parameters and every observable that depends on parameters only, by value."""
    out = dict(env)
    for o in model.observables:
        if names_in(o.expr) <= out.keys():
            out[o.name] = _evaluate(o.expr, out)
    return out


def _substance_check(state: str, unit: str, substance: Unit) -> None:
    if substance.dims not in ((), (("gram", 1.0),), (("item", 1.0),)):
        raise ValueError(
            f"unit of state {state}: {unit!r} is not an amount (a mass, a number of cells or "
            "a dimensionless number), nor an amount per area or per volume ('cells/mm2', "
            "'pg/mL'); SBML species need one of these"
        )


def _place_states(model: Model, env: Mapping[str, float], units: Mapping[str, Unit]) -> _Placement:
    """Put every state in a compartment of :data:`LOCATIONS` by its unit and ``systemic`` flag.

    Amounts stay amounts (``hasOnlySubstanceUnits``); an amount per area
    (``cells/mm2``) lives in the treated skin, whose unit is that area; an
    amount per volume lives in the skin tissue or, if systemic, the serum. A
    location with states per two different volume units gets one compartment
    per unit (``serum`` in mL, ``serum_uL``).
    """
    consts = _constant_values(model, env)
    comps: dict[str, _Compartment] = {}
    by_location: dict[str, list[str]] = {}
    states: dict[str, _Where] = {}
    substances: dict[str, tuple[Unit, str]] = {}

    def compartment(location: str, unit: Unit | None, unit_text: str) -> str:
        name, dims, source, note = LOCATIONS[location]
        for cid in by_location.get(location, []):
            if unit is None or comps[cid].unit.same(unit):
                return cid
        cid = location if not by_location.get(location) else f"{location}_{_unit_id(unit_text)}"
        src_unit = parse_model_unit(_unit_of(model, source) or "1", f"unit of {source}")
        if unit is None:  # amounts only so far: the compartment takes its source's unit
            unit, unit_text = src_unit, _unit_of(model, source) or ""
        if source in consts and src_unit.same_dims(unit) and len(unit.dims) == 1:
            size = consts[source] * src_unit.factor / unit.factor
            note += f" Size: {source} = {consts[source]:g} {_unit_of(model, source)}."
        else:
            size = 1.0
            note += f" Size 1: the model has no {source} in {unit.describe()}."
        if unit.dims != (("metre", float(dims)),):
            what = "an area" if dims == 2 else "a volume"
            raise ValueError(f"compartment {cid}: unit {unit_text!r} is not {what}")
        comps[cid] = _Compartment(
            name, dims, size, unit, _unit_id(unit_text) if unit_text else "", unit_text, note
        )
        by_location.setdefault(location, []).append(cid)
        return cid

    # densities and concentrations first: they fix their compartments' units
    for s in model.states:
        u = units[s.name]
        length = dict(u.dims).get("metre", 0.0)
        if length == 0:
            continue
        num, sep, den = s.unit.rpartition("/")
        if not sep or length not in (-2.0, -3.0):
            raise ValueError(
                f"unit of state {s.name}: {s.unit!r}; a density or concentration must be "
                "written '<amount>/<area or volume>' (e.g. 'cells/mm2', 'pg/mL')"
            )
        d = parse_model_unit(den, f"unit of state {s.name}")
        if d.dims != (("metre", -length),):
            raise ValueError(
                f"unit of state {s.name}: {s.unit!r}; its denominator {den!r} must be the "
                "area or volume (and nothing else)"
            )
        substance = u * d
        _substance_check(s.name, s.unit, substance)
        location = "skin" if length == -2.0 else ("serum" if s.systemic else "skin_tissue")
        cid = compartment(location, d, den)
        sub_id = _unit_id(num)
        states[s.name] = _Where(cid, False, substance, sub_id, num)
    for s in model.states:
        if s.name in states:
            continue
        u = units[s.name]
        _substance_check(s.name, s.unit, u)
        cid = compartment("systemic" if s.systemic else "skin", None, "")
        sub_id = "dimensionless" if u.is_dimensionless else _unit_id(s.unit)
        states[s.name] = _Where(cid, True, u, sub_id, s.unit)
    for name, w in states.items():
        if w.substance_id != "dimensionless":
            label = next(s.unit for s in model.states if s.name == name)
            label = label.rpartition("/")[0] if not w.amount else label
            substances.setdefault(w.substance_id, (w.substance, label))
    return _Placement(comps, states, substances)


def _unit_of(model: Model, name: str) -> str | None:
    for coll in (model.parameters, model.observables):
        for it in coll:
            if it.name == name:
                return it.unit
    return None


def _kinetic_law(
    r: Any,
    placement: _Placement,
    units: Mapping[str, Unit],
    hour: Unit,
    rendered: Any,
    ids: Mapping[str, str],
) -> tuple[str, float, list[str]]:
    """Kinetic law of a reaction in extent per hour, its reference size, and unit issues.

    The model's rate is the rate of change of its first reactant (else first
    product) in that state's unit per hour; the law multiplies it by that
    state's compartment size (if the state is a density or concentration) and
    divides by the conversion factor of its substance (value 1). Other species
    get their stoichiometry times ``size / reference size`` (1 in the same
    compartment), so every species changes exactly as in the engine.
    """
    species = [*r.reactants, *r.products]
    if not species:
        raise ValueError(f"reaction {r.name} has no reactant or product")
    ref = species[0]
    w = placement.states[ref]
    law, _ = rendered(r.rate, units[ref] / hour, f"reaction {r.name}")
    if not w.amount:
        law = f"{w.compartment} * {law}"
    if w.substance_id != "dimensionless":
        law = f"({law}) / {_CONVERSION_PREFIX}{w.substance_id}"
    issues = [
        f"reaction {r.name}: its rate is per hour of {ref} ({units[ref].describe()}) but it "
        f"also changes {st} ({units[st].describe()}), converting 1:1"
        for st in species[1:]
        if not units[st].same(units[ref])
    ]
    return law, placement.size_of(ref), issues


# --------------------------------------------------------------------------- document


def to_sbml(
    model: Model,
    parameter_values: np.ndarray | None = None,
    events: Any = None,
    *,
    name: str = "imiqsim",
    notes: str = "",
    piecewise: bool = False,
) -> str:
    """Render the model (and optionally a dosing schedule) as an SBML L3V2 document.

    Parameters
    ----------
    model : Model
        The mechanism, e.g. :func:`imiqsim.model.get_model()`.
    parameter_values : ndarray, optional
        Parameter values in ``model.parameter_names`` order, e.g. from
        :meth:`Model.parameter_vector`. Default: the table defaults
        (``Parameter.value`` of every parameter).
    events : DoseEvents-like, optional
        Object with arrays ``times_h``, ``kinds``, ``amounts_mg`` and
        ``gates`` (:class:`imiqsim.regimen.DoseEvents`), times non-decreasing.
        None: no SBML events (the untreated model).
    name : str
        Model name; the model id is the name with every character outside
        ``[A-Za-z0-9_]`` replaced by ``_`` (and ``_`` prepended if it would
        start with a digit).
    notes : str
        Free text added to the model's notes.
    piecewise : bool
        Render ``pos``, ``min``, ``max`` and ``hill`` with ``piecewise``
        (:func:`imiqsim.model.to_sbml_infix`) instead of the default
        equivalent ``abs`` forms. libroadrunner >= 2.6 root-finds on every
        ``piecewise`` condition and stalls on conditions that sit at zero
        (a cytokine exactly at baseline), so keep the default for roadrunner.

    Returns
    -------
    str
        The SBML document.

    Raises
    ------
    ValueError
        Bad parameter vector, events or names, or if libsbml reports an error.

    Notes
    -----
    Events: all events at one time become one SBML event with trigger
    ``time >= t`` (``initialValue=false``, ``persistent=true``,
    ``useValuesFromTriggerTime=true``, no delay, no priority needed). Its
    assignments are the engine's sequential processing of those events
    (array order, i.e. by kind code: APPLY, WASH, CHECK, FREEZE, then the
    kinds the stages declare) composed symbolically, so an APPLY and a WASH
    at the same time give exactly what the engine gives. What an event of
    each kind does is the model's declaration (:attr:`Model.events`, e.g.
    stage ``pk``: APPLY adds the amount to ``film`` and ``applied``, WASH
    moves ``film`` to ``washed_off``; stage ``cryo``: FREEZE). A gated dose
    (APPLY, or any kind declared ``gated_dose``) of ``a`` sets each state it
    assigns to ``piecewise(new value, give, old value)``, where ``give`` is
    the gate condition and the rest rule (:attr:`Model.gating`:
    ``lsr_score < lsr_rest_threshold``). Gate 1 (until clear) requires
    ``until_clear_stopped < 0.5`` and ``visible_lesions >= 0.5`` and sets
    ``until_clear_stopped`` to 1 when ``visible_lesions < 0.5``; gate 2
    requires ``not_clear_at_check >= 0.5``, which each CHECK sets to
    ``visible_lesions >= 0.5``. ``applications_given`` and
    ``applications_skipped_for_rest`` count like the engine.

    The engine's clipping of round-off negatives to 0 after each step has
    no SBML counterpart; it only matters at the level of solver round-off.
    """
    return _document(model, parameter_values, events, name, notes, piecewise)[0]


def unit_issues(
    model: Model, parameter_values: np.ndarray | None = None, events: Any = None
) -> list[str]:
    """Places where the model itself combines quantities of different units.

    Parameters
    ----------
    model, parameter_values, events
        As for :func:`to_sbml`.

    Returns
    -------
    list of str
        One line per place (``"reaction r: adds cells and cells/mm2"``); empty
        when every rate law, observable, initial value and event assignment is
        dimensionally consistent, which is what libsbml's unit checks then
        confirm on the document. A reaction whose rate changes states of
        different units (the model converting 1:1) is listed too: the
        document's conversion factors would otherwise hide it from libsbml.
    """
    return _document(model, parameter_values, events, "imiqsim", "", False)[1]


def _document(
    model: Model,
    parameter_values: np.ndarray | None,
    events: Any,
    name: str,
    notes: str,
    piecewise: bool,
) -> tuple[str, list[str]]:
    import libsbml

    ids = sbml_ids(model)
    model_id = re.sub(r"[^A-Za-z0-9_]", "_", name.strip()) or "imiqsim"
    if not _ID_RE.match(model_id):
        model_id = "_" + model_id
    if parameter_values is None:
        pvals = np.array([p.value for p in model.parameters], dtype=float)
    else:
        pvals = np.asarray(parameter_values, dtype=float).ravel()
        if pvals.shape != (len(model.parameters),):
            raise ValueError(
                f"parameter_values has {pvals.size} values, the model has {len(model.parameters)}"
            )
    if not np.all(np.isfinite(pvals)):
        raise ValueError("parameter_values must be finite")
    env = dict(zip(model.parameter_names, pvals.tolist(), strict=True))

    def math_ast(formula: str, what: str) -> libsbml.ASTNode:
        node = libsbml.parseL3Formula(formula)
        if node is None:
            raise ValueError(
                f"libsbml cannot parse the formula of {what}: {libsbml.getLastParseL3Error()}"
            )
        return node

    def check(rc: int, what: str) -> None:
        if rc != libsbml.LIBSBML_OPERATION_SUCCESS:
            raise ValueError(
                f"libsbml failed on {what}: {libsbml.OperationReturnValue_toString(rc)}"
            )

    doc = libsbml.SBMLDocument(3, 2)
    m = doc.createModel()
    m.setId(model_id)
    m.setName(name)
    m.setMetaId(f"meta_{model_id}")
    check(
        m.setNotes(
            _notes(
                [
                    (
                        "Generated by imiqsim from the model definition "
                        "(imiqsim.export.sbml.to_sbml); "
                        "do not edit by hand."
                    ),
                    ("model fingerprint", model.fingerprint),
                    (
                        "Time unit: hour; reaction extent: dimensionless. Every state is a "
                        "species whose value is the engine's state value in the unit in its "
                        "notes: amounts (mg, cells, numbers) have hasOnlySubstanceUnits=true, "
                        "densities (cells/mm2) and concentrations (pg/mL, cells/uL) are "
                        "concentrations in a compartment of that area or volume. Kinetic laws "
                        "are the model's rate times the compartment size, divided by the "
                        "conversion factor (value 1) of the species' substance unit."
                    ),
                    (
                        "Dose events: one SBML event per event time; gates and the rest rule are "
                        "encoded with piecewise event assignments on until_clear_stopped, "
                        "not_clear_at_check, applications_given and applications_skipped_for_rest."
                    ),
                    *([notes] if notes else []),
                ]
            )
        ),
        "model notes",
    )

    _set_history(m, libsbml, check)

    # ---- units
    registry = UnitRegistry(libsbml, m)
    hour = parse_model_unit("h")
    m.setTimeUnits(registry.uid(hour, "hour", "h"))
    m.setExtentUnits("dimensionless")
    units: dict[str, Unit] = {}
    unit_ids: dict[str, str] = {}
    for kind, items in (
        ("parameter", model.parameters),
        ("state", model.states),
        ("observable", model.observables),
    ):
        for it in items:
            u = parse_model_unit(it.unit, f"unit of {kind} {it.name}")
            units[it.name] = u
            unit_ids[it.unit] = registry.uid(u, _unit_id(it.unit), it.unit)
    issues: list[str] = []

    def rendered(expr: str, expected: Unit | None, what: str) -> tuple[str, Unit]:
        rend = Renderer(units, lambda s: ids[s], registry, not piecewise)
        out = rend.render(expr, expected, what)
        issues.extend(i for i in rend.issues if i not in issues)
        return out

    # ---- compartments
    placement = _place_states(model, env, units)
    for cid, comp in placement.compartments.items():
        c = m.createCompartment()
        c.setId(cid)
        c.setName(comp.name)
        c.setConstant(True)
        c.setSpatialDimensions(float(comp.dimensions))
        c.setSize(comp.size)
        c.setUnits(registry.uid(comp.unit, comp.unit_hint, comp.unit_text))
        c.setMetaId(f"meta_{cid}")
        c.setSBOTerm(SBO_COMPARTMENT)
        c.setNotes(_notes([comp.note]))

    # ---- parameters
    for p, v in zip(model.parameters, pvals, strict=True):
        q = m.createParameter()
        sid = ids[p.name]
        q.setId(sid)
        q.setName(p.name)
        q.setConstant(True)
        q.setValue(float(v))
        q.setUnits(unit_ids[p.unit])
        q.setMetaId(f"meta_{sid}")
        q.setSBOTerm(SBO_PARAMETER)
        check(
            q.setNotes(
                _notes(
                    [
                        ("description", p.description),
                        ("unit", p.unit),
                        ("source", p.source),
                        ("status", p.status),
                        ("module", p.module),
                        ("table default", _num(p.value)),
                    ]
                )
            ),
            f"notes of {p.name}",
        )
        check(
            q.setAnnotation(
                _annotation(
                    "parameter",
                    {
                        "unit": p.unit,
                        "status": p.status,
                        "source": p.source,
                        "module": p.module,
                        "default": _num(p.value),
                    },
                )
            ),
            f"annotation of {p.name}",
        )

    # ---- conversion factors: one reaction extent (dimensionless) is 1 of a substance unit
    for sub_id, (sub_unit, label) in placement.substances.items():
        q = m.createParameter()
        q.setId(_CONVERSION_PREFIX + sub_id)
        q.setName(f"one reaction extent in {label}")
        q.setConstant(True)
        q.setValue(1.0)
        q.setUnits(registry.uid(sub_unit, sub_id, label))
        q.setMetaId(f"meta_{_CONVERSION_PREFIX}{sub_id}")
        q.setSBOTerm(SBO_PARAMETER)
        q.setNotes(
            _notes(
                [
                    "Conversion factor of every species whose substance is in "
                    f"{label}: reaction rates are written as extent per hour (extent "
                    f"dimensionless) by dividing the model's rate by this 1 {label}, and this "
                    "factor turns the extent back into the species' substance. Its value is 1, "
                    "so it changes no number."
                ]
            )
        )

    # ---- species
    for s in model.states:
        sp = m.createSpecies()
        sid = ids[s.name]
        where = placement.states[s.name]
        sp.setId(sid)
        sp.setName(s.name)
        sp.setCompartment(where.compartment)
        sp.setHasOnlySubstanceUnits(where.amount)
        sp.setBoundaryCondition(False)
        sp.setConstant(False)
        if where.amount:
            sp.setInitialAmount(_evaluate(s.initial, env))
        else:
            sp.setInitialConcentration(_evaluate(s.initial, env))
        sp.setSubstanceUnits(
            registry.uid(where.substance, where.substance_id, where.substance_text)
        )
        if where.substance_id != "dimensionless":
            sp.setConversionFactor(_CONVERSION_PREFIX + where.substance_id)
        sp.setMetaId(f"meta_{sid}")
        check(
            sp.setNotes(
                _notes(
                    [
                        ("description", s.description),
                        ("unit", s.unit),
                        ("module", s.module),
                        ("initial value", s.initial),
                    ]
                )
            ),
            f"notes of {s.name}",
        )
        sp.setAnnotation(
            _annotation(
                "state",
                {
                    "unit": s.unit,
                    "module": s.module,
                    "initial": s.initial,
                    "scale": _num(s.scale),
                    "drug_mass": str(bool(s.drug_mass)).lower(),
                },
            )
        )
        annotate(sp, entity_of(s.name), libsbml)
        if names_in(s.initial):
            ia = m.createInitialAssignment()
            ia.setSymbol(sid)
            formula, _ = rendered(s.initial, units[s.name], f"initial value of {s.name}")
            check(
                ia.setMath(math_ast(formula, f"initial value of {s.name}")),
                f"initial assignment of {s.name}",
            )

    # ---- observables
    for o in model.observables:
        q = m.createParameter()
        sid = ids[o.name]
        q.setId(sid)
        q.setName(o.name)
        q.setConstant(False)
        q.setUnits(unit_ids[o.unit])
        q.setMetaId(f"meta_{sid}")
        q.setNotes(
            _notes(
                [
                    ("description", o.description),
                    ("unit", o.unit),
                    ("module", o.module),
                    ("expression", o.expr),
                ]
            )
        )
        q.setAnnotation(_annotation("observable", {"unit": o.unit, "module": o.module}))
        q.setSBOTerm(SBO_PARAMETER)
        rule = m.createAssignmentRule()
        rule.setVariable(sid)
        formula, _ = rendered(o.expr, units[o.name], f"observable {o.name}")
        check(rule.setMath(math_ast(formula, f"observable {o.name}")), f"rule of {o.name}")

    # ---- reactions
    state_set = set(model.state_names)
    for r in model.reactions:
        rx = m.createReaction()
        sid = ids[r.name]
        rx.setId(sid)
        rx.setName(r.name)
        rx.setReversible(False)
        rx.setMetaId(f"meta_{sid}")
        rx.setSBOTerm(SBO_PROCESS)
        rx.setNotes(
            _notes([("description", r.description), ("module", r.module), ("rate", r.rate)])
        )
        law, ref_size, law_issues = _kinetic_law(r, placement, units, hour, rendered, ids)
        issues.extend(i for i in law_issues if i not in issues)
        for st, coef in r.reactants.items():
            ref = rx.createReactant()
            ref.setSpecies(ids[st])
            ref.setStoichiometry(float(coef) * placement.size_of(st) / ref_size)
            ref.setConstant(True)
        for st, coef in r.products.items():
            ref = rx.createProduct()
            ref.setSpecies(ids[st])
            ref.setStoichiometry(float(coef) * placement.size_of(st) / ref_size)
            ref.setConstant(True)
        for st in sorted(names_in(r.rate) & state_set - set(r.reactants) - set(r.products)):
            mod = rx.createModifier()
            mod.setSpecies(ids[st])
        kl = rx.createKineticLaw()
        check(kl.setMath(math_ast(law, f"reaction {r.name}")), f"kinetic law of {r.name}")
    # ---- dosing
    if events is not None:
        _add_events(m, model, ids, events, math_ast, check, not piecewise, units, registry, issues)

    # Validation, unit consistency included (libsbml's warnings are not errors: the
    # model's own unit issues, if any, are in ``issues`` and in libsbml's report).
    errors = _check_document(doc)
    if errors:
        raise ValueError("generated SBML is not valid:\n" + "\n".join(errors[:20]))
    return libsbml.writeSBMLToString(doc), issues


#: Creation date written in the model history (the first SBML export of imiqsim).
HISTORY_CREATED = "2026-01-05T00:00:00Z"


def _set_history(m: Any, libsbml: Any, check: Any) -> None:
    """Model history: the imiqsim project as creator, created and modified dates.

    The modified date is today's (UTC, midnight), so a document's content
    depends on the day it was written only through that date.
    """
    import datetime as dt

    h = libsbml.ModelHistory()
    c = libsbml.ModelCreator()
    c.setGivenName("imiqsim")
    c.setFamilyName("developers")
    c.setOrganisation("imiqsim project (research and teaching software, not a medical device)")
    check(h.addCreator(c), "model creator")
    check(h.setCreatedDate(libsbml.Date(HISTORY_CREATED)), "created date")
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT00:00:00Z")
    check(h.setModifiedDate(libsbml.Date(today)), "modified date")
    check(m.setModelHistory(h), "model history")


def _add_events(
    m: Any,
    model: Model,
    ids: Mapping[str, str],
    events: Any,
    math_ast: Any,
    check: Any,
    smooth: bool,
    units: Mapping[str, Unit],
    registry: UnitRegistry,
    issues: list[str],
) -> None:
    """Add the helper parameters and one SBML event per distinct dose-event time."""
    times = np.asarray(events.times_h, dtype=float).ravel()
    kinds = np.asarray(events.kinds, dtype=np.int64).ravel()
    amts = np.asarray(events.amounts_mg, dtype=float).ravel()
    gates = np.asarray(events.gates, dtype=np.int64).ravel()
    if not (times.size == kinds.size == amts.size == gates.size):
        raise ValueError("events arrays differ in length")
    if times.size and (np.any(~np.isfinite(times)) or np.any(np.diff(times) < 0) or times[0] < 0):
        raise ValueError(
            "event times must be finite, >= 0 and non-decreasing (as the engine needs)"
        )
    if np.any(~np.isfinite(amts)):
        raise ValueError("event amounts must be finite")
    fd = m.createFunctionDefinition()
    fd.setId(ROUNDOFF_FUNCTION)
    fd.setName("round-off values to zero")
    fd.setMetaId(f"meta_{ROUNDOFF_FUNCTION}")
    fd.setNotes(
        _notes(
            [
                "roundoff_to_zero(x, floor) = 0 if |x| < floor else x. Applied to every state "
                f"after every event with floor = {NEGLIGIBLE_FRACTION:g} x the state's scale: "
                "values that small are round-off, and libRoadRunner scales CVODE's absolute "
                "tolerance by each state's current value at every event (a state at 1e-104 "
                "would stall BDF)."
            ]
        )
    )
    lit = Renderer(units, str, registry, smooth).literal
    one, zero = lit(1, DIMENSIONLESS), lit(0, DIMENSIONLESS)
    # x * (0 or 1): exactly 0 or x, and of x's units whatever they are
    check(
        fd.setMath(math_ast(f"lambda(x, floor, x * piecewise({zero}, abs(x) < floor, {one}))", "")),
        ROUNDOFF_FUNCTION,
    )
    for hid, (v0, hdesc) in HELPER_PARAMETERS.items():
        q = m.createParameter()
        q.setId(hid)
        q.setName(hid)
        q.setConstant(False)
        q.setValue(v0)
        q.setUnits("dimensionless")
        q.setMetaId(f"meta_{hid}")
        q.setNotes(
            _notes([("description", hdesc), "helper for the dose-event logic (not a model state)"])
        )

    uniq, starts = np.unique(times, return_index=True)
    bounds = [int(b) for b in starts] + [int(times.size)]
    for k, t in enumerate(uniq):
        lo, hi = bounds[k], bounds[k + 1]
        assigns, desc = _fold_events(
            model,
            kinds[lo:hi].tolist(),
            amts[lo:hi].tolist(),
            gates[lo:hi].tolist(),
            ids,
            smooth,
            units,
            registry,
            issues,
        )
        if not assigns:
            continue  # nothing changes at this time
        assigns["events_fired"] = f"events_fired + {one}"  # triggers the round-off event
        ev = m.createEvent()
        eid = f"dose_event_{k + 1}"
        ev.setId(eid)
        ev.setName(f"t = {t:g} h: " + "; ".join(desc))
        ev.setUseValuesFromTriggerTime(True)
        ev.setMetaId(f"meta_{eid}")
        ev.setAnnotation(
            _annotation(
                "doseEvents",
                {
                    "time_h": _num(t),
                    "kinds": " ".join(str(int(x)) for x in kinds[lo:hi]),
                    "amounts_mg": " ".join(_num(x) for x in amts[lo:hi]),
                    "gates": " ".join(str(int(x)) for x in gates[lo:hi]),
                },
            )
        )
        trig = ev.createTrigger()
        trig.setInitialValue(False)
        trig.setPersistent(True)
        hour = parse_model_unit("h")
        check(trig.setMath(math_ast(f"time >= {lit(t, hour)}", eid)), f"trigger of {eid}")
        for var, formula in assigns.items():
            ea = ev.createEventAssignment()
            ea.setVariable(var)
            check(ea.setMath(math_ast(formula, f"{eid} -> {var}")), f"assignment of {var} in {eid}")
    _add_roundoff_event(m, model, ids, math_ast, check, lit, units)


def _add_roundoff_event(
    m: Any,
    model: Model,
    ids: Mapping[str, str],
    math_ast: Any,
    check: Any,
    lit: Any,
    units: Mapping[str, Unit],
) -> None:
    """One event, fired right after every dose event, that sets round-off states to 0.

    Every dose event increments ``events_fired``; this event's trigger
    ``events_fired > roundoff_cleanups`` becomes true at the same instant, so it
    fires after the dose assignments (a cascade of simultaneous events), sets
    ``roundoff_cleanups = events_fired`` (the trigger turns false again) and
    every state ``x`` to ``roundoff_to_zero(x, NEGLIGIBLE_FRACTION * scale)``.
    One such event instead of the same assignments in each dose event keeps the
    document (and libRoadRunner's compile time) small.
    """
    ev = m.createEvent()
    ev.setId("roundoff_cleanup")
    ev.setName("set states holding round-off (|x| < 1e-12 x scale) to 0 after each dose event")
    ev.setMetaId("meta_roundoff_cleanup")
    ev.setUseValuesFromTriggerTime(True)
    trig = ev.createTrigger()
    trig.setInitialValue(False)
    trig.setPersistent(True)
    check(
        trig.setMath(math_ast("events_fired > roundoff_cleanups", "roundoff_cleanup")),
        "trigger of roundoff_cleanup",
    )
    ea = ev.createEventAssignment()
    ea.setVariable("roundoff_cleanups")
    check(ea.setMath(math_ast("events_fired", "roundoff_cleanups")), "roundoff_cleanups")
    for st in model.states:
        sid = ids[st.name]
        ea = ev.createEventAssignment()
        ea.setVariable(sid)
        floor = lit(NEGLIGIBLE_FRACTION * st.scale, units[st.name])
        check(
            ea.setMath(math_ast(f"{ROUNDOFF_FUNCTION}({sid}, {floor})", f"round-off of {sid}")),
            f"round-off assignment of {sid}",
        )


def _run_checks(doc: Any) -> None:
    """Switch on every libsbml consistency check (units included) and run them on ``doc``."""
    import libsbml

    for cat in (
        libsbml.LIBSBML_CAT_GENERAL_CONSISTENCY,
        libsbml.LIBSBML_CAT_IDENTIFIER_CONSISTENCY,
        libsbml.LIBSBML_CAT_MATHML_CONSISTENCY,
        libsbml.LIBSBML_CAT_SBO_CONSISTENCY,
        libsbml.LIBSBML_CAT_OVERDETERMINED_MODEL,
        libsbml.LIBSBML_CAT_MODELING_PRACTICE,
        libsbml.LIBSBML_CAT_UNITS_CONSISTENCY,
    ):
        doc.setConsistencyChecks(cat, True)
    doc.checkConsistency()


def _check_document(doc: Any) -> list[str]:
    """Run libsbml's consistency checks (units included) and return the error messages."""
    import libsbml

    _run_checks(doc)
    out = []
    for i in range(doc.getNumErrors()):
        e = doc.getError(i)
        if e.getSeverity() >= libsbml.LIBSBML_SEV_ERROR:
            out.append(f"line {e.getLine()}: [{e.getErrorId()}] {e.getMessage().strip()}")
    return out


def sbml_warnings(sbml: str) -> list[str]:
    """Every libsbml message (warnings included) of every consistency check, units included.

    Parameters
    ----------
    sbml : str
        An SBML document.

    Returns
    -------
    list of str
        ``"[error id] severity: message"`` per message; empty for a document
        with no error and no warning.
    """
    import libsbml

    doc = libsbml.readSBMLFromString(sbml)
    _run_checks(doc)
    return [
        f"[{e.getErrorId()}] {e.getSeverityAsString()}: {' '.join(e.getMessage().split())}"
        for e in (doc.getError(i) for i in range(doc.getNumErrors()))
    ]


def sbml_errors(sbml: str) -> list[str]:
    """Parse an SBML string and return libsbml's errors (severity error or fatal).

    Parameters
    ----------
    sbml : str
        An SBML document.

    Returns
    -------
    list of str
        Empty when the document reads and passes the general, identifier,
        MathML, SBO, overdetermined-model, modelling-practice and unit checks
        (unit *warnings* are not errors; :func:`sbml_warnings` lists them).
    """
    import libsbml

    doc = libsbml.readSBMLFromString(sbml)
    read = [
        f"line {doc.getError(i).getLine()}: {doc.getError(i).getMessage().strip()}"
        for i in range(doc.getNumErrors())
        if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR
    ]
    return read or _check_document(doc)


def write_sbml(
    path: str | Path,
    model: Model,
    parameter_values: np.ndarray | None = None,
    events: Any = None,
    *,
    name: str = "imiqsim",
    notes: str = "",
    piecewise: bool = False,
) -> Path:
    """Write :func:`to_sbml` output to ``path`` (UTF-8) and return the path.

    Parameters
    ----------
    path : str or Path
        Output file, conventionally ``*.xml`` or ``*.sbml``.
    model, parameter_values, events, name, notes, piecewise
        As for :func:`to_sbml`.

    Returns
    -------
    Path
        The written file.
    """
    p = Path(path)
    p.write_text(
        to_sbml(model, parameter_values, events, name=name, notes=notes, piecewise=piecewise),
        encoding="utf-8",
    )
    return p
