"""Everything imiqsim writes for people and other tools: data files, figures, HTML.

One module per product, and the data files of each are written before its
pictures, so a plotting failure never loses simulated data
(:func:`~imiqsim.outputs.files.figure_step`):

=========================  ===================================================================
module                     writes
=========================  ===================================================================
``patient``                one patient: ``timecourse.nc``/``.csv``, ``summary.json``, cascade
``patient_figures``        the cascade and lesion figures of one patient
``trial``                  a trial's data: ``outcomes.parquet``, ``summary.json``, ``traces.nc``
``trial_figures``          a trial's figures (bands, kinetics, waterfall, subgroups)
``trial_report``           ``report.html`` (template ``templates/trial_report.html`` here)
``compare``                ``comparison.html`` and ``comparison.json``
``field``                  a skin field: maps (NetCDF), lesion table, key-day strip, GIF
``formatting``             how estimates are written (report typography, console text)
``style``                  shared figure pieces; the plotted series come from the model
=========================  ===================================================================

Every report, JSON summary and figure footer carries the one disclaimer of
:mod:`imiqsim.vocabulary`. The public writers are importable from here:

>>> from imiqsim.outputs import write_patient_outputs, write_trial_bundle
>>> write_trial_bundle.__module__
'imiqsim.outputs.trial_report'
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "write_patient_outputs": "patient",
    "plot_cascade": "patient_figures",
    "plot_lesions": "patient_figures",
    "write_trial_outputs": "trial",
    "outcomes_frame": "trial",
    "traces_dataset": "trial",
    "write_trial_report": "trial_report",
    "write_trial_bundle": "trial_report",
    "write_comparison": "compare",
    "write_field_outputs": "field",
    "plot_key_days": "field",
    "write_gif": "field",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # lazy: importing imiqsim.outputs must not pull in matplotlib, xarray or the field package
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"imiqsim.outputs.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'imiqsim.outputs' has no attribute {name!r}")
