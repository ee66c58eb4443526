"""Generate and compile the engine's numerical kernels from the model definition.

The generated module (plain Python source, compiled by Numba) contains the
right-hand side, its analytic Jacobian (``jac``, for the Rosenbrock stepper),
the observables, the initial state and the batched integrator. It is written
to a cache directory keyed by the model's fingerprint and a hash of the
source (:mod:`imiqsim.engine.cache`), so Numba's on-disk cache makes the
second start fast.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np

from imiqsim.engine import _kernel_template
from imiqsim.engine.cache import cache_dir, load_generated
from imiqsim.model import Model
from imiqsim.model._dsl import diff_python, names_in, parse_expr, to_python

__all__ = ["HELPERS", "cache_dir", "compiled", "generate_source"]

HELPERS = """
import math
import numpy as np
from numba import njit as _j, prange; njit=lambda *a,**k:_j(*a,error_model="numpy",nogil=True,**k)

@njit(cache=True)
def _pos(x):
    return x if x > 0.0 else 0.0

@njit(cache=True)
def _step(x):
    return 1.0 if x > 0.0 else 0.0

@njit(cache=True)
def _hill(x, k, n):
    if x <= 0.0:
        return 0.0
    if n == 1.0:
        return x / (k + x)
    xn = x ** n
    return xn / (k ** n + xn)

@njit(cache=True)
def _min(a, b):
    return a if a < b else b

@njit(cache=True)
def _max(a, b):
    return a if a > b else b

@njit(cache=True)
def _dmin(a, b, da, db):
    return da if a < b else db

@njit(cache=True)
def _dmax(a, b, da, db):
    return da if a > b else db

@njit(cache=True)
def _dhill_dx(x, k, n):
    if x <= 0.0:
        return 0.0
    if n == 1.0:
        s = k + x
        return k / (s * s)
    xn = x ** n
    kn = k ** n
    s = kn + xn
    return n * x ** (n - 1.0) * kn / (s * s)

@njit(cache=True)
def _dhill_dk(x, k, n):
    if x <= 0.0:
        return 0.0
    if n == 1.0:
        s = k + x
        return -x / (s * s)
    xn = x ** n
    s = k ** n + xn
    return -n * k ** (n - 1.0) * xn / (s * s)

@njit(cache=True)
def _dhill_dn(x, k, n):
    if x <= 0.0:
        return 0.0
    xn = x ** n
    kn = k ** n
    s = kn + xn
    return xn * kn * (math.log(x) - math.log(k)) / (s * s)

@njit(cache=True)
def _exp(x):
    return math.exp(x)

@njit(cache=True)
def _log(x):
    return math.log(x)

@njit(cache=True)
def _sqrt(x):
    return math.sqrt(x)
