"""The treated area as a 2-D grid of sites, each running the compiled single-site mechanism.

Research and teaching software, not a medical device.

How a site relates to the single-site model
-------------------------------------------
Every site is advanced by the *same* compiled right-hand side as one patient
(:mod:`imiqsim.engine.codegen`), with the engine's stepper core (Dormand-Prince
5(4), error norm and step-size controller of :mod:`imiqsim.engine.steppers`);
nothing of the mechanism or of the integrator is re-implemented here. A
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
Dose events act on a *mask* of sites. What an event does to a site is the
model's own declaration (``ModuleSpec.event``: pk.py's APPLY puts the cream
on at the same mg/cm2 on every masked site, WASH empties the film, cryo.py's
FREEZE, any kind a new stage declares), run on the masked sites with each
site's parameters; no treatment biology is written here. Doses (the model's
gated-dose kinds) are given only when the engine's dose policy
(:func:`imiqsim.engine.policy.dose_decision`) allows: the gates read the
field's visible lesions (judged per lesion from its total cells), the rest
rule the field mean of the model's rest score. A handler registered with
:func:`register_site_event` replaces the model's effect of one kind, or
gives a kind the model does not declare a meaning on the field. After an
event that may change a shared pool on some sites (FREEZE adds frozen cells
to ``apoptotic_cells``; any handler), each shared pool is set to its mean
over the field again.

Where it is written
-------------------
This module is the public entry point; each job lives in its own module:

* :mod:`~imiqsim.spatial.spec`: the inputs (:class:`FieldSpec`,
  :class:`LesionPlacement`, :class:`SiteEvent`), validated by pydantic;
* :mod:`~imiqsim.spatial.layout`: the grid, lesion placement and the
  per-site parameter classes;
* :mod:`~imiqsim.spatial.site_events`: the event list, the masks and the
  per-kind handlers (:func:`register_site_event`);
* :mod:`~imiqsim.spatial.simulate`: the splitting loop (:func:`simulate_field`);
* :mod:`~imiqsim.spatial.diffusion` and :mod:`~imiqsim.spatial._kernels`: lateral
  transport and the coupled reaction step;
* :mod:`~imiqsim.spatial.results`: :class:`FieldResult`, recording and assembly.

Examples
--------
>>> from imiqsim.spatial.field import FieldSpec, simulate_field
>>> res = simulate_field(FieldSpec("ak-5pct", resolution_mm=10.0, days=3))  # doctest: +SKIP
>>> res.maps["erythema_score"].dims  # doctest: +SKIP
('time', 'y', 'x')
"""

from imiqsim.spatial.layout import (
    LESION_CELLS_PER_MM2,
    PER_LESION_COUNT_PARAMETERS,
    FieldLayout,
    PlacedLesion,
    build_layout,
)
from imiqsim.spatial.results import FieldResult
from imiqsim.spatial.simulate import FieldSimulationFailed, simulate_field
from imiqsim.spatial.site_events import (
    FieldState,
    SiteEventHandler,
    register_site_event,
    unregister_site_event,
)
from imiqsim.spatial.spec import MAX_SITES, FieldSpec, LesionPlacement, SiteEvent

__all__ = [
    "LESION_CELLS_PER_MM2",
    "MAX_SITES",
    "PER_LESION_COUNT_PARAMETERS",
    "FieldLayout",
    "FieldResult",
    "FieldSimulationFailed",
    "FieldSpec",
    "FieldState",
    "LesionPlacement",
    "PlacedLesion",
    "SiteEvent",
    "SiteEventHandler",
    "build_layout",
    "register_site_event",
    "simulate_field",
    "unregister_site_event",
]
