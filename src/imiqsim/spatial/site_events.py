"""Timed events on masks of grid sites: the event list, the masks and the per-kind handlers.

A :class:`SiteEvent` is a dose event (:mod:`imiqsim.vocabulary` kinds) that
acts on a *mask* of sites. The scenario's own events become site events
(cream on the whole field or on the visible lesions, everything else on the
whole field); ``FieldSpec(extra_events=...)`` adds more. APPLY, WASH and
CHECK are built in. Any other kind is handed to a handler registered with
:func:`register_site_event`, which may change the site states in place;
FREEZE has a default handler that applies the model's own freeze
assignments (``model/cryo.py``) to the masked sites, so no cryotherapy
biology is written here.

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
from imiqsim.vocabulary import APPLY, CHECK, FREEZE, WASH

if TYPE_CHECKING:
    from imiqsim.spatial.layout import FieldLayout
    from imiqsim.spatial.spec import FieldSpec

__all__ = [
    "BUILT_IN_KINDS",
    "EVENT_STATES",
    "FieldState",
    "SiteEventHandler",
    "apply_event",
    "build_masks",
    "event_list",
    "handled_kinds",
    "mask_for",
    "register_site_event",
    "unregister_site_event",
]

#: kinds the field applies itself (their handlers cannot be replaced)
BUILT_IN_KINDS = (APPLY, WASH, CHECK)
#: states written by the built-in dose events per site mask (cannot be shared over the field)
EVENT_STATES = ("film", "applied", "washed_off")


# --------------------------------------------------------------------------- handlers


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


def _model_freeze(state: FieldState, event: SiteEvent, mask: np.ndarray) -> None:
    """Default FREEZE handler: the model's own ``freeze_event`` (model/cryo.py) on masked sites.

    ``event.amount_mg`` carries the freeze time in seconds (as in the engine).
    The model freezes only where a lesion is visible; with the per-lesion
    threshold scaling of the field (:mod:`imiqsim.spatial.layout`) a site's
    ``visible_lesions`` is its lesion's clinical visibility, so applying it
    to the whole field touches only the sites of visible lesions.
    """
    sites = np.flatnonzero(mask.ravel())
    state.kernels.freeze_sites(
        state.Y,
        sites,
        state.layout.site_class,
        state.layout.class_parameters,
        float(event.amount_mg),
    )


def register_site_event(kind: int, handler: SiteEventHandler) -> SiteEventHandler | None:
    """Register ``handler(state, event, mask)`` for an event kind the engine does not know.

    ``imiqsim.vocabulary.FREEZE`` is handled by default with the model's own
    freeze assignments (model/cryo.py) on the masked sites; a handler
    registered here replaces that (e.g. a freeze with a spatial rim). APPLY,
    WASH and CHECK are built in and cannot be replaced. Returns the handler
    that was registered for ``kind`` before (None if there was none).

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
    """Remove the handler of ``kind``; returns it (None if there was none)."""
    if kind in BUILT_IN_KINDS:
        raise InputError("kind", kind, "a kind other than the built-in APPLY, WASH and CHECK")
    return _HANDLERS.pop(int(kind), None)


def handled_kinds() -> tuple[int, ...]:
    """Every event kind the field can apply now: the built-in ones and the registered ones."""
    return BUILT_IN_KINDS + tuple(sorted(_HANDLERS))


_HANDLERS[FREEZE] = _model_freeze


def apply_event(state: FieldState, event: SiteEvent, mask: np.ndarray) -> None:
    """Apply one APPLY or WASH event, or any registered kind, to the masked sites in place.

    ``mask`` is flat (one entry per site). CHECK changes no state and the
    dose gates are decided before (:func:`imiqsim.spatial.simulate.simulate_field`).
    """
    Y, si = state.Y, state.model.state_index
    if event.kind == APPLY:
        Y[mask, si("film")] += event.amount_mg
        Y[mask, si("applied")] += event.amount_mg
    elif event.kind == WASH:
        i_film, i_washed = si("film"), si("washed_off")
        Y[mask, i_washed] += Y[mask, i_film]
        Y[mask, i_film] = 0.0
    elif event.kind != CHECK:
        handler = _HANDLERS.get(event.kind)
        if handler is None:
            raise InputError(
                "events.kind",
                event.kind,
                "an event kind with a registered field handler "
                "(imiqsim.spatial.register_site_event)",
            )
        handler(state, event, mask.reshape(state.layout.ny, state.layout.nx))


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
