"""The model as data: states, parameters, observables and reactions with rate expressions.

Rate expressions are strings in a small, checked subset of Python syntax
(``+ - * / **``, numbers, names, and the functions in ``FUNCTIONS``). The same
expression tree is rendered to NumPy/Numba source for the engine, to SBML L3
infix for export, and to text for the documentation, so there is exactly one
copy of each rate law (DESIGN.md invariant 1).
"""

from __future__ import annotations

import ast
import csv
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import cast

from imiqsim.errors import ModelDefinitionError

#: Functions allowed in expressions, with their arity.
#: hill(x, k, n) = x^n / (k^n + x^n) for x >= 0 (0 for x <= 0);
#: pos(x) = max(x, 0); step(x) = 1 if x > 0 else 0.
FUNCTIONS = {"exp": 1, "log": 1, "sqrt": 1, "hill": 3, "pos": 1, "step": 1, "min": 2, "max": 2}


@dataclass(frozen=True)
class Parameter:
    name: str
    value: float
    unit: str
    description: str
    source: str
    status: str  # literature | assumed | calibrated | derived | switch
    module: str = ""


@dataclass(frozen=True)
class State:
    name: str
    unit: str
    initial: str  # expression of parameters
    description: str
    module: str = ""
    #: typical magnitude, used for the solver's absolute tolerance
    scale: float = 1.0
    #: part of the drug mass balance (mg)
    drug_mass: bool = False
    #: a whole-body pool (blood, serum, lymph node, circulating T cells) rather than a local skin
    #: quantity;
    #: in the spatial field model these are shared by all sites
    systemic: bool = False


@dataclass(frozen=True)
class Observable:
    """A named algebraic quantity (SBML assignment rule)."""

    name: str
    expr: str
    unit: str
    description: str
    module: str = ""


@dataclass(frozen=True)
class Reaction:
    """A flux ``rate`` that removes from ``reactants`` and adds to ``products``.

    Stoichiometry maps state name -> coefficient. A flux with no reactants is
    a source; with no products a sink. Mass balance therefore holds by
    construction for fluxes between drug compartments.
    """

    name: str
    rate: str
    reactants: dict = field(default_factory=dict)
    products: dict = field(default_factory=dict)
    description: str = ""
    module: str = ""


#: kinds of lesion-cell killing (see ``ModuleSpec.kill_tallies``)
KILL_KINDS = ("background", "immune", "direct")


@dataclass(frozen=True)
class EventEffect:
    """What one kind of timed event does to the states: the assignments of an SBML event.

    The engine's kernel, the skin field and the SBML export all read this
    declaration; none of them names a state.

    Attributes
    ----------
    kind : str
        The event kind's name: a built-in one of :data:`imiqsim.vocabulary.EVENT_KINDS`
        (``"APPLY"``, ``"WASH"``, ``"FREEZE"``) or a new name (``"APPLY_FLUOROURACIL"``),
        numbered by the model after the built-ins (:attr:`imiqsim.model.Model.event_kinds`).
    assignments : Mapping[str, str]
        State -> its new value, an expression of the pre-event states, parameters,
        observables and ``amount``; all are computed first, then assigned together
        (clipped at zero: states are amounts and densities).
    amount : str
        Name under which the expressions read the event's amount (the ``amounts_mg``
        column of an events table: mg of drug for a dose, seconds for a freeze);
        ``""`` if the kind carries none.
    unit : str
        Unit of the amount, for descriptions (``"mg"``, ``"s"``).
    gated_dose : bool
        A dose: given only if the event's gate allows it and the rest score is
        below its threshold (:class:`DoseGating`), counted in ``applications_given``.
    description : str
        Plain words, for the SBML event names and the docs.
    module : str
        The stage that declared it.
    """

    kind: str
    assignments: Mapping[str, str]
    amount: str = ""
    unit: str = ""
    gated_dose: bool = False
    description: str = ""
    module: str = ""

    def describe(self, amount: float) -> str:
        """One line for one event of this kind (``"APPLY 12.5 mg"``, ``"WASH"``)."""
        return f"{self.kind} {amount:g} {self.unit}".rstrip() if self.amount else self.kind


@dataclass(frozen=True)
class DoseGating:
    """The quantities the dose gates and the rest rule read (``imiqsim.vocabulary.GATES``).

    A patient is *clear* while the observable ``clear_observable < clear_below``
    (until-clear gates stop, a CHECK records it, the engine notes the first
    clear time); a gated dose is skipped for rest while the observable
    ``rest_score >= rest_threshold`` (a parameter).
    """

    clear_observable: str
    clear_below: float
    rest_score: str
    rest_threshold: str


