"""Figures of one simulated patient (the old import path).

The code lives in :mod:`imiqsim.outputs.patient_figures`; this module
re-exports it so that ``from imiqsim.plots import plot_cascade`` keeps working.

>>> from imiqsim.plots import plot_cascade
>>> from imiqsim.outputs.patient_figures import plot_cascade as new
>>> plot_cascade is new
True
"""

from imiqsim.outputs.patient_figures import (
    CASCADE_N_AXES,
    FOOTER,
    LESIONS_N_AXES,
    plot_cascade,
    plot_lesions,
)

__all__ = ["CASCADE_N_AXES", "FOOTER", "LESIONS_N_AXES", "plot_cascade", "plot_lesions"]
