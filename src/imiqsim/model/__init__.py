"""The imiquimod mechanism, assembled from one module per stage.

>>> from imiqsim.model import get_model
>>> m = get_model()
>>> "ifn_alpha" in m.state_names
True
"""

from __future__ import annotations

import csv
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

import numpy as np

from imiqsim.errors import InputError, ModelDefinitionError
from imiqsim.model import cells, cryo, cytokines, fluorouracil, lesions, pk, reactions, tlr7
from imiqsim.model._dsl import (
    DoseGating,
    EventEffect,
    ModuleSpec,
    Observable,
    Parameter,
    Reaction,
    State,
    diff_python,
    names_in,
    parse_expr,
    read_parameter_table,
    to_python,
    to_sbml_infix,
    to_text,
    topo_sort_observables,
)
from imiqsim.vocabulary import CHECK, EVENT_KINDS

MODULES = (pk, tlr7, cytokines, cells, lesions, reactions, cryo, fluorouracil)


def _table_rows(filename: str) -> list[dict[str, str]]:
    """Rows of one of the model's CSV tables (``#`` lines are comments)."""
    text = resources.files("imiqsim.model").joinpath(filename).read_text(encoding="utf-8")
    return list(
        csv.DictReader(
            line for line in text.splitlines() if line.strip() and not line.startswith("#")
        )
    )


def _first_seen(rows: list[dict[str, str]], column: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r[column] for r in rows))


# The mechanism's vocabulary, read from its definition and tables: every other part of imiqsim
# (scenario validation, trace variables, plots, diffusion, CLI help) reads these names from here.
#: indications with lesion biology in ``indications.csv``
INDICATIONS: tuple[str, ...] = _first_seen(_table_rows("indications.csv"), "indication")
#: anatomical sites with a permeability in ``sites.csv``
SITES: tuple[str, ...] = _first_seen(_table_rows("sites.csv"), "site")
#: the cytokines of the cascade (stage ``cytokines``)
CYTOKINES: tuple[str, ...] = cytokines.CYTOKINES
#: immune cells resident in or recruited to the treated skin (stage ``cells``)
SKIN_CELLS: tuple[str, ...] = cells.SKIN_CELLS

#: in-silico experiments: each knockout/depletion sets switch parameters to 0
KNOCKOUTS: dict[str, dict[str, float]] = {
    "tlr7": {"tlr7_expression": 0.0},
    "pdc": {"pdc_present": 0.0},
    "macrophage": {"macrophage_present": 0.0},
    "dendritic": {"dc_present": 0.0},
    "nk": {"nk_present": 0.0},
    "cd8": {"cd8_present": 0.0},
    "memory": {"memory_present": 0.0},
    "ifn_alpha": {"ifn_alpha_present": 0.0},
    "tnf_alpha": {"tnf_alpha_present": 0.0},
    "il12": {"il12_present": 0.0},
    "ifn_gamma": {"ifn_gamma_present": 0.0},
    "death_receptor": {"death_receptor_present": 0.0},
}


#: states and observables whose maximum over time the engine tracks at every accepted step (serum
#: Cmax, cytokine peaks, the worst local skin reaction and systemic symptoms: outcomes read them)
TRACKED_PEAKS: tuple[str, ...] = (
    "serum_conc_ng_ml",
    "skin_conc_ug_ml",
    "tlr7_activation",
    "ifn_alpha",
    "tnf_alpha",
    "il1",
    "il6",
    "il8",
    "il12",
    "ifn_gamma",
    "ifn_alpha_serum",
    "il6_serum",
    "lsr_score",
    "erythema_score",
    "oedema_score",
    "weeping_score",
    "erosion_score",
    "crusting_score",
    "flaking_score",
    "flu_like_probability",
    "systemic_cytokine_index",
    "blister_score",
    "pain_score",
)


#: what the dose gates and the rest rule read: clear = no visible lesion; rest while the local skin
#: reaction score is at or above its (calibrated) threshold
DOSE_GATING = DoseGating(
    clear_observable="visible_lesions",
    clear_below=0.5,
    rest_score="lsr_score",
    rest_threshold="lsr_rest_threshold",
)