@dataclass
class ModuleSpec:
    """One stage of the mechanism: its states, observables and reactions."""

    name: str
    title: str
    states: list[State] = field(default_factory=list)
    observables: list[Observable] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    #: what timed events of each kind do to this stage's states (see :meth:`event`)
    events: list[EventEffect] = field(default_factory=list)
    #: event kinds that set this stage in motion: a stage whose states start at 0 and stay there
    #: unless an event of one of these kinds happens (a treatment's own film, its exposure) names
    #: them here; for a schedule without any of them the engine leaves the stage's states out of
    #: the step-size error norm, so adding the stage does not move any other treatment's numbers
    inert_without: tuple[str, ...] = ()
    #: cumulative kill tallies of lesion cells: state -> (label, kind); kind is "background"
    #: (surveillance without the drug), "immune" (drug-driven effectors and memory) or "direct"
    #: (killed by the treatment itself, e.g. freezing); outcomes and plots read this
    kill_tallies: dict = field(default_factory=dict)

    def state(
        self,
        name: str,
        unit: str,
        initial: str | float,
        description: str,
        scale: float = 1.0,
        drug_mass: bool = False,
        systemic: bool = False,
    ) -> None:
        """Add a state (``initial``: a number or an expression of parameters)."""
        self.states.append(
            State(name, unit, str(initial), description, self.name, scale, drug_mass, systemic)
        )

    def kill_tally(self, state_name: str, label: str, kind: str) -> None:
        """Declare ``state_name`` a cumulative tally of lesion cells killed by one mechanism."""
        if kind not in KILL_KINDS:
            raise ModelDefinitionError(
                f"kill tally {state_name}: kind {kind!r} not in {KILL_KINDS}"
            )
        self.kill_tallies[state_name] = (label, kind)

    def event(
        self,
        kind: str,
        assignments: Mapping[str, str],
        *,
        amount: str = "",
        unit: str = "",
        gated_dose: bool = False,
        description: str = "",
    ) -> None:
        """Declare what an event of ``kind`` does to states (see :class:`EventEffect`).

        Examples
        --------
        >>> m = ModuleSpec("demo", "a cream film")
        >>> m.state("film", "mg", 0.0, "drug in the film")
        >>> m.event("APPLY", {"film": "film + dose_mg"}, amount="dose_mg", unit="mg",
        ...         gated_dose=True, description="cream put on the skin")
        >>> m.events[0].describe(12.5)
        'APPLY 12.5 mg'
        """
        if not kind.isidentifier() or kind != kind.upper():
            raise ModelDefinitionError(f"event kind {kind!r}: use an UPPER_CASE identifier")
        self.events.append(
            EventEffect(kind, dict(assignments), amount, unit, gated_dose, description, self.name)
        )

    def obs(self, name: str, expr: str, unit: str, description: str) -> None:
        """Add an observable (an SBML assignment rule)."""
        self.observables.append(Observable(name, expr, unit, description, self.name))

    def rxn(
        self,
        name: str,
        rate: str,
        reactants: str | Mapping[str, float] | None = None,
        products: str | Mapping[str, float] | None = None,
        description: str = "",
    ) -> None:
        """Add a flux ``rate`` from ``reactants`` to ``products`` (name, or name -> coefficient)."""
        if isinstance(reactants, str):
            reactants = {reactants: 1.0}
        if isinstance(products, str):
            products = {products: 1.0}
        self.reactions.append(
            Reaction(
                name, rate, dict(reactants or {}), dict(products or {}), description, self.name
            )
        )


# --------------------------------------------------------------------------- expressions


def parse_expr(expr: str) -> ast.expr:
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:  # pragma: no cover - developer error
        raise ModelDefinitionError(f"cannot parse expression {expr!r}: {exc}") from exc
    _check(tree.body, expr)
    return tree.body


_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


def _check(node: ast.AST, src: str) -> None:
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise ModelDefinitionError(f"operator {type(node.op).__name__} not allowed in {src!r}")
        _check(node.left, src)
        _check(node.right, src)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise ModelDefinitionError(f"unary operator not allowed in {src!r}")
        _check(node.operand, src)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ModelDefinitionError(
                f"function not allowed in {src!r}; allowed: {sorted(FUNCTIONS)}"
            )
        if len(node.args) != FUNCTIONS[node.func.id] or node.keywords:
            raise ModelDefinitionError(
                f"{node.func.id} takes {FUNCTIONS[node.func.id]} args in {src!r}"
            )
        for a in node.args:
            _check(a, src)
    elif isinstance(node, ast.Name):
        pass
    elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        pass
    else:
        raise ModelDefinitionError(f"construct {type(node).__name__} not allowed in {src!r}")