"""


def _py(expr: str) -> str:
    return to_python(parse_expr(expr))


def _jacobian_lines(model: Model, preamble: list[str]) -> list[str]:
    """Source of ``jac(t, y, p, J)``: the dense Jacobian d(rhs)/dy by symbolic differentiation.

    Each observable's derivative with respect to each state it depends on
    (directly or through other observables) is a local ``do<k>_<i>``; each
    reaction's is ``dr<j>_<i>``; ``J[i, s]`` is the stoichiometric sum of the
    reaction derivatives. Terms that are identically zero are never emitted.
    The model has no explicit time dependence (names in rate laws are states,
    parameters and observables), so d(rhs)/dt = 0.
    """
    sidx = {n: i for i, n in enumerate(model.state_names)}
    oidx = {n: k for k, n in enumerate(model.observable_names)}
    # states each observable depends on, through other observables too (observables are
    # topologically sorted)
    deps: dict[str, set[int]] = {}
    for o in model.observables:
        d: set[int] = set()
        for nm in names_in(o.expr):
            if nm in sidx:
                d.add(sidx[nm])
            elif nm in deps:
                d |= deps[nm]
        deps[o.name] = d
    # observables the reactions need, directly or indirectly
    needed: set[str] = set()
    todo = [nm for r in model.reactions for nm in names_in(r.rate) if nm in oidx]
    while todo:
        nm = todo.pop()
        if nm not in needed:
            needed.add(nm)
            todo += [x for x in names_in(model.observables[oidx[nm]].expr) if x in oidx]

    lines = ["@njit(fastmath=False, cache=True)", "def jac(t, y, p, J):"]
    lines += preamble
    lines += [
        "    for i in range(J.shape[0]):",
        "        for j in range(J.shape[1]):",
        "            J[i, j] = 0.0",
    ]
    nonzero: set[tuple[str, int]] = set()  # (observable, state) with a derivative variable

    def dname_for(s: int) -> Callable[[str], str | None]:
        def dname(nm: str) -> str | None:
            return f"do{oidx[nm]}_{s}" if (nm, s) in nonzero else None

        return dname

    for o in model.observables:
        if o.name not in needed:
            continue
        tree = parse_expr(o.expr)
        for s in sorted(deps[o.name]):
            src = diff_python(tree, model.state_names[s], dname_for(s))
            if src is not None:
                lines.append(f"    do{oidx[o.name]}_{s} = {src}")
                nonzero.add((o.name, s))
    stoich = model.stoichiometry
    entries: dict[tuple[int, int], list[str]] = {}
    for j, r in enumerate(model.reactions):
        tree = parse_expr(r.rate)
        dep: set[int] = set()
        for nm in names_in(r.rate):
            if nm in sidx:
                dep.add(sidx[nm])
            elif nm in deps:
                dep |= deps[nm]
        for s in sorted(dep):
            src = diff_python(tree, model.state_names[s], dname_for(s))
            if src is None:
                continue
            lines.append(f"    dr{j}_{s} = {src}")
            for row in np.flatnonzero(stoich[:, j]):
                c = stoich[row, j]
                term = f"dr{j}_{s}" if abs(c) == 1 else f"{abs(c)!r} * dr{j}_{s}"
                entries.setdefault((int(row), s), []).append(f"{'+' if c > 0 else '-'} {term}")
    for (i, s), terms in sorted(entries.items()):
        lines.append(f"    J[{i}, {s}] = {' '.join(terms)}")
    lines.append("")
    return lines


def _needed_observables(model: Model, exprs: list[str]) -> set[str]:
    """Observables the expressions use, directly or through other observables."""
    oidx = {n: k for k, n in enumerate(model.observable_names)}
    needed: set[str] = set()
    todo = [nm for e in exprs for nm in names_in(e) if nm in oidx]
    while todo:
        nm = todo.pop()
        if nm not in needed:
            needed.add(nm)
            todo += [x for x in names_in(model.observables[oidx[nm]].expr) if x in oidx]
    return needed


def _event_lines(model: Model, unpack_p: list[str], unpack_y: list[str]) -> list[str]:
    """Source of one function per declared event kind and the dispatch on the kind's code.

    ``<kind>_event(y, p, amount)`` computes every new value from the pre-event
    state, then assigns them together, clipping at zero. ``event_effect(kind,
    y, p, amount)`` calls the function of ``kind`` (nothing for a kind without
    a declared effect); ``is_gated_dose(kind)`` and ``has_effect(kind)`` say
    what the kind is.
    """
    lines: list[str] = []
    for ev in model.events:
        code = model.event_kinds[ev.kind]
        exprs = list(ev.assignments.values())
        needed = _needed_observables(model, exprs)
        lines.append("@njit(cache=True)")
        lines.append(f"def {ev.kind.lower()}_event(y, p, {ev.amount or '_amount'}):")
        lines.append(f"    # event kind {code}: {ev.description}")
        used = {nm for e in exprs for nm in names_in(e)}
        used |= {nm for o in model.observables if o.name in needed for nm in names_in(o.expr)}
        lines += [u for u, nm in zip(unpack_p, model.parameter_names, strict=True) if nm in used]
        lines += [u for u, nm in zip(unpack_y, model.state_names, strict=True) if nm in used]
        lines += [f"    {o.name} = {_py(o.expr)}" for o in model.observables if o.name in needed]
        targets = list(ev.assignments.items())
        for k, (_name, expr) in enumerate(targets):
            lines.append(f"    new{k} = {_py(expr)}")
        for k, (name, _expr) in enumerate(targets):
            i = model.state_index(name)
            lines.append(f"    y[{i}] = new{k}")
            lines.append(f"    if y[{i}] < 0.0:")
            lines.append(f"        y[{i}] = 0.0")
        lines.append("")
    lines.append("@njit(cache=True)")
    lines.append("def event_effect(kind, y, p, amount):")
    for n, ev in enumerate(model.events):
        lines.append(f"    {'if' if n == 0 else 'elif'} kind == {model.event_kinds[ev.kind]}:")
        lines.append(f"        {ev.kind.lower()}_event(y, p, amount)")
    lines.append("    return")
    lines.append("")
    gated = model.gated_dose_kinds
    effect = tuple(model.event_effects)
    lines.append("@njit(cache=True)")
    lines.append("def is_gated_dose(kind):")
    lines.append(f"    return {' or '.join(f'kind == {k}' for k in gated) or 'False'}")
    lines.append("")
    lines.append("@njit(cache=True)")
    lines.append("def has_effect(kind):")
    lines.append(f"    return {' or '.join(f'kind == {k}' for k in effect) or 'False'}")
    lines.append("")
    return lines


def generate_source(model: Model) -> str:
    """Python/Numba source for the model's kernels."""
    lines = [f"# generated from imiqsim model {model.fingerprint}; do not edit", HELPERS]
    n_s, n_o = len(model.states), len(model.observables)
    unpack_p = [f"    {p} = p[{i}]" for i, p in enumerate(model.parameter_names)]
    unpack_y = [f"    {s} = y[{i}]" for i, s in enumerate(model.state_names)]
    obs_lines = [f"    {o.name} = {_py(o.expr)}" for o in model.observables]

    # rhs: fluxes then state derivatives from stoichiometry
    lines.append("@njit(fastmath=False, cache=True)")
    lines.append("def rhs(t, y, p, dy):")
    lines += unpack_p + unpack_y + obs_lines
    for j, r in enumerate(model.reactions):
        lines.append(f"    r{j} = {_py(r.rate)}")
    stoich = model.stoichiometry
    for i in range(n_s):
        terms = []
        for j in range(len(model.reactions)):
            c = stoich[i, j]
            if c == 0:
                continue
            terms.append(
                f"{'+' if c > 0 else '-'} {abs(c)!r} * r{j}"
                if abs(c) != 1
                else f"{'+' if c > 0 else '-'} r{j}"
            )
        lines.append(f"    dy[{i}] = {' '.join(terms) if terms else '0.0'}")
    lines.append("")

    lines += _jacobian_lines(model, unpack_p + unpack_y + obs_lines)

    lines.append("@njit(cache=True)")
    lines.append("def observables(y, p, out):")
    lines += unpack_p + unpack_y + obs_lines
    for k, o in enumerate(model.observables):
        lines.append(f"    out[{k}] = {o.name}")
    lines.append("")

    lines.append("@njit(cache=True)")
    lines.append("def initial(p, y0):")
    lines += unpack_p
    for i, s in enumerate(model.states):
        lines.append(f"    y0[{i}] = {_py(s.initial)}")
    lines.append("")

    lines.append("@njit(cache=True)")
    lines.append("def reaction_rates(y, p, out):")
    lines += unpack_p + unpack_y + obs_lines
    for j, r in enumerate(model.reactions):
        lines.append(f"    out[{j}] = {_py(r.rate)}")
    lines.append("")
    lines += _event_lines(model, unpack_p, unpack_y)
    g = model.gating
    lines.append(f"CLEAR_IDX = {model.observable_index(g.clear_observable)}")
    lines.append(f"CLEAR_BELOW = {float(g.clear_below)!r}")
    lines.append(f"REST_SCORE_IDX = {model.observable_index(g.rest_score)}")
    lines.append(f"REST_THRESHOLD_IDX = {model.parameter_index(g.rest_threshold)}")
    lines.append(f"N_STATES = {n_s}")
    lines.append(f"N_OBS = {n_o}")
    lines.append(_kernel_template.source())
    return "\n".join(lines) + "\n"


_COMPILED: dict[str, ModuleType] = {}


def compiled(model: Model) -> ModuleType:
    """Import (generating if needed) the compiled kernel module for ``model``."""
    if model.fingerprint not in _COMPILED:
        # keyed by the whole generated source: a change to the kernel, the steppers, the policy or
        # the code generator gets a fresh module
        _COMPILED[model.fingerprint] = load_generated(
            f"imiqsim_gen_{model.fingerprint}", generate_source(model)
        )
    return _COMPILED[model.fingerprint]