@dataclass(frozen=True, eq=False)
class Model:
    """The whole mechanism as data: states, parameters, observables, reactions."""

    modules: tuple[ModuleSpec, ...]
    states: tuple[State, ...]
    parameters: tuple[Parameter, ...]
    observables: tuple[Observable, ...]
    reactions: tuple[Reaction, ...]
    indication_parameters: Mapping[str, Mapping[str, Parameter]]
    site_permeability: Mapping[str, float]
    #: what each kind of timed event does to the states, one entry per kind (the stages'
    #: declarations of that kind merged), in the order of ``event_kinds``
    events: tuple[EventEffect, ...]
    #: every event kind the model knows, name -> code: the built-ins of
    #: :data:`imiqsim.vocabulary.EVENT_KINDS`, then the kinds the stages declare, numbered on
    event_kinds: Mapping[str, int]
    #: the quantities the dose gates and the rest rule read
    gating: DoseGating
    #: cumulative kill tallies of lesion cells, state -> (label, kind: background | immune | direct)
    kill_tallies: Mapping[str, tuple[str, str]]

    # ------------------------------------------------------------------ names
    @functools.cached_property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @functools.cached_property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @functools.cached_property
    def observable_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.observables)

    @functools.cached_property
    def _sidx(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.state_names)}

    @functools.cached_property
    def _pidx(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.parameter_names)}

    @functools.cached_property
    def _oidx(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.observable_names)}

    def state_index(self, name: str) -> int:
        return self._sidx[name]

    def parameter_index(self, name: str) -> int:
        return self._pidx[name]

    def observable_index(self, name: str) -> int:
        return self._oidx[name]

    def parameter(self, name: str) -> Parameter:
        return self.parameters[self._pidx[name]]

    # ------------------------------------------------------------------ events
    def event_kind(self, name: str) -> int:
        """The code of an event kind, for an events table's ``kinds`` column.

        >>> get_model().event_kind("APPLY")
        1
        """
        if name not in self.event_kinds:
            raise InputError("event kind", name, f"one of {sorted(self.event_kinds)}")
        return self.event_kinds[name]

    @functools.cached_property
    def event_effects(self) -> dict[int, EventEffect]:
        """Event code -> what an event of that kind does (kinds with a declared effect only)."""
        return {self.event_kinds[e.kind]: e for e in self.events}

    @functools.cached_property
    def event_only_parameters(self) -> dict[str, frozenset[int]]:
        """Parameters read only by event assignments -> the codes of the kinds that read them.

        A schedule with none of those kinds cannot depend on such a parameter (the
        freeze-time response of cryotherapy has no effect on a cream arm): the
        calibration uses this to simulate only the arms a fitted key can reach.

        >>> m = get_model()
        >>> m.event_only_parameters["cryo_hill"] == {m.event_kind("FREEZE")}
        True
        >>> "tlr7_ec50_ug_ml" in m.event_only_parameters  # read by rate laws
        False
        """
        elsewhere: set[str] = set()
        for expr in (
            *(r.rate for r in self.reactions),
            *(o.expr for o in self.observables),
            *(st.initial for st in self.states),
        ):
            elsewhere |= names_in(expr)
        readers: dict[str, set[int]] = {}
        for e in self.events:
            for expr in e.assignments.values():
                for name in names_in(expr):
                    readers.setdefault(name, set()).add(self.event_kinds[e.kind])
        names = set(self.parameter_names)
        gating = {self.gating.rest_threshold}
        return {
            n: frozenset(k)
            for n, k in readers.items()
            if n in names and n not in elsewhere and n not in gating
        }

    def error_norm_states(self, kinds: Iterable[int] | np.ndarray) -> np.ndarray:
        """Indices of the states in the step-size error norm for a schedule with these kinds.

        Every state, except those of a stage declared inert without certain
        event kinds (:attr:`ModuleSpec.inert_without`) when the schedule has
        none of them.

        >>> m = get_model()
        >>> len(m.error_norm_states([m.event_kind("APPLY_FLUOROURACIL")])) == len(m.states)
        True
        >>> len(m.error_norm_states([1, 2])) < len(m.states)  # no 5-FU: its stage is inert
        True
        """
        present = {int(k) for k in np.asarray(kinds, dtype=np.int64).ravel()}
        left_out: set[str] = set()
        for mod in self.modules:
            if mod.inert_without and not present & {self.event_kinds[k] for k in mod.inert_without}:
                left_out |= {s.name for s in mod.states}
        return np.array(
            [i for i, n in enumerate(self.state_names) if n not in left_out], dtype=np.int64
        )

    @property
    def gated_dose_kinds(self) -> tuple[int, ...]:
        """Codes of the kinds that are doses: subject to the gates and the rest rule."""
        return tuple(k for k, e in self.event_effects.items() if e.gated_dose)

    @functools.cached_property
    def fingerprint(self) -> str:
        """Hash of the definition; keys the compiled-code cache."""
        h = hashlib.sha256()
        for s in self.states:
            h.update(repr((s.name, s.initial)).encode())
        for p in self.parameters:
            h.update(p.name.encode())
        for o in self.observables:
            h.update(repr((o.name, o.expr)).encode())
        for r in self.reactions:
            h.update(
                repr(
                    (r.name, r.rate, sorted(r.reactants.items()), sorted(r.products.items()))
                ).encode()
            )
        for e in self.events:
            h.update(repr((self.event_kinds[e.kind], e.amount, e.gated_dose)).encode())
            h.update(repr(sorted(e.assignments.items())).encode())
        h.update(repr(self.gating).encode())
        return h.hexdigest()[:16]

    @functools.cached_property
    def stoichiometry(self) -> np.ndarray:
        """(n_states, n_reactions) matrix."""
        s = np.zeros((len(self.states), len(self.reactions)))
        for j, r in enumerate(self.reactions):
            for name, c in r.reactants.items():
                s[self._sidx[name], j] -= c
            for name, c in r.products.items():
                s[self._sidx[name], j] += c
        return s

    @property
    def drug_mass_states(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states if s.drug_mass)

    # ------------------------------------------------------------------ parameters
    def parameter_vector(
        self,
        indication: str = "AK",
        site: str | None = None,
        area_cm2: float | None = None,
        overrides: Mapping[str, float] | None = None,
        knockouts: Iterable[str] = (),
        cream_strength: float | None = None,
    ) -> np.ndarray:
        """Parameter values for one patient, in ``parameter_names`` order.

        Order of precedence: table defaults < indication < site < area and
        cream strength < knockouts < explicit overrides.
        """
        if indication not in self.indication_parameters:
            raise InputError("indication", indication, f"one of {list(self.indication_parameters)}")
        p = np.array([q.value for q in self.parameters], dtype=float)
        for name, q in self.indication_parameters[indication].items():
            p[self._pidx[name]] = q.value
        if site is not None:
            if site not in self.site_permeability:
                raise InputError("site", site, f"one of {list(self.site_permeability)}")
            p[self._pidx["site_permeability"]] = self.site_permeability[site]
        if area_cm2 is not None:
            p[self._pidx["treated_area_cm2"]] = float(area_cm2)
        if cream_strength is not None:
            p[self._pidx["cream_strength"]] = float(cream_strength)
        for ko in knockouts:
            if ko not in KNOCKOUTS:
                raise InputError("knockout", ko, f"one of {sorted(KNOCKOUTS)}")
            for name, v in KNOCKOUTS[ko].items():
                p[self._pidx[name]] = v
        for name, v in (overrides or {}).items():
            if name not in self._pidx:
                close = [n for n in self.parameter_names if name.split("_")[0] in n][:5]
                raise InputError(
                    f"parameters.{name}",
                    v,
                    "not a model parameter"
                    + (f"; did you mean one of {close}?" if close else "")
                    + " (see `imiqsim parameters`)",
                )
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise InputError(f"parameters.{name}", v, "must be a number") from None
            if not np.isfinite(fv) or fv < 0:
                raise InputError(f"parameters.{name}", v, "must be a finite number >= 0")
            p[self._pidx[name]] = fv
        return p

    def parameter_table(self) -> list[dict]:
        """Rows for docs/CLI: name, value, unit, module, description, source, status."""
        return [
            dict(
                name=q.name,
                value=q.value,
                unit=q.unit,
                module=q.module,
                description=q.description,
                source=q.source,
                status=q.status,
            )
            for q in self.parameters
        ]