def _call(node: ast.expr) -> tuple[str, list[ast.expr]]:
    """Function name and arguments of a call node (:func:`parse_expr` admits no other construct)."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise ModelDefinitionError(f"unexpected construct {ast.dump(node)}")  # pragma: no cover
    return node.func.id, node.args


def names_in(expr: str) -> set[str]:
    tree = parse_expr(expr)
    funcs = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in funcs}


def _num(v: float) -> str:
    return repr(float(v))


def to_python(node: ast.expr, rename=lambda s: s) -> str:
    """Render as Python source usable with NumPy arrays and in Numba."""
    if isinstance(node, ast.BinOp):
        op = _BINOPS[type(node.op)]
        return f"({to_python(node.left, rename)} {op} {to_python(node.right, rename)})"
    if isinstance(node, ast.UnaryOp):
        return (
            f"(-{to_python(node.operand, rename)})"
            if isinstance(node.op, ast.USub)
            else to_python(node.operand, rename)
        )
    if isinstance(node, ast.Constant):
        return _num(cast(float, node.value))
    if isinstance(node, ast.Name):
        return rename(node.id)
    f, call_args = _call(node)
    args = [to_python(a, rename) for a in call_args]
    if f in ("exp", "log", "sqrt"):
        return f"_{f}({args[0]})"
    if f == "hill":
        return f"_hill({args[0]}, {args[1]}, {args[2]})"
    if f == "pos":
        return f"_pos({args[0]})"
    if f == "step":
        return f"_step({args[0]})"
    if f == "min":
        return f"_min({args[0]}, {args[1]})"
    if f == "max":
        return f"_max({args[0]}, {args[1]})"
    raise ModelDefinitionError(f"unknown function {f}")  # pragma: no cover


def _d_add(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return f"({a} + {b})"


def _d_sub(a: str | None, b: str | None) -> str | None:
    if b is None:
        return a
    if a is None:
        return f"(-{b})"
    return f"({a} - {b})"


def _d_mul(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return None
    if a == "1.0":
        return b
    if b == "1.0":
        return a
    return f"({a} * {b})"


def diff_python(
    node: ast.expr,
    wrt: str,
    dname: Callable[[str], str | None] = lambda s: None,
    rename: Callable[[str], str] = lambda s: s,
) -> str | None:
    """Python source of the derivative of ``node`` with respect to the name ``wrt``.

    Returns None where the derivative is identically zero (so callers can drop
    the term). A name other than ``wrt`` contributes ``dname(name)``: the
    variable that holds its own derivative (an observable that depends on
    ``wrt``), or None for a constant (a parameter, another state).

    Every construct of the DSL is differentiated exactly; for the piecewise
    functions the derivative is that of the branch :func:`to_python` evaluates
    (as automatic differentiation would): ``pos'(x) = step(x)``, ``step' = 0``,
    ``min``/``max`` take the derivative of the argument they return, and
    ``hill`` has derivative 0 for ``x <= 0``. The helpers ``_dmin``, ``_dmax``
    and ``_dhill_dx/_dk/_dn`` are defined next to ``_min``, ``_hill`` in the
    generated module.
    """

    def py(n: ast.expr) -> str:
        return to_python(n, rename)

    def d(n: ast.expr) -> str | None:
        if isinstance(n, ast.Constant):
            return None
        if isinstance(n, ast.Name):
            return "1.0" if n.id == wrt else dname(n.id)
        if isinstance(n, ast.UnaryOp):
            du = d(n.operand)
            if du is None or isinstance(n.op, ast.UAdd):
                return du
            return f"(-{du})"
        if isinstance(n, ast.BinOp):
            du, dv = d(n.left), d(n.right)
            if du is None and dv is None:
                return None
            u, v = py(n.left), py(n.right)
            if isinstance(n.op, ast.Add):
                return _d_add(du, dv)
            if isinstance(n.op, ast.Sub):
                return _d_sub(du, dv)
            if isinstance(n.op, ast.Mult):
                return _d_add(_d_mul(du, v), _d_mul(u, dv))
            if isinstance(n.op, ast.Div):
                if dv is None:
                    return f"({du} / {v})"
                return f"({_d_sub(_d_mul(du, v), _d_mul(u, dv))} / ({v} * {v}))"
            if isinstance(n.op, ast.Pow):
                return _d_add(
                    _d_mul(f"({v} * {u} ** ({v} - 1.0))", du),
                    _d_mul(f"({u} ** {v} * _log({u}))", dv),
                )
        if isinstance(n, ast.Call):
            f, call_args = _call(n)
            da = [d(a) for a in call_args]
            if all(x is None for x in da):
                return None
            a = [py(x) for x in call_args]
            if f == "exp":
                return _d_mul(f"_exp({a[0]})", da[0])
            if f == "log":
                return f"({da[0]} / {a[0]})"
            if f == "sqrt":
                return f"({da[0]} / (2.0 * _sqrt({a[0]})))"
            if f == "pos":
                return _d_mul(f"_step({a[0]})", da[0])
            if f == "step":
                return None
            if f in ("min", "max"):
                return f"_d{f}({a[0]}, {a[1]}, {da[0] or '0.0'}, {da[1] or '0.0'})"
            if f == "hill":
                args = ", ".join(a)
                out = None
                for part, dx in zip(("dx", "dk", "dn"), da, strict=True):
                    out = _d_add(out, _d_mul(f"_dhill_{part}({args})", dx))
                return out
        raise ModelDefinitionError(
            f"cannot differentiate {ast.dump(n)}"
        )  # pragma: no cover - _check rejects it

    return d(node)


def to_sbml_infix(node: ast.expr, rename=lambda s: s, smooth: bool = False) -> str:
    """Render as SBML Level 3 infix (libsbml.parseL3Formula).

    With ``smooth``, ``pos``, ``min``, ``max`` and ``hill`` are written with ``abs``
    instead of ``piecewise`` (same values; ``pos(x) = (x + abs(x))/2`` is exact), so
    rate laws carry no relational operator except in ``step``. libroadrunner >= 2.6
    adds a root function for every ``piecewise`` condition, and conditions that sit
    exactly at zero (a cytokine at baseline) make CVODE stall at t = 0.
    """

    def r(n: ast.expr) -> str:
        return to_sbml_infix(n, rename, smooth)

    if isinstance(node, ast.BinOp):
        op = _BINOPS[type(node.op)]
        op = "^" if op == "**" else op
        return f"({r(node.left)} {op} {r(node.right)})"
    if isinstance(node, ast.UnaryOp):
        inner = r(node.operand)
        return f"(-{inner})" if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Constant):
        return _num(cast(float, node.value))
    if isinstance(node, ast.Name):
        return rename(node.id)
    f, call_args = _call(node)
    a = [r(x) for x in call_args]
    if f in ("exp", "sqrt"):
        return f"{f}({a[0]})"
    if f == "log":
        return f"ln({a[0]})"
    if f == "step":
        return f"piecewise(1, {a[0]} > 0, 0)"
    if smooth:
        if f == "pos":
            return f"(({a[0]} + abs({a[0]})) / 2)"
        if f == "hill":
            x, k, n = a
            px = f"(({x} + abs({x})) / 2)"
            return f"({px}^{n} / ({k}^{n} + {px}^{n}))"
        if f == "min":
            return f"(({a[0]} + {a[1]} - abs({a[0]} - {a[1]})) / 2)"
        if f == "max":
            return f"(({a[0]} + {a[1]} + abs({a[0]} - {a[1]})) / 2)"
    else:
        if f == "pos":
            return f"piecewise({a[0]}, {a[0]} > 0, 0)"
        if f == "hill":
            x, k, n = a
            return f"piecewise({x}^{n} / ({k}^{n} + {x}^{n}), {x} > 0, 0)"
        if f == "min":
            return f"piecewise({a[0]}, {a[0]} < {a[1]}, {a[1]})"
        if f == "max":
            return f"piecewise({a[0]}, {a[0]} > {a[1]}, {a[1]})"
    raise ModelDefinitionError(f"unknown function {f}")  # pragma: no cover


def to_text(expr: str) -> str:
    """Readable one-line form for the documentation."""
    return ast.unparse(parse_expr(expr))


# --------------------------------------------------------------------------- parameters


def read_parameter_table(filename: str = "parameters.csv") -> list[Parameter]:
    text = resources.files("imiqsim.model").joinpath(filename).read_text(encoding="utf-8")
    rows = csv.DictReader(
        line for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
    out = []
    for r in rows:
        try:
            out.append(
                Parameter(
                    name=r["name"].strip(),
                    value=float(r["value"]),
                    unit=r["unit"].strip(),
                    description=r["description"].strip(),
                    source=r["source"].strip(),
                    status=r["status"].strip(),
                    module=r.get("module", "").strip(),
                )
            )
        except (KeyError, ValueError) as exc:
            raise ModelDefinitionError(f"bad row in {filename}: {r}: {exc}") from exc
    return out


def topo_sort_observables(observables: Iterable[Observable], known: set[str]) -> list[Observable]:
    """Order observables so each is computed after the ones it uses."""
    pending = {o.name: o for o in observables}
    done: list[Observable] = []
    avail = set(known)
    while pending:
        ready = [o for o in pending.values() if names_in(o.expr) <= avail]
        if not ready:
            missing = {
                n: sorted(names_in(o.expr) - avail - set(pending)) for n, o in pending.items()
            }
            raise ModelDefinitionError(f"observables with unknown or cyclic names: {missing}")
        for o in ready:
            done.append(o)
            avail.add(o.name)
            del pending[o.name]
    return done
