"""The grid and what lies on it: lesion patches and the per-site parameter classes.

Each of the model's lesion slots (``lesion_1..``) that holds cells or can be
seeded becomes a disc-shaped patch of sites (seeded position; radius from its
cell count at :data:`LESION_CELLS_PER_MM2`, or given by a
:class:`~imiqsim.spatial.LesionPlacement`). A site belongs to at most one
patch. Inside patch k the slot's initial cells are spread evenly over its
``m_k`` sites; in whole-field equivalents (:mod:`imiqsim.spatial.field`) each
site then holds ``cells * N / m_k``. The per-lesion count parameters
(:data:`PER_LESION_COUNT_PARAMETERS`) and the slot's seeding rate are scaled
by the same ``N / m_k`` so that a lesion saturates, turns visible, escapes
memory surveillance, is frozen and is seeded exactly as the same lesion in the
single-site model. Outside every patch the slots are empty and seed nothing.

Examples
--------
>>> from imiqsim.spatial import FieldSpec, LesionPlacement
>>> lay = build_layout(FieldSpec("ak-5pct", resolution_mm=5,
...                              lesions=[LesionPlacement(1, 25.0, 25.0, 6.0)]))
>>> (lay.ny, lay.nx), [L.n_sites for L in lay.lesions]
((10, 10), [4])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from imiqsim.errors import InputError
from imiqsim.model import Model, get_model
from imiqsim.model.lesions import N_SLOTS
from imiqsim.spatial.spec import FieldSpec

__all__ = [
    "LESION_CELLS_PER_MM2",
    "PER_LESION_COUNT_PARAMETERS",
    "FieldLayout",
    "PlacedLesion",
    "build_layout",
    "patient_parameters",
]

#: assumed packing of dysplastic cells in a lesion: visible_threshold_cells (5000 cells for AK) is
#: "clinically visible above ~1 mm2" (indications.csv), i.e. ~5000 cells per mm2 of lesion
LESION_CELLS_PER_MM2 = 5000.0
#: per-lesion count parameters scaled by N/m_k inside a lesion patch (see the module docstring)
PER_LESION_COUNT_PARAMETERS = (
    "lesion_capacity_cells",
    "visible_threshold_cells",
    "histology_threshold_cells",
)


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


def patient_parameters(spec: FieldSpec, model: Model) -> np.ndarray:
    """The one-patient parameter vector of ``spec`` (typical patient, or ``spec.patient``)."""
    sc = spec.scenario_obj
    p = sc.model_parameters(model, dict(spec.parameters), tuple(spec.knockouts))
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
    base = patient_parameters(spec, model)
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
