"""COMBINE archive (OMEX): the SBML, a SED-ML time course of the preset, and the manifest.

The SED-ML (Level 1 Version 3) describes one uniform time course of the
scenario from 0 to its assessment visit, reported every ``step_h`` hours
starting half an hour in (so no output time coincides with a dose event, all
of which fall on whole hours), with CVODE (KISAO:0000019) as the algorithm.
The report holds time, lesion burden, the local cytokines, the LSR score and
the serum drug concentration (:data:`REPORTED`).

Examples
--------
>>> import zipfile, tempfile, pathlib
>>> from imiqsim.export.omex import write_omex
>>> out = pathlib.Path(tempfile.mkdtemp()) / "ak.omex"
>>> _ = write_omex("ak-5pct", out)
>>> sorted(zipfile.ZipFile(out).namelist())
['manifest.xml', 'model.xml', 'simulation.sedml']
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from imiqsim.export.sbml import to_sbml
from imiqsim.model import CYTOKINES, get_model

__all__ = ["REPORTED", "output_times", "sedml", "write_omex"]

#: Variables in the SED-ML report (besides time).
REPORTED = ("lesion_burden", "visible_lesions", *CYTOKINES, "lsr_score", "serum_conc_ng_ml")
_SEDML_NS = "http://sed-ml.org/sed-ml/level1/version3"
_SBML_NS = "http://www.sbml.org/sbml/level3/version2/core"
_MATHML_NS = "http://www.w3.org/1998/Math/MathML"
_FIRST_OUTPUT_H = 0.5


def output_times(end_h: float, step_h: float) -> tuple[float, float, int]:
    """``(output start, output end, number of points)`` of the uniform time course.

    Parameters
    ----------
    end_h : float
        Last time of interest (h); the output ends at the last grid time at or before it.
    step_h : float
        Output interval (h), > 0.

    Returns
    -------
    (float, float, int)
        SED-ML ``outputStartTime``, ``outputEndTime`` and ``numberOfPoints``
        (in L1V3 the number of intervals).

    Raises
    ------
    ValueError
        If ``step_h`` is not positive or ``end_h`` is before the first output time.

    Examples
    --------
    >>> output_times(24.0, 6.0)
    (0.5, 18.5, 3)
    """
    if not (step_h > 0 and math.isfinite(step_h)):
        raise ValueError(f"step_h must be a positive number of hours, got {step_h!r}")
    if not end_h > _FIRST_OUTPUT_H + step_h:
        raise ValueError(f"end_h must exceed {_FIRST_OUTPUT_H + step_h} h, got {end_h!r}")
    n = int(math.floor((end_h - _FIRST_OUTPUT_H) / step_h))
    return _FIRST_OUTPUT_H, _FIRST_OUTPUT_H + n * step_h, n


def sedml(
    model_file: str,
    end_h: float,
    step_h: float,
    species: set[str],
    reported: tuple[str, ...] = REPORTED,
) -> str:
    """SED-ML L1V3 text for a uniform time course of ``model_file``.

    Parameters
    ----------
    model_file : str
        Location of the SBML file inside the archive.
    end_h, step_h : float
        See :func:`output_times`.
    species : set of str
        SBML ids that are species (the others are parameters set by rules).
    reported : tuple of str
        SBML ids in the report.

    Returns
    -------
    str
        The SED-ML document.
    """
    start, end, n = output_times(end_h, step_h)

    def target(sid: str) -> str:
        kind = "species" if sid in species else "parameter"
        lst = "listOfSpecies" if sid in species else "listOfParameters"
        return f"/sbml:sbml/sbml:model/sbml:{lst}/sbml:{kind}[@id='{sid}']"

    dgs = [
        '<dataGenerator id="dg_time" name="time"><listOfVariables>'
        '<variable id="v_time" symbol="urn:sedml:symbol:time" taskReference="task"/>'
        f'</listOfVariables><math xmlns="{_MATHML_NS}"><ci>v_time</ci></math></dataGenerator>'
    ]
    sets = ['<dataSet id="ds_time" label="time" dataReference="dg_time"/>']
    for sid in reported:
        dgs.append(
            f'<dataGenerator id="dg_{sid}" name="{sid}"><listOfVariables>'
            f'<variable id="v_{sid}" target={quoteattr(target(sid))} taskReference="task"/>'
            f'</listOfVariables><math xmlns="{_MATHML_NS}"><ci>v_{sid}</ci></math></dataGenerator>'
        )
        sets.append(f'<dataSet id="ds_{sid}" label="{sid}" dataReference="dg_{sid}"/>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<sedML xmlns="{_SEDML_NS}" xmlns:sbml="{_SBML_NS}" level="1" version="3">\n'
        "<listOfModels>"
        f'<model id="model" language="urn:sedml:language:sbml.level-3.version-2" '
        f"source={quoteattr(model_file)}/>"
        "</listOfModels>\n"
        "<listOfSimulations>"
        f'<uniformTimeCourse id="sim" initialTime="0" outputStartTime="{start!r}" '
        f'outputEndTime="{end!r}" numberOfPoints="{n}">'
        '<algorithm kisaoID="KISAO:0000019"/></uniformTimeCourse>'
        "</listOfSimulations>\n"
        '<listOfTasks><task id="task" modelReference="model" simulationReference="sim"/>'
        "</listOfTasks>\n"
        f"<listOfDataGenerators>{''.join(dgs)}</listOfDataGenerators>\n"
        '<listOfOutputs><report id="report" name="time course">'
        f"<listOfDataSets>{''.join(sets)}</listOfDataSets></report></listOfOutputs>\n"
        "</sedML>\n"
    )


_OMEX = "http://identifiers.org/combine.specifications/"
_MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<omexManifest xmlns="{_OMEX}omex-manifest">\n'
    f'  <content location="." format="{_OMEX}omex"/>\n'
    f'  <content location="./manifest.xml" format="{_OMEX}omex-manifest"/>\n'
    f'  <content location="./model.xml" format="{_OMEX}sbml.level-3.version-2"/>\n'
    f'  <content location="./simulation.sedml" format="{_OMEX}sed-ml.level-1.version-3"'
    ' master="true"/>\n'
    "</omexManifest>\n"
)


def write_omex(
    scenario: Any,
    out: str | Path,
    *,
    step_h: float = 6.0,
    overrides: dict[str, float] | None = None,
    knockouts: tuple[str, ...] = (),
) -> Path:
    """Write a COMBINE archive for a preset or scenario's typical patient.

    Parameters
    ----------
    scenario : str or Scenario
        Preset name, scenario file or :class:`imiqsim.scenario.Scenario`.
    out : str or Path
        Archive to write (``*.omex``).
    step_h : float
        Report interval in hours.
    overrides : dict, optional
        Parameter overrides (as ``--set``).
    knockouts : tuple of str
        Stages knocked out.

    Returns
    -------
    Path
        The archive.
    """
    from imiqsim.scenario import Scenario, resolve

    sc = scenario if isinstance(scenario, Scenario) else resolve(scenario)
    m = get_model()
    p = sc.model_parameters(m, dict(overrides or {}), knockouts)
    sbml = to_sbml(m, p, sc.events(), name=sc.name)
    doc = sedml("model.xml", sc.assessment_time_h(), step_h, set(m.state_names))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.xml", _MANIFEST)
        z.writestr("model.xml", sbml)
        z.writestr("simulation.sedml", doc)
    return out