def _read_indications() -> dict[str, dict[str, Parameter]]:
    out: dict[str, dict[str, Parameter]] = {i: {} for i in INDICATIONS}
    for r in _table_rows("indications.csv"):
        out[r["indication"]][r["name"]] = Parameter(
            r["name"],
            float(r["value"]),
            r["unit"],
            r["description"],
            r["source"],
            r["status"],
            "lesions",
        )
    return out


def _read_sites() -> dict[str, float]:
    return {r["site"]: float(r["site_permeability"]) for r in _table_rows("sites.csv")}


def _validate(model: Model) -> None:
    states = set(model.state_names)
    params = set(model.parameter_names)
    obs = set(model.observable_names)
    for group in (states & params, states & obs, params & obs):
        if group:
            raise ModelDefinitionError(f"names used twice: {sorted(group)}")
    known = states | params | obs
    used: set[str] = set()
    for r in model.reactions:
        n = names_in(r.rate)
        if n - known:
            raise ModelDefinitionError(f"reaction {r.name} uses unknown names {sorted(n - known)}")
        for s in list(r.reactants) + list(r.products):
            if s not in states:
                raise ModelDefinitionError(f"reaction {r.name} refers to unknown state {s}")
        used |= n
    for s in model.states:
        n = names_in(s.initial)
        if n - params:
            raise ModelDefinitionError(
                f"initial value of {s.name} uses non-parameters {sorted(n - params)}"
            )
        used |= n
    for o in model.observables:
        used |= names_in(o.expr)
    for tally in model.kill_tallies:
        if tally not in states:
            raise ModelDefinitionError(f"kill tally {tally} is not a state")
    for ev in model.events:
        if ev.amount and ev.amount in known:
            raise ModelDefinitionError(f"{ev.kind} event: amount name {ev.amount} is a model name")
        for target, expr in ev.assignments.items():
            if target not in states:
                raise ModelDefinitionError(f"{ev.kind} assignment to unknown state {target}")
            n = names_in(expr) - {ev.amount}
            if n - known:
                raise ModelDefinitionError(
                    f"{ev.kind} assignment of {target} uses unknown names {sorted(n - known)}"
                )
            used |= n
    for mod in model.modules:
        for kind in mod.inert_without:
            if kind not in model.event_kinds:
                raise ModelDefinitionError(f"stage {mod.name} is inert without unknown kind {kind}")
        for s in mod.states if mod.inert_without else ():
            if s.initial.strip() not in ("0", "0.0"):
                raise ModelDefinitionError(
                    f"stage {mod.name} is declared inert but {s.name} starts at {s.initial}"
                )
    missing = set(TRACKED_PEAKS) - states - obs
    if missing:
        raise ModelDefinitionError(f"TRACKED_PEAKS names unknown quantities {sorted(missing)}")
    g = model.gating
    for name, group in (
        (g.clear_observable, obs),
        (g.rest_score, obs),
        (g.rest_threshold, params),
    ):
        if name not in group:
            raise ModelDefinitionError(f"dose gating reads {name}, which the model does not define")
    # the rest threshold is used by the event logic, not by rate laws; module "population"
    # parameters are read by the virtual-population sampler (imiqsim.population)
    sampler = {p.name for p in model.parameters if p.module == "population"}
    unused = params - used - {g.rest_threshold} - sampler
    if unused:
        raise ModelDefinitionError(f"parameters never used: {sorted(unused)}")
    for ind, d in model.indication_parameters.items():
        bad = set(d) - params
        if bad:
            raise ModelDefinitionError(
                f"indications.csv ({ind}) names unknown parameters {sorted(bad)}"
            )


