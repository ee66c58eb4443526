"""What field to simulate: :class:`FieldSpec` and :class:`LesionPlacement`, validated by pydantic.

Both are :class:`imiqsim.validation.InputModel` s (frozen, no unknown keys,
strict numbers); bad input raises :class:`~imiqsim.errors.InputError` naming
the field, dotted as in a scenario file (``lesions[0].x_mm``). Fields may
also be given positionally, in the order listed, so ``FieldSpec("ak-5pct",
resolution_mm=10)`` names the scenario first.

Examples
--------
>>> spec = FieldSpec("ak-5pct", resolution_mm=10)
>>> spec.n_per_side, spec.n_sites
(5, 25)
>>> FieldSpec("ak-5pct", resolution_mm=10,
...           lesions=[{"slot": 1, "x_mm": 80, "y_mm": 5, "radius_mm": 2}])
Traceback (most recent call last):
...
imiqsim.errors.InputError: lesions[0].x_mm: got 80.0; a lesion centre inside the field: \
0..50 mm (square field of 25 cm2)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from imiqsim.errors import InputError
from imiqsim.model import get_model
from imiqsim.model.lesions import N_SLOTS
from imiqsim.spatial import diffusion as _diff
from imiqsim.validation import InputModel, StrictBool, StrictFloat, StrictInt, fail
from imiqsim.vocabulary import GATES

__all__ = ["MASK_NAMES", "MAX_SITES", "FieldSpec", "LesionPlacement", "SiteEvent"]

#: most grid sites accepted (250,000 = 500 x 500)
MAX_SITES = 250_000
#: named masks: every site, the sites of every lesion patch, the visible lesions plus a margin
MASK_NAMES = ("field", "lesions", "visible_lesions")


def _from(err: InputError) -> Exception:
    """An InputError raised while validating, carried through pydantic with its own field."""
    return fail(err.allowed, err.value, err.field)


class _SpatialInput(InputModel):
    """An input model that also takes its fields positionally (in declaration order) and checks
    the ranges in its ``_RANGES`` table: field -> (test, what is allowed)."""

    _RANGES: ClassVar[dict[str, tuple[Callable[[Any], bool], str]]] = {}

    def __init__(self, *args: Any, **data: Any) -> None:
        names = list(type(self).model_fields)
        if len(args) > len(names):
            raise InputError(
                type(self).__name__,
                args,
                f"at most {len(names)} positional arguments ({', '.join(names)})",
            )
        for name, value in zip(names, args, strict=False):
            if name in data:
                raise InputError(name, value, "given both positionally and by keyword")
            data[name] = value
        super().__init__(**data)

    @field_validator("*")
    @classmethod
    def _in_range(cls, v: Any, info: ValidationInfo) -> Any:
        rule = cls._RANGES.get(info.field_name or "")
        if rule is not None and not rule[0](v):
            raise fail(rule[1], v)
        return v


class SiteEvent(_SpatialInput):
    """A timed event acting on a mask of sites (the generic per-site hook).

    ``mask``: ``"field"``, ``"lesions"`` (all lesion patches), ``"visible_lesions"``
    (patches of lesions visible at baseline plus ``application_margin_mm``), a
    tuple of slot numbers, or a boolean array of shape (ny, nx). ``amount_mg``
    for APPLY is the whole-field dose: masked sites receive the same mg/cm2 as
    in a whole-field application. Whether ``kind`` has a handler and whether a
    mask array fits the grid are checked by :class:`~imiqsim.spatial.FieldSpec`.
    """

    time_h: StrictFloat
    kind: StrictInt
    amount_mg: StrictFloat = 0.0
    mask: Any = "field"
    gate: StrictInt = 0

    # an array mask has no meaningful value equality: events compare by identity
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    _RANGES = {
        "time_h": (lambda v: v >= 0, "a time in hours >= 0"),
        "amount_mg": (lambda v: v >= 0, "an amount in mg >= 0"),
        "gate": (lambda v: v in GATES, f"a gate code: {GATES}"),
    }

    @field_validator("mask")
    @classmethod
    def _mask(cls, m: Any) -> Any:
        allowed = f"one of {MASK_NAMES}, slot numbers 1..{N_SLOTS} or a boolean array (ny, nx)"
        if isinstance(m, str):
            if m not in MASK_NAMES:
                raise fail(allowed, m)
        elif isinstance(m, tuple):
            if not all(
                isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 1 <= k <= N_SLOTS
                for k in m
            ):
                raise fail(f"slot numbers 1..{N_SLOTS}", m)
        else:
            a = np.asarray(m)
            if a.dtype != bool or a.ndim != 2:
                raise fail(allowed, f"array {a.shape} {a.dtype}")
        return m


class LesionPlacement(_SpatialInput):
    """An explicitly placed lesion: slot ``1..N_SLOTS``, centre and radius in mm (origin: a corner).

    ``cells`` defaults to the slot's ``lesion_initial_cells_k`` of the scenario.
    The centre must lie inside the field (checked by :class:`FieldSpec`); the
    disc is clipped to the field.

    Examples
    --------
    >>> LesionPlacement(2, 20.0, 20.0, 3.0, cells=5e4).radius_mm
    3.0
    """

    slot: StrictInt
    x_mm: StrictFloat
    y_mm: StrictFloat
    radius_mm: StrictFloat
    cells: StrictFloat | None = None

    _RANGES = {
        "slot": (lambda v: v in range(1, N_SLOTS + 1), f"a lesion slot 1..{N_SLOTS}"),
        "radius_mm": (lambda v: v > 0, "a radius in mm > 0"),
        "cells": (lambda v: v is None or v >= 0, "None or a number of cells >= 0"),
    }


class FieldSpec(_SpatialInput):
    """What field to simulate; validated on construction (``InputError`` names the field).

    Parameters
    ----------
    scenario : str or Scenario
        Preset name, TOML path or Scenario (indication, product, regimen, area).
    resolution_mm : float
        Grid spacing; the square field of the scenario's area gets
        ``round(side / resolution_mm)`` sites per side (at most 250,000 sites).
    seed : int
        Seeds the lesion positions (and the virtual patient, if ``patient`` is set).
    followup_days : float
        Days simulated after the assessment visit (recurrence follow-up).
    days : float, optional
        Total horizon in days; overrides assessment + follow-up.
    patient : int, optional
        Virtual patient index (``imiqsim.population.sample_patient``) for
        parameters and lesion sizes; default: the scenario's typical patient.
    lesions : tuple of LesionPlacement, optional
        Explicit lesions (other slots empty); default: the scenario's slots placed at random.
    diffusion : mapping
        Coefficient overrides in um2/min by group or state name (see ``DIFFUSION_TABLE``).
    diffusion_enabled : bool
        False switches all lateral transport off.
    application : {"field", "lesions"}
        Cream on the whole field or only on the visible lesions plus ``application_margin_mm``.
    extra_events : tuple of SiteEvent
        Further per-mask events (the extension point for other treatments).
    parameters, knockouts
        Model parameter overrides and mechanism knockouts (on top of the scenario's).
    coupling_step_h, quiet_coupling_step_h, quiet_after_h
        Splitting step during treatment, and the longer one used ``quiet_after_h``
        after the last event.
    output_every_hours, map_every_days
        Spacing of the stored time courses and of the stored maps.
    rtol, atol_factor
        Integrator tolerances (as ``run_batch``).
    group_tol : float or None
        Site grouping tolerance in units of the integrator's error tolerance
        ``atol_i + rtol * max|y_i|`` (1: differences the integrator does not
        resolve; 0: group bit-identical sites only; None: integrate every site).
    shared_states : tuple of str
        Local states treated as well mixed over the field, like the systemic
        pools. Default ``("apoptotic_cells",)``: every dendritic cell of the
        field samples antigen from every dying lesion cell, the assumption
        under which the single-site model was calibrated. ``()`` makes antigen
        sampling local (DCs only load antigen where lesion cells die; T-cell
        priming then saturates with lesion size and falls well below the
        calibrated single-site response).
    """

    scenario: Any = "ak-5pct"
    resolution_mm: StrictFloat = 1.0
    seed: StrictInt = 0
    followup_days: StrictFloat = 365.0
    days: StrictFloat | None = None
    patient: StrictInt | None = None
    lesions: tuple[LesionPlacement, ...] | None = None
    diffusion: dict[str, StrictFloat] = Field(default_factory=dict)
    diffusion_enabled: StrictBool = True
    application: Literal["field", "lesions"] = "field"
    application_margin_mm: StrictFloat = 5.0
    extra_events: tuple[SiteEvent, ...] = ()
    parameters: dict[str, StrictFloat] = Field(default_factory=dict)
    knockouts: tuple[str, ...] = ()
    coupling_step_h: StrictFloat = 1.0
    quiet_coupling_step_h: StrictFloat = 24.0
    quiet_after_h: StrictFloat = 168.0
    output_every_hours: StrictFloat = 24.0
    map_every_days: StrictFloat = 7.0
    rtol: StrictFloat = 1e-6
    atol_factor: StrictFloat = 1e-8
    group_tol: StrictFloat | None = 1.0
    shared_states: tuple[str, ...] = ("apoptotic_cells",)

    _scenario: Any = PrivateAttr(default=None)
    _RANGES = {
        "resolution_mm": (lambda v: v > 0, "a grid spacing in mm > 0"),
        "seed": (lambda v: v >= 0, "an integer >= 0"),
        "followup_days": (lambda v: 0 <= v <= 3650, "a number of days in [0, 3650]"),
        "days": (lambda v: v is None or 0 < v <= 3650, "None or a number of days in (0, 3650]"),
        "patient": (
            lambda v: v is None or v >= 0,
            "None (typical patient) or a patient index >= 0",
        ),
        "application_margin_mm": (lambda v: v >= 0, "a distance in mm >= 0"),
        "coupling_step_h": (lambda v: v > 0, "a finite number > 0"),
        "quiet_coupling_step_h": (lambda v: v > 0, "a finite number > 0"),
        "quiet_after_h": (lambda v: v >= 0, "a finite number >= 0"),
        "output_every_hours": (lambda v: v > 0, "a finite number > 0"),
        "map_every_days": (lambda v: v > 0, "a finite number > 0"),
        "rtol": (lambda v: 0 < v < 1, "a number in (0, 1)"),
        "atol_factor": (lambda v: v > 0, "a number > 0"),
        "group_tol": (
            lambda v: v is None or 0 <= v <= 1e6,
            "None (no grouping) or a number in [0, 1e6] (a multiple of the integrator tolerance)",
        ),
    }

    # a spec holds scenario objects, masks and mappings: specs compare by identity
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    # ------------------------------------------------------------------ one field at a time
    @field_validator("diffusion")
    @classmethod
    def _diffusion(cls, d: dict[str, float]) -> dict[str, float]:
        allowed = _diff.allowed_override_keys()
        for key, v in d.items():
            if key not in allowed:
                raise fail(f"a group or state with lateral transport: {allowed}", v, key)
            if v < 0:
                raise fail("a coefficient in um2/min >= 0", v, key)
        return d

    @field_validator("shared_states", mode="before")
    @classmethod
    def _shared_not_a_string(cls, v: Any) -> Any:
        if isinstance(v, str):
            raise fail("a tuple of state names, e.g. ('apoptotic_cells',)", v)
        return v

    @field_validator("shared_states")
    @classmethod
    def _shared_local_states(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from imiqsim.spatial.site_events import dose_states

        model = get_model()
        local = dose_states(model)
        for name in v:
            if name not in model.state_names or name in local:
                raise fail(f"names of local model states other than {', '.join(local)}", name)
        return v

    # ------------------------------------------------------------------ what needs the scenario
    @model_validator(mode="after")
    def _against_the_scenario(self) -> FieldSpec:
        from imiqsim.scenario import Scenario, resolve

        sc = self.scenario
        try:
            if isinstance(sc, str):
                sc = resolve(sc)
            elif not isinstance(sc, Scenario):
                raise InputError(
                    "scenario", self.scenario, "a preset name, a .toml path or an imiqsim.Scenario"
                )
            self._scenario = sc
            # parameter overrides and knockouts: checked by the model now, not at the first run
            sc.model_parameters(get_model(), dict(self.parameters), tuple(self.knockouts))
        except InputError as err:
            raise _from(err) from None

        r, side = self.resolution_mm, self.side_mm
        if r > side:
            raise fail(
                f"at most the field side ({side:.4g} mm for {sc.area_cm2:g} cm2)",
                r,
                "resolution_mm",
            )
        n = self.n_per_side
        if n * n > MAX_SITES:
            finest = side / math.floor(math.sqrt(MAX_SITES))
            raise fail(
                f"too fine: {n * n:,} sites; at most {MAX_SITES:,} sites (>= {finest:.3g} mm for "
                f"this {sc.area_cm2:g} cm2 field)",
                r,
                "resolution_mm",
            )
        seen: set[int] = set()
        for i, les in enumerate(self.lesions or ()):
            if les.slot in seen:
                raise fail("each slot may be placed once", les.slot, f"lesions[{i}].slot")
            seen.add(les.slot)
            for coord in ("x_mm", "y_mm"):
                v = getattr(les, coord)
                if not (0.0 <= v <= side):
                    raise fail(
                        f"a lesion centre inside the field: 0..{side:.4g} mm (square field of "
                        f"{sc.area_cm2:g} cm2)",
                        v,
                        f"lesions[{i}].{coord}",
                    )
        from imiqsim.spatial.site_events import handled_kinds

        kinds = handled_kinds(get_model())
        for i, ev in enumerate(self.extra_events):
            if ev.kind not in kinds:
                raise fail(
                    "CHECK, a kind the model declares (APPLY, WASH, FREEZE, ...) or a kind "
                    "with a registered field handler",
                    ev.kind,
                    f"extra_events[{i}].kind",
                )
            if not isinstance(ev.mask, (str, tuple)):
                a = np.asarray(ev.mask)
                if a.shape != (n, n):
                    raise fail(
                        f"a boolean array of shape ({n}, {n})",
                        f"array {a.shape} {a.dtype}",
                        f"extra_events[{i}].mask",
                    )
        return self

    # ------------------------------------------------------------------ derived
    @property
    def scenario_obj(self) -> Any:
        """The resolved, validated :class:`~imiqsim.scenario.Scenario`."""
        return self._scenario

    @property
    def side_mm(self) -> float:
        """Side of the square field in mm."""
        return math.sqrt(float(self.scenario_obj.area_cm2)) * 10.0

    @property
    def n_per_side(self) -> int:
        """Grid sites per side."""
        return max(1, round(self.side_mm / float(self.resolution_mm)))

    @property
    def n_sites(self) -> int:
        """Grid sites in all."""
        return self.n_per_side**2
