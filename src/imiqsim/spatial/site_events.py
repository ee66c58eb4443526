"""Timed events on masks of grid sites: the event list, the masks and what each kind does.

A :class:`~imiqsim.spatial.SiteEvent` is a dose event that acts on a *mask*
of sites. The scenario's own events become site events (cream on the whole
field or on the visible lesions, everything else on the whole field);
``FieldSpec(extra_events=...)`` adds more.

What an event does to a site is the model's own declaration
(``ModuleSpec.event`` in the stage modules: pk.py's APPLY and WASH, cryo.py's
FREEZE, any kind a new stage declares), applied to every masked site with
that site's parameters by the compiled ``event_effect``; no treatment
biology is written here. Doses (the model's gated-dose kinds) are given only
if their gate and the rest rule allow it (:mod:`imiqsim.spatial.simulate`);
CHECK records whether the field is clear. A handler registered with
:func:`register_site_event` replaces the model's effect for one kind (e.g. a
freeze with a spatial rim) or gives a kind the model does not know a meaning.

Examples
--------
>>> from imiqsim.vocabulary import APPLY
>>> SiteEvent(24.0, APPLY, 12.5, mask="visible_lesions").mask
'visible_lesions'
>>> SiteEvent(24.0, APPLY, mask="face")
Traceback (most recent call last):
...
imiqsim.errors.InputError: mask: got 'face'; one of ('field', 'lesions', 'visible_lesions'), \
slot numbers 1..14 or a boolean array (ny, nx)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imiqsim.errors import InputError
from imiqsim.model import Model
from imiqsim.spatial.spec import SiteEvent
from imiqsim.vocabulary import APPLY, CHECK, WASH

if TYPE_CHECKING:
    from imiqsim.spatial.layout import FieldLayout
    from imiqsim.spatial.spec import FieldSpec

__all__ = [
    "BUILT_IN_KINDS",
    "FieldState",
    "SiteEventHandler",
    "apply_event",
    "build_masks",
    "dose_states",
    "event_list",
    "handled_kinds",
    "mask_for",
    "register_site_event",
    "unregister_site_event",
]

#: kinds whose effect on the field cannot be replaced by a handler
BUILT_IN_KINDS = (APPLY, WASH, CHECK)


# --------------------------------------------------------------------------- what events do


def dose_states(model: Model) -> tuple[str, ...]:
    """The states a dose writes, and those the events acting on them write (model order).

    Starts from the states the model's gated-dose kinds assign (APPLY: the
    film and the running total) and adds the states of every other kind
    that assigns one of them (WASH empties the film into ``washed_off``).
    A dose given to part of the field must stay there, so these states
    cannot be shared over the field (``FieldSpec.shared_states``).

    Examples
    --------
    >>> from imiqsim.model import get_model
    >>> dose_states(get_model())  # imiquimod's cream (pk.py), then 5-FU's (fluorouracil.py)
    ('film', 'washed_off', 'applied', 'fu_film', 'fu_washed_off', 'fu_applied')
    """
    effects = model.event_effects
    out = {st for k in model.gated_dose_kinds for st in effects[k].assignments}
    grew = True
    while grew:
        grew = False
        for e in effects.values():
            if out & set(e.assignments) and not set(e.assignments) <= out:
                out |= set(e.assignments)
                grew = True
    return tuple(n for n in model.state_names if n in out)


@dataclass
class FieldState:
    """What a site-event handler sees and may change in place (``Y``: sites x states)."""

    model: Model
    layout: FieldLayout
    Y: np.ndarray
    t_h: float
    kernels: Any = None

    def column(self, state: str) -> np.ndarray:
        """View of one state over all sites (in whole-field equivalents, see ``field``)."""
        return self.Y[:, self.model.state_index(state)]


SiteEventHandler = Callable[[FieldState, SiteEvent, np.ndarray], None]
_HANDLERS: dict[int, SiteEventHandler] = {}


def register_site_event(kind: int, handler: SiteEventHandler) -> SiteEventHandler | None:
    """Register ``handler(state, event, mask)`` for an event kind.

    The handler replaces the model's declared effect of ``kind`` on the field
    (e.g. a freeze with a spatial rim instead of cryo.py's FREEZE on every
    masked site), or gives a kind the model does not declare a meaning on
    the field. ``mask`` is the (ny, nx) boolean array of the event's sites;
    the handler changes ``state.Y`` in place. APPLY, WASH and CHECK cannot be
    replaced. Returns the handler registered for ``kind`` before (or None).

    Examples
    --------
    >>> def mark(state, event, mask):
    ...     state.column("scaling")[mask.ravel()] += event.amount_mg
    >>> register_site_event(77, mark) is None
    True
    >>> unregister_site_event(77) is mark
    True
    """
    if kind in BUILT_IN_KINDS:
        raise InputError("kind", kind, "a kind other than the built-in APPLY, WASH and CHECK")
    before = _HANDLERS.get(int(kind))
    _HANDLERS[int(kind)] = handler
    return before


def unregister_site_event(kind: int) -> SiteEventHandler | None:
    """Remove the handler of ``kind`` (the model's effect applies again); returns it or None."""
    if kind in BUILT_IN_KINDS:
        raise InputError("kind", kind, "a kind other than the built-in APPLY, WASH and CHECK")
    return _HANDLERS.pop(int(kind), None)


def handled_kinds(model: Model) -> tuple[int, ...]:
    """Every event kind the field can apply now: CHECK, the model's and the registered ones."""
    return tuple(sorted({CHECK, *model.event_effects, *_HANDLERS}))


def apply_event(state: FieldState, event: SiteEvent, mask: np.ndarray) -> frozenset[str] | None:
    """Apply one event's effect to the masked sites of ``state.Y`` in place.

    ``mask`` is flat (one entry per site). A registered handler runs if there
    is one; otherwise the model's declared effect of the kind runs on every
    masked site with that site's parameters. Whether a dose is given at all
    (gates, rest) is decided before, and CHECK changes no state.

    Returns
    -------
    frozenset of str or None
        The states the event may have changed (None: unknown, a handler ran).

    Raises
    ------
    InputError
        A kind with neither a handler nor an effect declared by the model.
    """
    handler = _HANDLERS.get(event.kind)
    if handler is not None:
        handler(state, event, mask.reshape(state.layout.ny, state.layout.nx))
        return None
    effect = state.model.event_effects.get(event.kind)
    if effect is None:
        if event.kind == CHECK:
            return frozenset()
        raise InputError(
            "events.kind",
            event.kind,
            "an event kind the model declares (ModuleSpec.event) or with a registered field "
            "handler (imiqsim.spatial.register_site_event)",
        )
    state.kernels.event_sites(
        int(event.kind),
        state.Y,
        np.flatnonzero(mask),
        state.layout.site_class,
        state.layout.class_parameters,
        float(event.amount_mg),
    )
    return frozenset(effect.assignments)


# --------------------------------------------------------------------------- masks and the list


def build_masks(spec: FieldSpec, layout: FieldLayout) -> dict[str, np.ndarray]:
    """The named masks (flat, one entry per site) of ``layout``."""
    N = layout.n_sites
    masks: dict[str, np.ndarray] = {"field": np.ones(N, dtype=bool)}
    les = np.zeros(N, dtype=bool)
    for L in layout.lesions:
        les[L.sites] = True
    masks["lesions"] = les
    yc, xc = layout.coords_mm()
    YY, XX = np.meshgrid(yc, xc, indexing="ij")
    vis = np.zeros(N, dtype=bool)
    for L in layout.lesions:
        if L.cells > layout.visible_threshold_cells:
            vis[L.sites] = True
            vis |= (
                np.hypot(XX - L.x_mm, YY - L.y_mm)
                <= L.radius_mm + float(spec.application_margin_mm)
            ).ravel()
    masks["visible_lesions"] = vis
    return masks


def mask_for(ev_mask: Any, masks: dict[str, np.ndarray], layout: FieldLayout) -> np.ndarray:
    """The flat site mask of an event's ``mask`` (a name, slot numbers or a boolean array)."""
    if isinstance(ev_mask, str):
        return masks[ev_mask]
    if isinstance(ev_mask, tuple):
        m = np.zeros(layout.n_sites, dtype=bool)
        for L in layout.lesions:
            if L.slot in ev_mask:
                m[L.sites] = True
        return m
    return np.asarray(ev_mask, dtype=bool).ravel()


def event_list(spec: FieldSpec) -> list[SiteEvent]:
    """The scenario's dose events as site events, plus ``spec.extra_events``, in time order.

    Cream goes on the whole field or on the visible lesions (``spec.application``);
    every other event acts on the whole field.
    """
    ev = spec.scenario_obj.events()
    apply_mask = "field" if spec.application == "field" else "visible_lesions"
    out = [
        SiteEvent(
            time_h=float(t),
            kind=int(kind),
            amount_mg=float(amt),
            mask=apply_mask if kind == APPLY else "field",
            gate=int(gate),
        )
        for t, kind, amt, gate in zip(ev.times_h, ev.kinds, ev.amounts_mg, ev.gates, strict=True)
    ]
    out += list(spec.extra_events)
    out.sort(key=lambda e: (e.time_h, e.kind))  # stable: ties keep APPLY < WASH < CHECK < FREEZE
    return out