def _merge_events(
    mods: Iterable[ModuleSpec],
) -> tuple[tuple[EventEffect, ...], dict[str, int]]:
    """One effect per event kind (the stages' declarations merged) and the code of every kind.

    Built-in kinds keep their codes from :mod:`imiqsim.vocabulary`; a kind first
    declared by a stage gets the next free code, in the order of ``MODULES``.
    CHECK is the engine's own (a clinic visit) and carries no state effect.
    """
    kinds = {name: code for code, name in EVENT_KINDS.items()}
    merged: dict[str, EventEffect] = {}
    for m in mods:
        for ev in m.events:
            if ev.kind == EVENT_KINDS[CHECK]:
                raise ModelDefinitionError(f"stage {m.name}: CHECK events change no state")
            if ev.kind not in kinds:
                kinds[ev.kind] = max(kinds.values()) + 1
            prev = merged.get(ev.kind)
            if prev is None:
                merged[ev.kind] = ev
                continue
            if (prev.amount, prev.gated_dose) != (ev.amount, ev.gated_dose):
                raise ModelDefinitionError(
                    f"{ev.kind} declared by {prev.module} and {m.name} with a different amount "
                    "name or dose flag"
                )
            both = set(prev.assignments) & set(ev.assignments)
            if both:
                raise ModelDefinitionError(
                    f"{ev.kind}: {prev.module} and {m.name} both assign {sorted(both)}"
                )
            merged[ev.kind] = EventEffect(
                ev.kind,
                {**prev.assignments, **ev.assignments},
                prev.amount,
                prev.unit,
                prev.gated_dose,
                prev.description,
                prev.module,
            )
    ordered = tuple(sorted(merged.values(), key=lambda e: kinds[e.kind]))
    return ordered, kinds


