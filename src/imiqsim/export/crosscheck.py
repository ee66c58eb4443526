"""Run the exported SBML in other tools with their default settings and compare with imiqsim.

The tools: libRoadRunner (CVODE, BDF by default; Adams on request), COPASI through
``copasi-basico`` (LSODA defaults) and Tellurium (``te.loadSBMLModel``, libRoadRunner
underneath). Each runner takes the SBML text and the output times and returns
``{variable: values}``; :func:`reference` runs the same patient and schedule in
imiqsim's own engine at tight tolerances, and :func:`max_rel_diff` compares.

The tools are optional (dev extras); a runner imports its tool when called.

Examples
--------
>>> import numpy as np
>>> float(np.round(max_rel_diff(np.array([1.0, 2.0]), np.array([1.0, 2.5]), scale=2.0), 6))
0.2
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from imiqsim.model import Model

__all__ = [
    "COMPARED",
    "FLOOR_FRACTION",
    "RUNNERS",
    "compare",
    "max_rel_diff",
    "reference",
    "roadrunner_selections",
    "run_copasi",
    "run_roadrunner",
    "run_tellurium",
]

#: Variables compared between tools: lesion burden, the local cytokines, LSR, serum drug.
COMPARED = (
    "lesion_burden",
    "ifn_alpha",
    "tnf_alpha",
    "il6",
    "il12",
    "lsr_score",
    "serum_conc_ng_ml",
)
#: Absolute floor of a comparison, as a fraction of the variable's scale (a state's
#: ``scale``; an observable's peak magnitude over the reference run).
FLOOR_FRACTION = 1e-9


def run_roadrunner(
    sbml: str, times: Sequence[float], names: Sequence[str], *, stiff: bool = True
) -> dict[str, np.ndarray]:
    """Simulate with libRoadRunner's default CVODE settings (BDF; ``stiff=False``: Adams).

    Parameters
    ----------
    sbml : str
        SBML document (text).
    times : sequence of float
        Output times in hours, increasing, starting after 0.
    names : sequence of str
        SBML ids to report.
    stiff : bool
        CVODE BDF (libRoadRunner's default) or Adams.

    Returns
    -------
    dict of str to ndarray
        Values at ``times``.
    """
    import roadrunner

    rr = roadrunner.RoadRunner(sbml)
    rr.integrator.stiff = stiff
    rr.timeCourseSelections = ["time", *roadrunner_selections(sbml, names)]
    out = np.asarray(rr.simulate(times=[0.0, *map(float, times)]))[1:]
    return {n: out[:, j + 1] for j, n in enumerate(names)}


def run_tellurium(sbml: str, times: Sequence[float], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Simulate with Tellurium's defaults (``te.loadSBMLModel(sbml).simulate``).

    Parameters and returns as for :func:`run_roadrunner`.
    """
    import tellurium as te  # type: ignore[import-untyped]

    r = te.loadSBMLModel(sbml)
    sel = ["time", *roadrunner_selections(sbml, names)]
    out = np.asarray(r.simulate(times=[0.0, *map(float, times)], selections=sel))[1:]
    return {n: out[:, j + 1] for j, n in enumerate(names)}


def run_copasi(sbml: str, times: Sequence[float], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Simulate with COPASI's defaults (LSODA) through ``copasi-basico``.

    Parameters and returns as for :func:`run_roadrunner`. COPASI reports species
    as concentrations; a species that is an amount (``hasOnlySubstanceUnits``) is
    that times its compartment's size. Observables come back as ``Values[id]``.
    """
    import basico  # type: ignore[import-untyped]

    dm = basico.load_model_from_string(sbml)
    try:
        ts = [float(t) for t in times]
        df = basico.run_time_course(
            duration=ts[-1], values=ts, model=dm, use_numbers=False, method="deterministic"
        )
        got: dict[str, np.ndarray] = {}
        species = set(basico.get_species(model=dm).index) if names else set()
        amounts = _amount_species(sbml)
        params = basico.get_parameters(model=dm)
        for n in names:
            name = _copasi_name(n, species, params)
            if name not in df.columns:
                raise KeyError(f"COPASI output has no column for {n!r}")
            got[n] = _at_times(df, name, ts) * amounts.get(n, 1.0)
        return got
    finally:
        basico.remove_datamodel(dm)


def _species_kinds(sbml: str) -> dict[str, tuple[bool, float]]:
    """SBML species id -> (hasOnlySubstanceUnits, its compartment's size)."""
    import libsbml

    m = libsbml.readSBMLFromString(sbml).getModel()
    return {
        s.getId(): (s.getHasOnlySubstanceUnits(), m.getCompartment(s.getCompartment()).getSize())
        for s in m.getListOfSpecies()
    }


def roadrunner_selections(sbml: str, names: Sequence[str]) -> list[str]:
    """libRoadRunner selections giving each species' SBML value.

    A bare species id selects its amount; a density or concentration species
    (``hasOnlySubstanceUnits=false``) is selected as ``[id]``.
    """
    kinds = _species_kinds(sbml)
    return [f"[{n}]" if n in kinds and not kinds[n][0] else n for n in names]


def _amount_species(sbml: str) -> dict[str, float]:
    """Species that are amounts -> their compartment's size (COPASI reports amount / size)."""
    return {sid: size for sid, (amount, size) in _species_kinds(sbml).items() if amount}


def _copasi_name(sid: str, species: set[str], params: Any) -> str:
    """COPASI names elements by their SBML name; the exporter sets name = id."""
    if sid in species:
        return sid
    if params is not None and sid in params.index:
        return f"Values[{sid}]"
    return sid


def _at_times(df: Any, col: str, ts: list[float]) -> np.ndarray:
    t = np.asarray(df.index, dtype=float)
    v = np.asarray(df[col], dtype=float)
    idx = np.searchsorted(t, ts)
    idx = np.clip(idx, 0, t.size - 1)
    if not np.allclose(t[idx], ts, rtol=0, atol=1e-9):
        raise ValueError("COPASI did not report at the requested times")
    return v[idx]


#: tool name -> runner
RUNNERS: dict[str, Callable[[str, Sequence[float], Sequence[str]], dict[str, np.ndarray]]] = {
    "roadrunner": run_roadrunner,
    "copasi": run_copasi,
    "tellurium": run_tellurium,
}


def reference(
    model: Model,
    parameter_values: np.ndarray,
    events: Any,
    times: Sequence[float],
    names: Sequence[str],
    *,
    rtol: float = 1e-9,
    atol_factor: float = 1e-12,
) -> dict[str, np.ndarray]:
    """imiqsim's own time course of one patient at tight tolerances.

    Parameters
    ----------
    model : Model
        The mechanism.
    parameter_values : ndarray
        One patient's parameter vector.
    events : DoseEvents-like
        The schedule.
    times : sequence of float
        Output times (hours).
    names : sequence of str
        States or observables.
    rtol, atol_factor : float
        Engine tolerances (:func:`imiqsim.engine.run.run_batch`).

    Returns
    -------
    dict of str to ndarray
        Values at ``times``.

    Raises
    ------
    RuntimeError
        If the engine reports a failed integration.
    """
    from imiqsim.engine.run import run_batch

    p = np.asarray(parameter_values, dtype=float)[None, :]
    res = run_batch(model, p, events, np.asarray(times, float), rtol=rtol, atol_factor=atol_factor)
    if res.status[0] != 0:
        raise RuntimeError(f"engine status {res.status[0]} on the reference run")
    out = {}
    for n in names:
        if n in model.state_names:
            out[n] = res.Y[0, :, model.state_index(n)]
        else:
            out[n] = res.observables[0, :, model.observable_index(n)]
    return out


def max_rel_diff(x: np.ndarray, ref: np.ndarray, scale: float) -> float:
    """Largest ``|x - ref| / max(|ref|, FLOOR_FRACTION * scale)``.

    Parameters
    ----------
    x, ref : ndarray
        Values of one variable from another tool and from imiqsim.
    scale : float
        The variable's scale (see :data:`FLOOR_FRACTION`).

    Returns
    -------
    float
        The worst relative difference (inf where ``x`` is not finite).
    """
    x, ref = np.asarray(x, float), np.asarray(ref, float)
    if not np.all(np.isfinite(x)):
        return float("inf")
    floor = max(FLOOR_FRACTION * float(scale), 1e-300)
    return float(np.max(np.abs(x - ref) / np.maximum(np.abs(ref), floor)))


def compare(
    model: Model, got: dict[str, np.ndarray], ref: dict[str, np.ndarray]
) -> dict[str, float]:
    """:func:`max_rel_diff` of every variable in ``ref``, each on its own scale.

    A state's scale is :attr:`State.scale`; an observable's is its peak
    magnitude in ``ref`` (1 if it is 0 throughout).
    """
    scales = {s.name: s.scale for s in model.states}
    out = {}
    for n, r in ref.items():
        sc = scales.get(n) or (float(np.max(np.abs(r))) or 1.0)
        out[n] = max_rel_diff(got[n], r, sc)
    return out
