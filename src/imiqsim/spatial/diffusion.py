"""Lateral transport between grid sites: coefficients with units and provenance, and the solver.

Drug in the skin layers, the local cytokines and the migrating immune
cells spread sideways through the treated field. Immune-cell migration is
modelled as a random-motility diffusion with its own coefficient. Everything
else (the cream film, lesion cells, dying cells, the LSR tissue processes)
stays where it is.

The solver is the explicit 5-point Laplacian with zero-flux (Neumann)
boundaries, written in flux form so that every unit leaving one site enters
its neighbour: the field total is conserved to round-off. It is sub-stepped
so that ``r = D * dt_sub / dx**2 <= 0.2`` (forward Euler in 2-D is stable and
positivity-preserving for ``r <= 1/4``).

Coefficient table (``DIFFUSION_TABLE``; override per group or per state with
``FieldSpec(diffusion={...})`` in um2/min). The cytokine and immune-cell
groups are the model's own vocabulary (:data:`imiqsim.model.CYTOKINES`,
:data:`imiqsim.model.SKIN_CELLS`): a cytokine or skin cell added to the
model diffuses with its group without a change here.

=================  ==========================  =======  =========================================
group              states                      um2/min  provenance
=================  ==========================  =======  =========================================
drug_viable_skin   epidermis, dermis           600      assumed: D ~ 1e-7 cm2/s, the value behind
                                                        k_epidermis_to_dermis
stratum_corneum    stratum_corneum             0.6      assumed: lateral diffusion in the lipid
                                                        matrix ~1e-10 cm2/s
cytokines          the model's ``CYTOKINES``   555.56   PhysiCell default tissue diffusion
                                                        (shared/targets/parameters.csv)
immune_cells       the model's ``SKIN_CELLS``  20       assumed: random motility, speed a few
                                                        um/min, persistence ~5 min:
                                                        D = v^2 tau / 2 ~ 10-50 um2/min
=================  ==========================  =======  =========================================

Examples
--------
>>> DIFFUSION_TABLE["cytokines"].states == CYTOKINES
True
>>> round(DIFFUSION_TABLE["cytokines"].mm2_per_h, 4)
0.0333
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from imiqsim.model import CYTOKINES, SKIN_CELLS

#: um2/min -> mm2/h
UM2_PER_MIN_TO_MM2_PER_H = 1e-6 * 60.0
#: largest explicit diffusion number per sub-step (stability limit is 1/4)
MAX_DIFFUSION_NUMBER = 0.2


@dataclass(frozen=True)
class DiffusionEntry:
    """One row of the coefficient table."""

    states: tuple[str, ...]
    um2_per_min: float
    provenance: str

    @property
    def mm2_per_h(self) -> float:
        return self.um2_per_min * UM2_PER_MIN_TO_MM2_PER_H


DIFFUSION_TABLE: dict[str, DiffusionEntry] = {
    "drug_viable_skin": DiffusionEntry(
        ("epidermis", "dermis"),
        600.0,
        "assumed: small lipophilic molecule in hydrated tissue, D ~ 1e-7 cm2/s (= 600 um2/min); "
        "the same value underlies k_epidermis_to_dermis in parameters.csv",
    ),
    "stratum_corneum": DiffusionEntry(
        ("stratum_corneum",),
        0.6,
        "assumed: lateral diffusion in the stratum-corneum lipid matrix ~1e-10 cm2/s, ~1000x "
        "slower than in viable tissue",
    ),
    "cytokines": DiffusionEntry(
        CYTOKINES,
        555.56,
        "PhysiCell default tissue diffusion coefficient 555.56 um2/min "
        "(shared/targets/parameters.csv, tissue_cytokine_decay_generic)",
    ),
    "immune_cells": DiffusionEntry(
        SKIN_CELLS,
        20.0,
        "assumed: leukocyte random motility in tissue, speed a few um/min with ~5 min persistence, "
        "D = v^2 tau / 2 ~ 10-50 um2/min",
    ),
}


def coefficient_table(overrides: dict[str, float] | None = None) -> dict[str, float]:
    """State name -> coefficient in um2/min, after overrides (group or state names)."""
    out: dict[str, float] = {}
    for entry in DIFFUSION_TABLE.values():
        for s in entry.states:
            out[s] = entry.um2_per_min
    for key, v in (overrides or {}).items():
        if key in DIFFUSION_TABLE:
            for s in DIFFUSION_TABLE[key].states:
                out[s] = float(v)
        else:
            out[key] = float(v)
    return out


def allowed_override_keys() -> list[str]:
    """The names ``FieldSpec(diffusion=...)`` accepts: the groups, then every state in them."""
    keys = list(DIFFUSION_TABLE)
    for entry in DIFFUSION_TABLE.values():
        keys += list(entry.states)
    return keys


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def column_range(Y, cols, lo, hi):
    """Min (into ``lo``) and max (into ``hi``) of the given columns of Y, in one row-major pass."""
    nc = cols.shape[0]
    for q in range(nc):
        lo[q] = np.inf
        hi[q] = -np.inf
    for s in range(Y.shape[0]):
        for q in range(nc):
            v = Y[s, cols[q]]
            if v < lo[q]:
                lo[q] = v
            if v > hi[q]:
                hi[q] = v


@njit(cache=True)
def _explicit_steps(u, tmp, ny, nx, r, nsub):
    """``nsub`` forward-Euler steps of the zero-flux 5-point Laplacian on u (ny*nx), flux form."""
    for _ in range(nsub):
        for iy in range(ny):
            row = iy * nx
            for ix in range(nx):
                s = row + ix
                c = u[s]
                acc = 0.0
                if ix > 0:
                    acc += u[s - 1] - c
                if ix < nx - 1:
                    acc += u[s + 1] - c
                if iy > 0:
                    acc += u[s - nx] - c
                if iy < ny - 1:
                    acc += u[s + nx] - c
                tmp[s] = c + r * acc
        for s in range(ny * nx):
            u[s] = tmp[s]


def substeps(d_mm2_h: float, dt_h: float, dx_mm: float) -> tuple[int, float]:
    """(number of sub-steps, diffusion number r per sub-step) for a stable explicit step."""
    total = d_mm2_h * dt_h / (dx_mm * dx_mm)
    n = max(1, math.ceil(total / MAX_DIFFUSION_NUMBER - 1e-12))
    return n, total / n


def diffuse_2d(u: np.ndarray, d_mm2_h: float, dt_h: float, dx_mm: float) -> np.ndarray:
    """Diffuse a 2-D field (any quantity per unit area) for ``dt_h`` hours; returns a new array.

    Zero-flux boundaries; the sum over the grid is conserved to round-off.

    Examples
    --------
    >>> u = np.zeros((5, 5)); u[2, 2] = 1.0
    >>> v = diffuse_2d(u, 0.036, 1.0, 0.25)
    >>> bool(abs(v.sum() - 1.0) < 1e-12 and v.max() < 1.0)
    True
    """
    a = np.ascontiguousarray(u, dtype=float)
    if a.ndim != 2:
        raise ValueError("diffuse_2d expects a 2-D array")
    ny, nx = a.shape
    flat = a.ravel().copy()
    if d_mm2_h > 0 and dt_h > 0 and flat.size > 1:
        n, r = substeps(d_mm2_h, dt_h, dx_mm)
        _explicit_steps(flat, np.empty_like(flat), ny, nx, r, n)
    return flat.reshape(ny, nx)


def diffusion_step(
    Y: np.ndarray,
    columns: np.ndarray,
    d_mm2_h: np.ndarray,
    dt_h: float,
    ny: int,
    nx: int,
    dx_mm: float,
    skip_range: np.ndarray | None = None,
    spread: np.ndarray | None = None,
) -> int:
    """Diffuse the given state columns of a site-major state array ``Y`` (ny*nx, S) in place.

    A column whose spread (max - min; ``spread`` if given, else measured) is
    0, or at most ``skip_range[k]``, is left alone: the Laplacian of a flat
    field is zero, and a spread below the grouping tolerance cannot change
    anything the integrator resolves. Returns the number of columns diffused.

    Examples
    --------
    >>> Y = np.zeros((9, 2)); Y[4, 1] = 9.0
    >>> diffusion_step(Y, np.array([1]), np.array([0.036]), 1.0, 3, 3, 0.25)
    1
    >>> round(float(Y[:, 1].sum()), 12)
    9.0
    """
    columns = np.asarray(columns, dtype=np.int64)
    if Y.shape[0] <= 1 or dt_h <= 0 or columns.size == 0:
        return 0
    if spread is None:
        lo, hi = np.empty(columns.size), np.empty(columns.size)
        column_range(Y, columns, lo, hi)
        spread = hi - lo
    u = np.empty(Y.shape[0])
    tmp = np.empty(Y.shape[0])
    done = 0
    for k, col in enumerate(columns):
        d = float(d_mm2_h[k])
        if d <= 0.0 or spread[k] == 0.0 or (skip_range is not None and spread[k] <= skip_range[k]):
            continue
        n, r = substeps(d, dt_h, dx_mm)
        u[:] = Y[:, col]
        _explicit_steps(u, tmp, ny, nx, r, n)
        Y[:, col] = u
        done += 1
    return done