@functools.lru_cache(maxsize=1)
def get_model() -> Model:
    """Build (once) and return the full mechanism."""
    return assemble_model(tuple(mod.build() for mod in MODULES))


def assemble_model(mods: tuple[ModuleSpec, ...]) -> Model:
    """A model from stage modules (``get_model`` uses the stages of ``MODULES``).

    Parameters come from the parameter, indication and site tables; the
    result is checked (every name known, every parameter used).

    >>> from imiqsim.model import MODULES, assemble_model
    >>> assemble_model(tuple(m.build() for m in MODULES)).event_kinds["FREEZE"]
    4
    """
    states = tuple(s for m in mods for s in m.states)
    params = tuple(read_parameter_table())
    raw_obs = [o for m in mods for o in m.observables]
    obs = tuple(topo_sort_observables(raw_obs, {s.name for s in states} | {p.name for p in params}))
    rxns = tuple(r for m in mods for r in m.reactions)
    kills = {k: v for m in mods for k, v in m.kill_tallies.items()}
    events, kinds = _merge_events(mods)
    model = Model(
        mods,
        states,
        params,
        obs,
        rxns,
        _read_indications(),
        _read_sites(),
        events=events,
        event_kinds=kinds,
        gating=DOSE_GATING,
        kill_tallies=kills,
    )
    _validate(model)
    return model


__all__ = [
    "CYTOKINES",
    "DOSE_GATING",
    "INDICATIONS",
    "KNOCKOUTS",
    "MODULES",
    "SITES",
    "SKIN_CELLS",
    "TRACKED_PEAKS",
    "DoseGating",
    "EventEffect",
    "Model",
    "ModuleSpec",
    "Observable",
    "Parameter",
    "Reaction",
    "State",
    "assemble_model",
    "diff_python",
    "get_model",
    "names_in",
    "parse_expr",
    "to_python",
    "to_sbml_infix",
    "to_text",
]
