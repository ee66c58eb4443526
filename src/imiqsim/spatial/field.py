"""The treated area as a 2-D grid of sites, each running the compiled single-site mechanism.

Research and teaching software, not a medical device.

How a site relates to the single-site model
-------------------------------------------
Every site is advanced by the *same* compiled right-hand side as one patient
(:mod:`imiqsim.engine.codegen`), with the engine's Dormand-Prince 5(4) tableau
and step-size controller; nothing of the mechanism is re-implemented here. A
site's state vector is kept in *whole-field equivalents*: each site runs the
model with ``treated_area_cm2`` equal to the whole field's area and holds the
amounts (mg of drug, lesion cells) that the whole field would hold if all of
it were like this site. Densities and concentrations (cytokines in pg/mL,
cells/mm2, LSR processes) are then simply the site's own, and

* the field total of an amount is the mean over sites (equal site areas);
* a systemic pool (states with ``State.systemic``: blood, urine, metabolised,
  serum cytokines, lymph-node DCs, circulating T cells) is one value shared by
  every site; its derivative is the area-weighted mean of the derivatives the
  sites compute with the shared value in their state vector, at every
  Runge-Kutta stage (all sites are integrated as one coupled system). Fluxes
  that scale with the treated area (dermal uptake of drug, cytokine
  spill-over) therefore add up over sites, whole-body terms (elimination,
  baseline production) count once, and per-mm2 quantities (lymph-node DCs per
  mm2 of treated skin) are averaged, which is what the single-site model
  means by them. (Giving every site its own small area and *summing* site
  derivatives, the obvious alternative, would count whole-body terms such as
  renal elimination once per site.)
* ``shared_states`` (default ``apoptotic_cells``) are local states treated
  the same way, as well mixed over the field: see "Antigen sampling".

With one lesion covering the whole field and diffusion off, every site equals
the single-site patient and the field reproduces ``run_batch`` up to the
integrator tolerance (tested).

Lesions
-------
Each of the model's lesion slots (``lesion_1..``) that holds cells or can be
seeded becomes a disc-shaped patch of sites (seeded position; radius from its
cell count at ``LESION_CELLS_PER_MM2``, or given). A site belongs to at most
one patch. Inside patch k the slot's initial cells are spread evenly over its
``m_k`` sites; in whole-field equivalents each site then holds
``cells * N / m_k``. The per-lesion count parameters (``lesion_capacity_cells``,
``visible_threshold_cells``, ``histology_threshold_cells``) and the slot's
seeding rate are scaled by the same ``N / m_k`` so that a lesion saturates,
turns visible, escapes memory surveillance, is frozen (cryotherapy acts on
visible lesions) and is seeded exactly as the same lesion in the single-site
model. Outside every patch the slots are empty and seed nothing, but the
sites still run the whole bystander response (TLR7, cytokines, immune cells,
LSR, pigment). Clinical visibility and clearance are judged per lesion from
its total cells, not per site.

Antigen sampling
----------------
Dendritic cells load lesion antigen in proportion to ``hill(apoptotic_cells,
antigen_half_cells)``. The single-site model (and its calibration) assumes the
dying cells of all lesions are sampled by the DCs of the whole treated area.
By default the field keeps that assumption (``apoptotic_cells`` is shared).
With ``shared_states=()`` antigen is sampled only where lesion cells die; DC
loading then saturates inside small lesion patches and T-cell priming falls
far below the calibrated response (for the typical AK patient the visible
lesions are no longer cleared): a spatial effect that would need its own
calibration before use.

Numerics
--------
Operator splitting with Strang order per coupling step ``dt``: half a step of
lateral diffusion (:mod:`imiqsim.spatial.diffusion`), the reaction step (all
sites' local states and the shared pools integrated from t to t+dt as one
coupled system, one adaptive step size, a Numba ``prange`` over sites when
there are many distinct ones), half a step of diffusion. Coupling steps end
exactly at dose events, outputs and map times. While a lateral gradient
exists (a diffusing state differs between sites by more than the grouping
tolerance) they are ``coupling_step_h`` long, ``quiet_coupling_step_h`` once
``quiet_after_h`` has passed since the last event; without any gradient the
splitting is exact and they run up to ``quiet_coupling_step_h``.

Site grouping (the speed trick, ``group_tol``): sites whose states agree are
integrated once. Sites with bit-identical states share a group exactly. With
``group_tol > 0`` a site stays in (or is merged into) a group while its state
differs from the group leader's by at most ``group_tol * (atol_i + rtol *
max|y_i|)`` in every component, i.e. by less than the integrator resolves at
the default ``group_tol=1``; it then takes the leader's increment and carries
its small offset along. A field whose skin away from the lesions is alike is
one group plus one per lesion, so a 40,000-site field costs little more than
its lesions; lateral gradients (lesion-directed application, cryotherapy)
make more groups. ``group_tol=None`` integrates every site (reference mode).

Site events (extension point)
-----------------------------
Dose events act on a *mask* of sites. APPLY (cream at the same mg/cm2 on the
masked sites), WASH and CHECK are built in. Any other kind is handed to a
handler registered with :func:`register_site_event`, which may change the
site states in place. ``imiqsim.regimen.FREEZE`` has a default handler that
applies the model's own freeze assignments (model/cryo.py) to the masked
sites; no cryotherapy biology is written here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from imiqsim import __version__
from imiqsim.errors import ImiqsimError, InputError
from imiqsim.model import Model, get_model
from imiqsim.model.lesions import N_SLOTS, slot_names
from imiqsim.regimen import APPLY, CHECK, FREEZE, GATE_NOT_CLEAR_AT_CHECK, GATE_UNTIL_CLEAR, WASH
from imiqsim.spatial import diffusion as _diff
from imiqsim.spatial._kernels import field_kernels

__all__ = [
    "FieldLayout",
    "FieldResult",
    "FieldSpec",
    "FieldState",
    "LesionPlacement",
    "PlacedLesion",
    "SiteEvent",
    "build_layout",
    "register_site_event",
    "simulate_field",
]

DISCLAIMER = (
    "imiqsim is research and teaching software, not a medical device: "
    "its outputs are model predictions, not treatment advice for any patient."
)

#: most grid sites accepted (250,000 = 500 x 500)
MAX_SITES = 250_000
#: assumed packing of dysplastic cells in a lesion: visible_threshold_cells (5000 cells for AK) is
#: "clinically visible above ~1 mm2" (indications.csv), i.e. ~5000 cells per mm2 of lesion
LESION_CELLS_PER_MM2 = 5000.0
#: per-lesion count parameters scaled by N/m_k inside a lesion patch (see module docstring)
PER_LESION_COUNT_PARAMETERS = (
    "lesion_capacity_cells",
    "visible_threshold_cells",
    "histology_threshold_cells",
)
#: states written by the built-in dose events per site mask (cannot be shared over the field)
EVENT_STATES = ("film", "applied", "washed_off")
#: running maxima kept per site (sampled at every accepted integrator step, like run_batch's peaks)
TRACKED = ("lsr_score", "erythema_score", "skin_conc_ug_ml", "pigment_loss")
#: observables whose field mean and max are stored over time
FIELD_OBSERVABLES = ("lsr_score", "erythema_score", "skin_conc_ug_ml")
#: systemic observables stored over time (functions of the shared pools only)
SYSTEMIC_OBSERVABLES = ("serum_conc_ng_ml", "systemic_cytokine_index", "flu_like_probability")
#: immune infiltrate shown on the maps
INFILTRATE_STATES = ("cd8_ctl", "nk_cells", "macrophage")
MASK_NAMES = ("field", "lesions", "visible_lesions")
#: integrate the group leaders in parallel (Numba threads) only when there are at least this many
PARALLEL_MIN_LEADERS = 512
#: integrator limits (as run_batch: h_max 12 h)
H_MAX = 12.0
MAX_STEPS_PER_COUPLING = 1_000_000


class FieldSimulationFailed(ImiqsimError):
    """A grid site could not be integrated (status code other than ok)."""


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class LesionPlacement:
    """An explicitly placed lesion: slot ``1..N_SLOTS``, centre and radius in mm (origin at a corner).

    ``cells`` defaults to the slot's ``lesion_initial_cells_k`` of the scenario.
    The centre must lie inside the field; the disc is clipped to the field.
    """

    slot: int
    x_mm: float
    y_mm: float
    radius_mm: float
    cells: float | None = None


@dataclass(frozen=True, eq=False)
class SiteEvent:
    """A timed event acting on a mask of sites (the generic per-site hook).

    ``mask``: ``"field"``, ``"lesions"`` (all lesion patches), ``"visible_lesions"``
    (patches of lesions visible at baseline plus ``application_margin_mm``), a
    tuple of slot numbers, or a boolean array of shape (ny, nx). ``amount_mg``
    for APPLY is the whole-field dose: masked sites receive the same mg/cm2 as
    in a whole-field application.
    """

    time_h: float
    kind: int
    amount_mg: float = 0.0
    mask: Any = "field"
    gate: int = 0


@dataclass(frozen=True, eq=False)
class FieldSpec:
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
        Splitting step during treatment, and the longer one used ``quiet_after_h`` after the last event.
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
    resolution_mm: float = 1.0
    seed: int = 0
    followup_days: float = 365.0
    days: float | None = None
    patient: int | None = None
    lesions: tuple[LesionPlacement, ...] | None = None
    diffusion: Mapping[str, float] = field(default_factory=dict)
    diffusion_enabled: bool = True
    application: str = "field"
    application_margin_mm: float = 5.0
    extra_events: tuple[SiteEvent, ...] = ()
    parameters: Mapping[str, float] = field(default_factory=dict)
    knockouts: tuple[str, ...] = ()
    coupling_step_h: float = 1.0
    quiet_coupling_step_h: float = 24.0
    quiet_after_h: float = 168.0
    output_every_hours: float = 24.0
    map_every_days: float = 7.0
    rtol: float = 1e-6
    atol_factor: float = 1e-8
    group_tol: float | None = 1.0
    shared_states: tuple[str, ...] = ("apoptotic_cells",)

    def __post_init__(self) -> None:
        from imiqsim.scenario import Scenario, resolve

        sc = self.scenario
        if isinstance(sc, str):
            sc = resolve(sc)
        elif not isinstance(sc, Scenario):
            raise InputError(
                "scenario", self.scenario, "a preset name, a .toml path or an imiqsim.Scenario"
            )
        object.__setattr__(self, "_scenario", sc)

        r = self.resolution_mm
        if isinstance(r, bool) or not _finite(r) or float(r) <= 0:
            raise InputError("resolution_mm", r, "a grid spacing in mm > 0")
        side = self.side_mm
        if float(r) > side:
            raise InputError(
                "resolution_mm",
                r,
                f"at most the field side ({side:.4g} mm for {sc.area_cm2:g} cm2)",
            )
        n = self.n_per_side
        if n * n > MAX_SITES:
            finest = side / math.floor(math.sqrt(MAX_SITES))
            raise InputError(
                "resolution_mm",
                r,
                f"too fine: {n * n:,} sites; at most {MAX_SITES:,} sites (>= {finest:.3g} mm for this "
                f"{sc.area_cm2:g} cm2 field)",
            )
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, (int, np.integer))
            or self.seed < 0
        ):
            raise InputError("seed", self.seed, "an integer >= 0")
        if self.patient is not None and (
            isinstance(self.patient, bool)
            or not isinstance(self.patient, (int, np.integer))
            or self.patient < 0
        ):
            raise InputError(
                "patient", self.patient, "None (typical patient) or a patient index >= 0"
            )
        fu = self.followup_days
        if isinstance(fu, bool) or not _finite(fu) or not (0 <= float(fu) <= 3650):
            raise InputError("followup_days", fu, "a number of days in [0, 3650]")
        if self.days is not None and (not _finite(self.days) or not (0 < float(self.days) <= 3650)):
            raise InputError("days", self.days, "None or a number of days in (0, 3650]")
        for name, lo_open in (
            ("coupling_step_h", True),
            ("quiet_coupling_step_h", True),
            ("output_every_hours", True),
            ("map_every_days", True),
            ("quiet_after_h", False),
        ):
            v = getattr(self, name)
            if not _finite(v) or (float(v) <= 0 if lo_open else float(v) < 0):
                raise InputError(name, v, "a finite number " + ("> 0" if lo_open else ">= 0"))
        if not _finite(self.rtol) or not (0 < float(self.rtol) < 1):
            raise InputError("rtol", self.rtol, "a number in (0, 1)")
        if not _finite(self.atol_factor) or float(self.atol_factor) <= 0:
            raise InputError("atol_factor", self.atol_factor, "a number > 0")
        gt = self.group_tol
        if gt is not None and (
            isinstance(gt, bool) or not _finite(gt) or not (0 <= float(gt) <= 1e6)
        ):
            raise InputError(
                "group_tol",
                gt,
                "None (no grouping) or a number in [0, 1e6] (a multiple of the "
                "integrator tolerance)",
            )
        # parameter overrides and knockouts: checked by the model now, not at the first simulation
        from imiqsim.simulation import parameters_for

        parameters_for(get_model(), sc, dict(self.parameters), tuple(self.knockouts))
        if isinstance(self.shared_states, str):
            raise InputError(
                "shared_states",
                self.shared_states,
                "a tuple of state names, e.g. ('apoptotic_cells',)",
            )
        names = get_model().state_names
        for name in self.shared_states:
            if name not in names or name in EVENT_STATES:
                raise InputError(
                    "shared_states",
                    name,
                    f"names of local model states other than {', '.join(EVENT_STATES)}",
                )
        if self.application not in ("field", "lesions"):
            raise InputError("application", self.application, "'field' or 'lesions'")
        if not _finite(self.application_margin_mm) or float(self.application_margin_mm) < 0:
            raise InputError(
                "application_margin_mm", self.application_margin_mm, "a distance in mm >= 0"
            )
        allowed = _diff.allowed_override_keys()
        for key, v in dict(self.diffusion).items():
            if key not in allowed:
                raise InputError(
                    f"diffusion.{key}", v, f"a group or state with lateral transport: {allowed}"
                )
            if isinstance(v, bool) or not _finite(v) or float(v) < 0:
                raise InputError(f"diffusion.{key}", v, "a coefficient in um2/min >= 0")
        if self.lesions is not None:
            seen: set[int] = set()
            for i, les in enumerate(self.lesions):
                if not isinstance(les, LesionPlacement):
                    raise InputError(
                        f"lesions[{i}]",
                        les,
                        "a LesionPlacement(slot, x_mm, y_mm, radius_mm, cells)",
                    )
                if isinstance(les.slot, bool) or les.slot not in range(1, N_SLOTS + 1):
                    raise InputError(f"lesions[{i}].slot", les.slot, f"a lesion slot 1..{N_SLOTS}")
                if les.slot in seen:
                    raise InputError(f"lesions[{i}].slot", les.slot, "each slot may be placed once")
                seen.add(les.slot)
                for coord in ("x_mm", "y_mm"):
                    v = getattr(les, coord)
                    if not _finite(v) or not (0.0 <= float(v) <= side):
                        raise InputError(
                            f"lesions[{i}].{coord}",
                            v,
                            f"a lesion centre inside the field: 0..{side:.4g} mm (square field of {sc.area_cm2:g} cm2)",
                        )
                if not _finite(les.radius_mm) or float(les.radius_mm) <= 0:
                    raise InputError(f"lesions[{i}].radius_mm", les.radius_mm, "a radius in mm > 0")
                if les.cells is not None and (not _finite(les.cells) or float(les.cells) < 0):
                    raise InputError(
                        f"lesions[{i}].cells", les.cells, "None or a number of cells >= 0"
                    )
        for i, ev in enumerate(self.extra_events):
            if not isinstance(ev, SiteEvent):
                raise InputError(f"extra_events[{i}]", ev, "a SiteEvent")
            if ev.kind not in (APPLY, WASH, CHECK) and ev.kind not in _HANDLERS:
                raise InputError(
                    f"extra_events[{i}].kind",
                    ev.kind,
                    "APPLY, WASH, CHECK, FREEZE or a registered kind",
                )
            if not _finite(ev.time_h) or ev.time_h < 0:
                raise InputError(f"extra_events[{i}].time_h", ev.time_h, "a time in hours >= 0")
            if not _finite(ev.amount_mg) or ev.amount_mg < 0:
                raise InputError(
                    f"extra_events[{i}].amount_mg", ev.amount_mg, "an amount in mg >= 0"
                )
            m = ev.mask
            if isinstance(m, str):
                if m not in MASK_NAMES:
                    raise InputError(
                        f"extra_events[{i}].mask",
                        m,
                        f"one of {MASK_NAMES}, slot numbers or a bool array",
                    )
            elif isinstance(m, tuple):
                if not all(isinstance(k, (int, np.integer)) and 1 <= k <= N_SLOTS for k in m):
                    raise InputError(f"extra_events[{i}].mask", m, f"slot numbers 1..{N_SLOTS}")
            else:
                a = np.asarray(m)
                if a.dtype != bool or a.shape != (n, n):
                    raise InputError(
                        f"extra_events[{i}].mask",
                        f"array {a.shape} {a.dtype}",
                        f"a boolean array of shape ({n}, {n})",
                    )

    # ------------------------------------------------------------------ derived
    @property
    def scenario_obj(self):
        """The resolved, validated :class:`~imiqsim.scenario.Scenario`."""
        return self._scenario  # type: ignore[attr-defined]

    @property
    def side_mm(self) -> float:
        return math.sqrt(float(self.scenario_obj.area_cm2)) * 10.0

    @property
    def n_per_side(self) -> int:
        return max(1, round(self.side_mm / float(self.resolution_mm)))

    @property
    def n_sites(self) -> int:
        return self.n_per_side**2


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True, eq=False)
class PlacedLesion:
    """A lesion patch on the grid (cells: the lesion's total at baseline)."""

    slot: int
    x_mm: float
    y_mm: float
    radius_mm: float
    cells: float
    seed_rate: float
    sites: np.ndarray  # flat site indices (row-major, y then x)

    @property
    def n_sites(self) -> int:
        return int(self.sites.size)


@dataclass(frozen=True, eq=False)
class FieldLayout:
    """The grid and what lies on it.

    ``site_class`` maps each site to a row of ``class_parameters`` (row 0:
    lesion-free skin; row j: the patch of ``lesions[j-1]``).
    ``single_site_parameters`` is the one-patient parameter vector the field
    corresponds to (area = field area; slots not on the grid empty).
    """

    ny: int
    nx: int
    dx_mm: float
    side_mm: float
    area_cm2: float
    lesions: tuple[PlacedLesion, ...]
    site_class: np.ndarray
    class_parameters: np.ndarray
    single_site_parameters: np.ndarray
    visible_threshold_cells: float
    histology_threshold_cells: float

    @property
    def n_sites(self) -> int:
        return self.ny * self.nx

    @property
    def site_area_mm2(self) -> float:
        return self.dx_mm * self.dx_mm

    def coords_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Site-centre coordinates (y, x) in mm."""
        return (np.arange(self.ny) + 0.5) * self.dx_mm, (np.arange(self.nx) + 0.5) * self.dx_mm


def _patient_parameters(spec: FieldSpec, model: Model) -> np.ndarray:
    from imiqsim.simulation import parameters_for

    sc = spec.scenario_obj
    p = parameters_for(model, sc, dict(spec.parameters), tuple(spec.knockouts))
    if spec.patient is not None:
        from imiqsim.population import sample_patient

        p, _ = sample_patient(model, p, sc.indication, int(spec.seed), int(spec.patient))
    return p


def _radius_for(cells: float, visible: float) -> float:
    return math.sqrt(max(cells, visible) / (math.pi * LESION_CELLS_PER_MM2))


def build_layout(spec: FieldSpec, model: Model | None = None) -> FieldLayout:
    """Place the lesions on the grid and build the per-site parameter classes."""
    model = model or get_model()
    pidx = model.parameter_index
    base = _patient_parameters(spec, model)
    n = spec.n_per_side
    side = spec.side_mm
    dx = side / n
    N = n * n
    vis_thr = float(base[pidx("visible_threshold_cells")])
    hist_thr = float(base[pidx("histology_threshold_cells")])

    # ---- which slots, where
    wanted: list[tuple[int, float, float, float, float, float]] = []  # slot, x, y, r, cells, seed
    if spec.lesions is not None:
        for les in spec.lesions:
            k = les.slot
            cells = (
                float(base[pidx(f"lesion_initial_cells_{k}")])
                if les.cells is None
                else float(les.cells)
            )
            seed_rate = float(base[pidx(f"lesion_seed_rate_{k}")])
            wanted.append(
                (k, float(les.x_mm), float(les.y_mm), float(les.radius_mm), cells, seed_rate)
            )
    else:
        rng = np.random.default_rng([int(spec.seed), 0xF1E1D, int(spec.patient or 0)])
        todo = []
        for k in range(1, N_SLOTS + 1):
            cells = float(base[pidx(f"lesion_initial_cells_{k}")])
            seed_rate = float(base[pidx(f"lesion_seed_rate_{k}")])
            if cells > 0 or seed_rate > 0:
                todo.append((k, _radius_for(cells, vis_thr), cells, seed_rate))
        if len(todo) > N:
            raise InputError(
                "resolution_mm",
                spec.resolution_mm,
                f"too coarse: {N} sites for {len(todo)} lesions; use a finer grid",
            )
        placed: list[tuple[float, float, float]] = []
        centre_sites: set[int] = set()

        def site_of(x: float, y: float) -> int:
            return min(int(y // dx), n - 1) * n + min(int(x // dx), n - 1)

        for k, r, cells, seed_rate in sorted(todo, key=lambda z: -z[1]):
            r = min(r, side / 2)
            x = y = side / 2
            for attempt in range(4000):
                x, y = rng.uniform(r, side - r, 2)
                if site_of(x, y) in centre_sites:  # every lesion keeps a site of its own
                    continue
                gap = 1.0 if attempt < 2000 else 0.0  # relax: touching allowed, then overlap
                if attempt >= 3000 or all(
                    math.hypot(x - a, y - b) >= r + q + gap for a, b, q in placed
                ):
                    break
            else:  # a grid so coarse that random centres keep colliding: take a free site
                free = sorted(set(range(N)) - centre_sites)
                c = free[int(rng.integers(len(free)))]
                x, y = (c % n + 0.5) * dx, (c // n + 0.5) * dx
            centre_sites.add(site_of(x, y))
            placed.append((x, y, r))
            wanted.append((k, float(x), float(y), float(r), cells, seed_rate))
        wanted.sort()

    # ---- sites of each patch: within the radius; overlaps go to the relatively nearest centre
    yc, xc = (np.arange(n) + 0.5) * dx, (np.arange(n) + 0.5) * dx
    YY, XX = np.meshgrid(yc, xc, indexing="ij")
    owner = np.full(N, -1, dtype=np.int64)
    best = np.full(N, np.inf)
    for j, (_, x, y, r, _, _) in enumerate(wanted):
        rel = (np.hypot(XX - x, YY - y) / r).ravel()
        take = (rel <= 1.0) & (rel < best)
        owner[take] = j
        best[take] = rel[take]
    for j, (k, x, y, r, _, _) in enumerate(wanted):
        if not np.any(
            owner == j
        ):  # a patch smaller than a site: it gets the site holding its centre
            s = min(int(y // dx), n - 1) * n + min(int(x // dx), n - 1)
            other = owner[s]
            if other >= 0 and np.count_nonzero(owner == other) <= 1:
                raise InputError(
                    f"lesions[{j}]",
                    (k, x, y, r),
                    f"shares its only grid site with lesion slot {wanted[other][0]} at this "
                    "resolution; move it or use a finer grid",
                )
            owner[s] = j

    # ---- parameter classes
    bg = base.copy()
    for k in range(1, N_SLOTS + 1):
        bg[pidx(f"lesion_initial_cells_{k}")] = 0.0
        bg[pidx(f"lesion_seed_rate_{k}")] = 0.0
    single = bg.copy()
    classes = [bg]
    lesions = []
    for j, (k, x, y, r, cells, seed_rate) in enumerate(wanted):
        sites = np.flatnonzero(owner == j)
        f = N / sites.size
        p = bg.copy()
        p[pidx(f"lesion_initial_cells_{k}")] = cells * f
        p[pidx(f"lesion_seed_rate_{k}")] = seed_rate * f
        for name in PER_LESION_COUNT_PARAMETERS:
            p[pidx(name)] *= f
        classes.append(p)
        single[pidx(f"lesion_initial_cells_{k}")] = cells
        single[pidx(f"lesion_seed_rate_{k}")] = seed_rate
        lesions.append(PlacedLesion(k, x, y, r, cells, seed_rate, sites))
    site_class = np.zeros(N, dtype=np.int64)
    for j in range(len(wanted)):
        site_class[owner == j] = j + 1
    return FieldLayout(
        n,
        n,
        dx,
        side,
        float(spec.scenario_obj.area_cm2),
        tuple(lesions),
        site_class,
        np.ascontiguousarray(np.array(classes)),
        single,
        vis_thr,
        hist_thr,
    )


# --------------------------------------------------------------------------- site-event hook


@dataclass
class FieldState:
    """What a site-event handler sees and may change in place (``Y``: sites x states)."""

    model: Model
    layout: FieldLayout
    Y: np.ndarray
    t_h: float
    kernels: Any = None

    def column(self, state: str) -> np.ndarray:
        """View of one state over all sites (whole-field equivalents, see the module docstring)."""
        return self.Y[:, self.model.state_index(state)]


SiteEventHandler = Callable[[FieldState, SiteEvent, np.ndarray], None]
_HANDLERS: dict[int, SiteEventHandler] = {}


def _model_freeze(state: FieldState, event: SiteEvent, mask: np.ndarray) -> None:
    """Default FREEZE handler: the model's own ``freeze_event`` (model/cryo.py) on every masked site.

    ``event.amount_mg`` carries the freeze time in seconds (as in the engine).
    The model freezes only where a lesion is visible; with the per-lesion
    threshold scaling of the field (module docstring) a site's
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


def register_site_event(kind: int, handler: SiteEventHandler) -> None:
    """Register ``handler(state, event, mask)`` for an event kind the engine does not know.

    ``imiqsim.regimen.FREEZE`` is handled by default with the model's own
    freeze assignments (model/cryo.py) on the masked sites; a handler
    registered here replaces that (e.g. a freeze with a spatial rim). APPLY,
    WASH and CHECK are built in and cannot be replaced.
    """
    if kind in (APPLY, WASH, CHECK):
        raise InputError("kind", kind, "a kind other than the built-in APPLY, WASH and CHECK")
    _HANDLERS[int(kind)] = handler


_HANDLERS[FREEZE] = _model_freeze


# --------------------------------------------------------------------------- result


@dataclass
class FieldResult:
    """Maps, time courses and the lesion table of one simulated field.

    Attributes
    ----------
    maps : xarray.Dataset
        Dims ``time`` (days), ``y``, ``x`` (mm): ``lesion_cells`` (all slots,
        cells/mm2), ``erythema_score``, ``lsr_score``, ``immune_infiltrate``
        (cd8_ctl + nk_cells + macrophage, cells/mm2), ``skin_conc_ug_ml``; and
        per site (``y``, ``x``): ``pigment_change_index`` (ASSUMED proxy),
        ``cumulative_erosion_score_days``, ``peak_lsr_score``, ``lesion_slot``.
    timecourses : xarray.Dataset
        Dim ``time`` (days): the systemic pools and systemic observables,
        field totals and means; ``lesion_cells`` per lesion (dims time, lesion).
    lesions : pandas.DataFrame
        One row per lesion: id (slot), centre, radius, sites, baseline and
        assessment cells, visible at baseline, cleared at assessment,
        recurred or new in follow-up.
    key_times_days : dict
        baseline, mid_treatment, end_of_treatment, assessment, end_of_followup.
    info : dict
        Grid, timing and numerics diagnostics (wall time, groups per step...).
    """

    spec: FieldSpec
    layout: FieldLayout
    maps: xr.Dataset
    timecourses: xr.Dataset
    lesions: pd.DataFrame
    key_times_days: dict
    info: dict

    @property
    def pigment(self) -> xr.DataArray:
        """Pigment-change map (highest melanocyte loss per site; an ASSUMED proxy of hypopigmentation risk)."""
        return self.maps["pigment_change"]


# --------------------------------------------------------------------------- engine


def _build_masks(spec: FieldSpec, layout: FieldLayout) -> dict[Any, np.ndarray]:
    N = layout.n_sites
    masks: dict[Any, np.ndarray] = {"field": np.ones(N, dtype=bool)}
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


def _mask_for(ev_mask: Any, masks: dict[Any, np.ndarray], layout: FieldLayout) -> np.ndarray:
    if isinstance(ev_mask, str):
        return masks[ev_mask]
    if isinstance(ev_mask, tuple):
        m = np.zeros(layout.n_sites, dtype=bool)
        for L in layout.lesions:
            if L.slot in ev_mask:
                m[L.sites] = True
        return m
    return np.asarray(ev_mask, dtype=bool).ravel()


def _event_list(spec: FieldSpec, masks) -> list[SiteEvent]:
    ev = spec.scenario_obj.events()
    apply_mask = "field" if spec.application == "field" else "visible_lesions"
    out = []
    for t, kind, amt, gate in zip(ev.times_h, ev.kinds, ev.amounts_mg, ev.gates):
        out.append(
            SiteEvent(
                float(t), int(kind), float(amt), apply_mask if kind == APPLY else "field", int(gate)
            )
        )
    out += list(spec.extra_events)
    out.sort(key=lambda e: (e.time_h, e.kind))  # stable: ties keep APPLY < WASH < CHECK < FREEZE
    return out


def _key_times(spec: FieldSpec, t_end: float) -> dict[str, float]:
    sc = spec.scenario_obj
    ev = sc.events()
    last_apply = ev.last_application_h()
    washes = ev.times_of(WASH)
    out = {"baseline": 0.0}
    # end of treatment: 1 h after the last wash-off (or freeze), so the map shows the state after it
    if math.isfinite(last_apply):
        out["mid_treatment"] = round(last_apply / 2.0)
        out["end_of_treatment"] = (float(washes.max()) if washes.size else last_apply) + 1.0
    elif len(ev):  # e.g. cryotherapy: freeze sessions only
        out["mid_treatment"] = round(ev.end_h() / 2.0)
        out["end_of_treatment"] = ev.end_h() + 1.0
    out["assessment"] = sc.assessment_time_h()
    out["end_of_followup"] = t_end
    return {k: min(float(v), t_end) for k, v in out.items()}


def _time_grid(every: float, t_end: float, extra) -> np.ndarray:
    t = np.arange(0.0, t_end, every)
    return np.unique(np.concatenate([t, np.asarray(list(extra), dtype=float), [t_end]]))


class _Engine:
    """The splitting loop's state and one coupling step; one instance per simulation."""

    def __init__(self, spec: FieldSpec, model: Model, layout: FieldLayout):
        from imiqsim.engine.codegen import compiled

        self.spec, self.model, self.layout = spec, model, layout
        self.kern = field_kernels(model)
        self.gen = compiled(model)
        si = model.state_index
        self.N = layout.n_sites
        self.S = len(model.states)
        self.cls = np.ascontiguousarray(layout.site_class)
        self.PC = layout.class_parameters
        y0c = np.zeros((self.PC.shape[0], self.S))
        for c in range(self.PC.shape[0]):
            self.gen.initial(self.PC[c], y0c[c])
        self.Y = np.ascontiguousarray(y0c[self.cls])
        shared = set(spec.shared_states)
        self.sys_idx = np.array(
            [i for i, st in enumerate(model.states) if st.systemic or st.name in shared],
            dtype=np.int64,
        )
        self.g = self.Y[:, self.sys_idx].mean(axis=0)
        self.Y[:, self.sys_idx] = self.g
        self.atol = np.array([st.scale for st in model.states]) * float(spec.atol_factor)
        self.rtol = float(spec.rtol)
        self.h = 0.01  # shared step size of the lock-step integrator (reset at events, as run_batch does)
        self.all_cols = np.arange(self.S, dtype=np.int64)
        self.lesion_cols = np.array([si(n) for n in slot_names(N_SLOTS)], dtype=np.int64)
        self.i_film, self.i_applied, self.i_washed = si("film"), si("applied"), si("washed_off")
        self.oi = model.observable_index
        self.n_obs = len(model.observables)
        # lateral transport
        coef = _diff.coefficient_table(dict(spec.diffusion))
        cols, ds = [], []
        if spec.diffusion_enabled and self.N > 1:
            for name, um2 in coef.items():
                if name in model.state_names and um2 > 0 and si(name) not in self.sys_idx:
                    cols.append(si(name))
                    ds.append(um2 * _diff.UM2_PER_MIN_TO_MM2_PER_H)
        self.diff_cols = np.array(cols, dtype=np.int64)
        self.diff_D = np.array(ds, dtype=float)
        # grouping state
        self.arange = np.arange(self.N, dtype=np.int64)
        self.lead = self.arange.copy()  # site index of each site's group leader
        self.pos = np.zeros(self.N, dtype=np.int64)
        self.leader_of = np.empty(
            self.N, dtype=np.int64
        )  # position of the leader in the leader list
        self.equal = np.ones(self.N, dtype=np.bool_)
        # running maxima per site, sampled at every accepted integrator step (as run_batch's peaks)
        names = [n for n in TRACKED if n in model.state_names or n in model.observable_names]
        self.tracked = tuple(names)
        self.track_idx = np.array(
            [si(n) if n in model.state_names else self.S + self.oi(n) for n in names],
            dtype=np.int64,
        )
        obs0 = np.empty((self.PC.shape[0], self.n_obs))
        for c in range(self.PC.shape[0]):
            self.gen.observables(y0c[c], self.PC[c], obs0[c])
        full0 = np.concatenate([y0c, obs0], axis=1)
        self.peak = np.ascontiguousarray(full0[self.cls][:, self.track_idx])
        # scratch
        self._mn = np.empty(self.S)
        self._mx = np.empty(self.S)
        # diagnostics
        self.n_couplings = 0
        self.leaders_total = 0
        self.leaders_max = 0
        self.rx_steps = 0
        self.site_steps = 0
        self.diffused_columns = 0

    # ---------------------------------------------------------------- grouping
    def _stats(self) -> tuple[np.ndarray | None, np.ndarray]:
        """(grouping widths or None, spread of each diffusing column) from one pass over the states."""
        self.kern.column_stats(self.Y, self.all_cols, self._mn, self._mx)
        spread = (self._mx - self._mn)[self.diff_cols]
        tol = self.spec.group_tol
        if tol is None:
            return None, spread
        if tol == 0:
            return np.zeros(self.S), spread
        amax = np.maximum(np.abs(self._mn), np.abs(self._mx))
        return float(tol) * (self.atol + self.rtol * amax), spread

    def group(self, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(leaders, leader_of, equal) for the current states.

        Groups are sticky: a member stays with its leader while it is within
        tolerance (members take the leader's increments, so their offset only
        changes by diffusion and events); leaders that come within tolerance
        of each other are merged.
        """
        if w is None:
            self.leader_of[:] = self.arange
            self.equal[:] = True
            return self.arange, self.leader_of, self.equal
        self.kern.verify_members(self.Y, self.cls, w, self.lead, self.equal)
        if self.kern.merge_leaders(self.Y, self.Y.view(np.int64), self.cls, w, self.lead) > 0:
            self.kern.verify_members(self.Y, self.cls, w, self.lead, self.equal)
        leaders = np.flatnonzero(self.lead == self.arange)
        self.pos[leaders] = np.arange(leaders.size)
        np.take(self.pos, self.lead, out=self.leader_of)
        return leaders, self.leader_of, self.equal

    def site_observables(self, names) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per-site values of some observables (computed once per group) and the leaders' full vectors."""
        leaders, leader_of, _ = self.group(self._stats()[0])
        out = np.empty((leaders.size, self.n_obs))
        self.kern.leader_observables(self.Y, leaders, self.cls, self.PC, out)
        return {nm: out[leader_of, self.oi(nm)] for nm in names}, out

    # ---------------------------------------------------------------- one coupling step
    def has_gradient(self, w: np.ndarray | None, spread: np.ndarray) -> bool:
        """Is there any lateral gradient for diffusion to act on (beyond the grouping tolerance)?"""
        if spread.size == 0:
            return False
        if w is None or not np.any(w):
            return bool(np.any(spread > 0))
        return bool(np.any(spread > w[self.diff_cols]))

    def diffuse(self, dt: float, w: np.ndarray | None, spread: np.ndarray | None = None) -> None:
        if self.diff_cols.size == 0 or dt <= 0:
            return
        skip = None if (w is None or not np.any(w)) else w[self.diff_cols]
        self.diffused_columns += _diff.diffusion_step(
            self.Y,
            self.diff_cols,
            self.diff_D,
            dt,
            self.layout.ny,
            self.layout.nx,
            self.layout.dx_mm,
            skip,
            spread,
        )

    def couple(self, t0: float, t1: float, w: np.ndarray | None, spread: np.ndarray) -> None:
        """Strang step: diffusion dt/2, coupled reaction dt, diffusion dt/2 (w, spread: from ``_stats`` at t0)."""
        dt = t1 - t0
        self.diffuse(0.5 * dt, w, spread)
        leaders, leader_of, equal = self.group(w)
        nl = leaders.size
        YL_old = np.empty((nl, self.S))
        YL_new = np.empty((nl, self.S))
        enorms = np.empty(nl)
        TM = np.empty((nl, self.track_idx.size))
        wts = np.bincount(leader_of, minlength=nl).astype(float) / self.N
        status, self.h, nsteps = self.kern.react(
            self.Y,
            leaders,
            self.cls,
            self.PC,
            wts,
            self.sys_idx,
            self.h,
            float(t0),
            float(t1),
            self.rtol,
            self.atol,
            H_MAX,
            MAX_STEPS_PER_COUPLING,
            YL_old,
            YL_new,
            enorms,
            nl >= PARALLEL_MIN_LEADERS,
            self.track_idx,
            TM,
        )
        if status != 0:
            from imiqsim.engine.run import STATUS_TEXT

            worst = int(leaders[int(np.argmax(enorms))])
            raise FieldSimulationFailed(
                f"integration failed between {t0:.3f} and {t1:.3f} h ({STATUS_TEXT.get(int(status), status)}); "
                f"worst site {worst} (y={worst // self.layout.nx}, x={worst % self.layout.nx})"
            )
        self.g = YL_new[0, self.sys_idx].copy()  # the same in every leader by construction
        self.kern.scatter(self.Y, leaders, leader_of, equal, YL_old, YL_new)
        self.kern.after_react(self.Y, self.sys_idx, self.g, leader_of, TM, self.peak)
        self.diffuse(0.5 * dt, w)
        self.n_couplings += 1
        self.leaders_total += nl
        self.leaders_max = max(self.leaders_max, nl)
        self.rx_steps += int(nsteps)
        self.site_steps += int(nsteps) * nl

    def advance(self, t: float, t_stop: float, t_last_event: float) -> None:
        """Coupling steps from t to t_stop.

        Without any lateral gradient the splitting is exact, so the step runs
        to ``t_stop`` (at most ``quiet_coupling_step_h``); with gradients it is
        ``coupling_step_h`` within ``quiet_after_h`` of the last event and
        ``quiet_coupling_step_h`` after that.
        """
        spec = self.spec
        while t < t_stop:
            w, spread = self._stats()
            quiet = (t - t_last_event) >= float(spec.quiet_after_h)
            if not self.has_gradient(w, spread) or quiet:
                dt = float(spec.quiet_coupling_step_h)
            else:
                dt = float(spec.coupling_step_h)
            rem = t_stop - t
            if rem <= dt * (1 + 1e-9):
                t1 = t_stop
            elif rem < 2 * dt:
                t1 = t + rem / 2
            else:
                t1 = t + dt
            self.couple(t, t1, w, spread)
            t = t1

    # ---------------------------------------------------------------- field-level readouts
    def lesion_totals(self) -> np.ndarray:
        """Cells per slot over the whole field (mean of whole-field equivalents)."""
        return self.Y[:, self.lesion_cols].mean(axis=0)

    def visible_count(self) -> int:
        return int(np.count_nonzero(self.lesion_totals() > self.layout.visible_threshold_cells))


def simulate_field(spec: FieldSpec) -> FieldResult:
    """Simulate the treated field of ``spec``; see the module docstring for the method.

    Parameters
    ----------
    spec : FieldSpec

    Returns
    -------
    FieldResult

    Raises
    ------
    InputError
        Bad input (also raised by ``FieldSpec`` itself).
    FieldSimulationFailed
        The integrator failed (e.g. absurd parameter overrides).

    Examples
    --------
    >>> res = simulate_field(FieldSpec("ak-5pct", resolution_mm=10.0, days=3))  # doctest: +SKIP
    >>> res.maps["erythema_score"].dims  # doctest: +SKIP
    ('time', 'y', 'x')
    """
    if not isinstance(spec, FieldSpec):
        raise InputError("spec", spec, "a FieldSpec")
    wall0 = time.perf_counter()
    model = get_model()
    sc = spec.scenario_obj
    layout = build_layout(spec, model)
    eng = _Engine(spec, model, layout)
    masks = _build_masks(spec, layout)
    events = _event_list(spec, masks)
    ev_masks = [_mask_for(e.mask, masks, layout) for e in events]

    t_assess = sc.assessment_time_h()
    ev_end = sc.events().end_h()
    if spec.days is not None:
        t_end = float(spec.days) * 24.0
    else:
        t_end = max(t_assess, ev_end) + float(spec.followup_days) * 24.0
    for i, e in enumerate(spec.extra_events):
        if e.time_h > t_end:
            raise InputError(
                f"extra_events[{i}].time_h", e.time_h, f"a time within the horizon (<= {t_end:g} h)"
            )
    keys = _key_times(spec, t_end)
    series_t = _time_grid(float(spec.output_every_hours), t_end, keys.values())
    map_t = _time_grid(float(spec.map_every_days) * 24.0, t_end, keys.values())
    ev_t = np.array([e.time_h for e in events if e.time_h <= t_end])
    stops = np.unique(np.concatenate([series_t, map_t, ev_t]))

    rec = _Recorder(model, layout, eng)
    lsr_rest = float(layout.single_site_parameters[model.parameter_index("lsr_rest_threshold")])
    stopped = False
    not_clear_at_check = True
    n_applied = n_skipped = 0
    t_last_event = -np.inf
    ie = js = jm = 0
    t = 0.0
    for t_stop in stops:
        eng.advance(t, float(t_stop), t_last_event)
        t = float(t_stop)
        # outputs due now (before the events at this time, as run_batch does)
        while js < series_t.size and series_t[js] <= t:
            rec.series()
            js += 1
        while jm < map_t.size and map_t[jm] <= t:
            rec.map()
            jm += 1
        # events due now
        while ie < len(events) and events[ie].time_h <= t:
            e, mask = events[ie], ev_masks[ie]
            if e.kind == APPLY:
                give = True
                if e.gate == GATE_UNTIL_CLEAR:
                    if stopped:
                        give = False
                    elif eng.visible_count() == 0:
                        stopped, give = True, False
                elif e.gate == GATE_NOT_CLEAR_AT_CHECK and not not_clear_at_check:
                    give = False
                if give:
                    vals, _ = eng.site_observables(("lsr_score",))
                    if vals["lsr_score"].mean() >= lsr_rest:
                        give = False
                        n_skipped += 1
                if give:
                    eng.Y[mask, eng.i_film] += e.amount_mg
                    eng.Y[mask, eng.i_applied] += e.amount_mg
                    n_applied += 1
                    eng.h = 0.01
            elif e.kind == WASH:
                eng.Y[mask, eng.i_washed] += eng.Y[mask, eng.i_film]
                eng.Y[mask, eng.i_film] = 0.0
                eng.h = 0.01
            elif e.kind == CHECK:
                not_clear_at_check = eng.visible_count() > 0
            else:
                handler = _HANDLERS.get(e.kind)
                if handler is None:
                    raise InputError(
                        "events.kind",
                        e.kind,
                        "an event kind with a registered field handler (imiqsim.spatial.register_site_event)",
                    )
                handler(
                    FieldState(model, layout, eng.Y, t, eng.kern),
                    e,
                    mask.reshape(layout.ny, layout.nx),
                )
                # shared pools: a handler's local changes are mixed into the field value
                eng.g = eng.Y[:, eng.sys_idx].mean(axis=0)
                eng.Y[:, eng.sys_idx] = eng.g
                eng.h = 0.01
            t_last_event = t
            ie += 1

    wall = time.perf_counter() - wall0
    return _assemble(
        spec,
        model,
        layout,
        eng,
        rec,
        series_t,
        map_t,
        keys,
        t_assess,
        {"applications_given": n_applied, "doses_skipped_for_rest": n_skipped},
        wall,
    )


class _Recorder:
    """Collects the time courses and the maps."""

    MAP_OBSERVABLES = ("erythema_score", "lsr_score", "skin_conc_ug_ml")

    def __init__(self, model: Model, layout: FieldLayout, eng: _Engine):
        self.model, self.layout, self.eng = model, layout, eng
        si = model.state_index
        self.infl_cols = [si(n) for n in INFILTRATE_STATES]
        self.skin_cols = [si(n) for n in ("stratum_corneum", "epidermis", "dermis")]
        self.slot_cols = [L.slot - 1 for L in layout.lesions]
        self.area_mm2 = layout.area_cm2 * 100.0
        self.pigment_col = si("pigment_loss") if "pigment_loss" in model.state_names else None
        self.sys_names = [model.states[i].name for i in eng.sys_idx]
        self.ser: dict[str, list] = {
            k: []
            for k in (
                self.sys_names
                + [n for n in SYSTEMIC_OBSERVABLES if n in model.observable_names]
                + [
                    "lesion_burden",
                    "visible_lesions",
                    "histological_lesions",
                    "drug_applied_mg",
                    "drug_in_skin_mg",
                    "mean_immune_infiltrate",
                ]
                + [f"mean_{o}" for o in FIELD_OBSERVABLES]
                + [f"max_{o}" for o in FIELD_OBSERVABLES]
            )
        }
        self.lesion_cells: list[np.ndarray] = []
        self.maps: dict[str, list] = {
            k: []
            for k in (
                "lesion_cells",
                "erythema_score",
                "lsr_score",
                "immune_infiltrate",
                "skin_conc_ug_ml",
            )
        }
        if self.pigment_col is not None:
            self.maps["pigment_loss"] = []

    def series(self) -> None:
        eng, ser, lay = self.eng, self.ser, self.layout
        vals, obs_l = eng.site_observables(FIELD_OBSERVABLES)
        totals = eng.lesion_totals()
        for j, name in enumerate(self.sys_names):
            ser[name].append(eng.g[j])
        for nm in SYSTEMIC_OBSERVABLES:
            if nm in ser:
                ser[nm].append(
                    obs_l[0, eng.oi(nm)]
                )  # a function of the shared pools: the same in every site
        ser["lesion_burden"].append(totals.sum())
        ser["visible_lesions"].append(np.count_nonzero(totals > lay.visible_threshold_cells))
        ser["histological_lesions"].append(np.count_nonzero(totals > lay.histology_threshold_cells))
        ser["drug_applied_mg"].append(eng.Y[:, eng.i_applied].mean())
        ser["drug_in_skin_mg"].append(eng.Y[:, self.skin_cols].sum(axis=1).mean())
        ser["mean_immune_infiltrate"].append(eng.Y[:, self.infl_cols].sum(axis=1).mean())
        for nm in FIELD_OBSERVABLES:
            ser[f"mean_{nm}"].append(vals[nm].mean())
            ser[f"max_{nm}"].append(vals[nm].max())
        self.lesion_cells.append(totals[self.slot_cols])

    def map(self) -> None:
        eng = self.eng
        vals, _ = eng.site_observables(self.MAP_OBSERVABLES)
        shape = (self.layout.ny, self.layout.nx)
        m = self.maps
        m["lesion_cells"].append(
            (eng.Y[:, eng.lesion_cols].sum(axis=1) / self.area_mm2).reshape(shape)
        )
        for nm in self.MAP_OBSERVABLES:
            m[nm].append(vals[nm].reshape(shape))
        m["immune_infiltrate"].append(eng.Y[:, self.infl_cols].sum(axis=1).reshape(shape))
        if self.pigment_col is not None:
            m["pigment_loss"].append(eng.Y[:, self.pigment_col].reshape(shape).copy())


# --------------------------------------------------------------------------- results


_SERIES_UNITS = {
    "lesion_burden": "cells",
    "visible_lesions": "lesions",
    "histological_lesions": "lesions",
    "drug_applied_mg": "mg",
    "drug_in_skin_mg": "mg",
    "mean_immune_infiltrate": "cells/mm2",
}
_SERIES_TEXT = {
    "lesion_burden": "abnormal cells of all lesions in the field",
    "visible_lesions": "clinically visible lesions (total cells above visible_threshold_cells)",
    "histological_lesions": "lesions above the histological detection limit",
    "drug_applied_mg": "imiquimod applied to the field, cumulative",
    "drug_in_skin_mg": "imiquimod in the skin layers of the field",
    "mean_immune_infiltrate": "field mean of cd8_ctl + nk_cells + macrophage",
}
_MAP_ATTRS = {
    "lesion_cells": ("cells/mm2", "abnormal lesion cells (all slots) per mm2 of skin"),
    "erythema_score": ("0-3", "erythema score"),
    "lsr_score": ("0-18", "local skin reaction sum score"),
    "immune_infiltrate": ("cells/mm2", "immune infiltrate: cd8_ctl + nk_cells + macrophage"),
    "skin_conc_ug_ml": ("ug/mL", "imiquimod concentration in viable skin"),
    "pigment_loss": ("1", "fraction of melanocytes lost (model state pigment_loss, model/cryo.py)"),
}


def _assemble(
    spec, model, layout, eng, rec, series_t, map_t, keys, t_assess, doses, wall
) -> FieldResult:
    sc = spec.scenario_obj
    yc, xc = layout.coords_mm()
    slots = np.array([L.slot for L in layout.lesions], dtype=np.int64)
    units = {st.name: st.unit for st in model.states}
    units.update({o.name: o.unit for o in model.observables})
    descr = {st.name: st.description for st in model.states}
    descr.update({o.name: o.description for o in model.observables})

    tc = {}
    for k, v in rec.ser.items():
        base = (
            k.split("_", 1)[1] if k.startswith(("mean_", "max_")) and k not in _SERIES_UNITS else k
        )
        text = _SERIES_TEXT.get(k) or (
            ("field " + k.split("_")[0] + " of ") if base != k else ""
        ) + descr.get(base, k)
        tc[k] = xr.DataArray(
            np.asarray(v, dtype=float),
            dims="time",
            attrs={"units": _SERIES_UNITS.get(k, units.get(base, "")), "description": text},
        )
    tc["lesion_cells"] = xr.DataArray(
        np.array(rec.lesion_cells, dtype=float).reshape(len(series_t), len(slots)),
        dims=("time", "lesion"),
        attrs={"units": "cells", "description": "total abnormal cells of each lesion"},
    )
    timecourses = xr.Dataset(
        tc,
        coords={
            "time": ("time", series_t / 24.0, {"units": "days"}),
            "lesion": ("lesion", slots, {"description": "lesion slot"}),
        },
    )

    dv = {
        k: xr.DataArray(
            np.array(v, dtype=np.float32),
            dims=("time", "y", "x"),
            attrs={"units": _MAP_ATTRS[k][0], "description": _MAP_ATTRS[k][1]},
        )
        for k, v in rec.maps.items()
    }
    shape = (layout.ny, layout.nx)
    for q, name in enumerate(eng.tracked):
        u = units.get(name, "")
        dv[f"peak_{name}"] = xr.DataArray(
            eng.peak[:, q].reshape(shape).astype(np.float32),
            dims=("y", "x"),
            attrs={
                "units": u,
                "description": f"highest {name} over the simulation (every accepted step)",
            },
        )
    if "peak_pigment_loss" in dv:
        thr = (
            float(
                layout.single_site_parameters[model.parameter_index("hypopigmentation_threshold")]
            )
            if "hypopigmentation_threshold" in model.parameter_names
            else np.nan
        )
        dv["pigment_change"] = dv["peak_pigment_loss"].copy()
        dv["pigment_change"].attrs = {
            "units": "1",
            "description": (
                "pigment change map: highest fraction of melanocytes lost at each site (model state pigment_loss: "
                "post-inflammatory loss in intensely inflamed, eroded skin, and freezing). A simple, ASSUMED "
                "proxy of hypopigmentation risk: its rate constants are assumptions, not fitted to pigment data"
            ),
            "hypopigmentation_threshold": thr,
        }
    owner = np.zeros(layout.n_sites, dtype=np.int16)
    for L in layout.lesions:
        owner[L.sites] = L.slot
    dv["lesion_slot"] = xr.DataArray(
        owner.reshape(shape),
        dims=("y", "x"),
        attrs={"description": "lesion slot owning the site (0: none)"},
    )
    maps_ds = xr.Dataset(
        dv,
        coords={
            "time": ("time", map_t / 24.0, {"units": "days"}),
            "y": ("y", yc, {"units": "mm"}),
            "x": ("x", xc, {"units": "mm"}),
        },
    )
    attrs = {
        "scenario": sc.name,
        "indication": sc.indication,
        "area_cm2": layout.area_cm2,
        "resolution_mm": layout.dx_mm,
        "n_sites": layout.n_sites,
        "seed": int(spec.seed),
        "imiqsim_version": __version__,
        "disclaimer": DISCLAIMER,
    }
    maps_ds.attrs.update(attrs)
    timecourses.attrs.update(attrs)

    lesions = _lesion_table(layout, timecourses["lesion_cells"].values, series_t, t_assess)
    info = dict(
        n_sites=layout.n_sites,
        ny=layout.ny,
        nx=layout.nx,
        resolution_mm=layout.dx_mm,
        wall_time_s=wall,
        coupling_steps=eng.n_couplings,
        mean_groups_per_step=eng.leaders_total / max(eng.n_couplings, 1),
        max_groups_per_step=eng.leaders_max,
        integrator_steps=eng.rx_steps,
        site_steps=eng.site_steps,
        diffused_column_steps=eng.diffused_columns,
        horizon_days=float(series_t[-1] / 24.0),
        group_tol=spec.group_tol,
        **doses,
    )
    return FieldResult(
        spec, layout, maps_ds, timecourses, lesions, {k: v / 24.0 for k, v in keys.items()}, info
    )


def _lesion_table(
    layout: FieldLayout, lc: np.ndarray, series_t: np.ndarray, t_assess: float
) -> pd.DataFrame:
    thr, hthr = layout.visible_threshold_cells, layout.histology_threshold_cells
    ia = int(np.searchsorted(series_t, t_assess)) if t_assess <= series_t[-1] else None
    rows = []
    for j, L in enumerate(layout.lesions):
        c = lc[:, j]
        vis0 = bool(c[0] > thr)
        row = {
            "id": L.slot,
            "x_mm": L.x_mm,
            "y_mm": L.y_mm,
            "radius_mm": L.radius_mm,
            "n_sites": L.n_sites,
            "cells_baseline": float(c[0]),
            "visible_baseline": vis0,
            "subclinical_baseline": bool(0 < c[0] <= thr),
            "cells_assessment": np.nan,
            "visible_assessment": None,
            "cleared_at_assessment": None,
            "histologically_clear_at_assessment": None,
            "recurred_in_followup": None,
            "new_in_followup": None,
            "time_to_recurrence_days": np.nan,
            "cells_end": float(c[-1]),
        }
        if ia is not None:
            visa = bool(c[ia] > thr)
            later = np.flatnonzero(c[ia + 1 :] > thr)
            row.update(
                cells_assessment=float(c[ia]),
                visible_assessment=visa,
                cleared_at_assessment=(not visa) if vis0 else None,
                histologically_clear_at_assessment=bool(c[ia] <= hthr),
            )
            if series_t[-1] > t_assess:
                if vis0 and not visa:
                    row["recurred_in_followup"] = bool(later.size)
                    if later.size:
                        row["time_to_recurrence_days"] = float(
                            (series_t[ia + 1 + later[0]] - t_assess) / 24.0
                        )
                if not vis0 and not visa:
                    row["new_in_followup"] = bool(later.size)
        rows.append(row)
    return pd.DataFrame(rows)
