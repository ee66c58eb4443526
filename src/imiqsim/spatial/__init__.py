"""The treated skin field as a 2-D grid of sites (diffusion, shared systemic pools, lesion map).

Research and teaching software, not a medical device.

>>> from imiqsim.spatial import FieldSpec, simulate_field, write_field_outputs
>>> spec = FieldSpec("ak-5pct", resolution_mm=1.0, seed=1)   # doctest: +SKIP
>>> res = simulate_field(spec)                               # doctest: +SKIP
>>> write_field_outputs(res, "out/field")                    # doctest: +SKIP

See :mod:`imiqsim.spatial.field` for the method and its assumptions.
"""

from imiqsim.spatial.diffusion import DIFFUSION_TABLE, DiffusionEntry, diffuse_2d, diffusion_step
from imiqsim.spatial.field import (
    FieldLayout,
    FieldResult,
    FieldSimulationFailed,
    FieldSpec,
    FieldState,
    LesionPlacement,
    PlacedLesion,
    SiteEvent,
    build_layout,
    register_site_event,
    simulate_field,
    unregister_site_event,
)
from imiqsim.spatial.outputs import write_field_outputs

__all__ = [
    "DIFFUSION_TABLE",
    "DiffusionEntry",
    "FieldLayout",
    "FieldResult",
    "FieldSimulationFailed",
    "FieldSpec",
    "FieldState",
    "LesionPlacement",
    "PlacedLesion",
    "SiteEvent",
    "build_layout",
    "diffuse_2d",
    "diffusion_step",
    "register_site_event",
    "simulate_field",
    "unregister_site_event",
    "write_field_outputs",
]
