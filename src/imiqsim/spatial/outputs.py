"""Files of a field simulation (the old import path).

The code lives in :mod:`imiqsim.outputs.field`; this module re-exports it so
that ``from imiqsim.spatial.outputs import write_field_outputs`` keeps working.
"""

from imiqsim.outputs.field import (
    KEY_LABELS,
    MAX_GIF_FRAMES,
    PANELS,
    plot_key_days,
    write_field_outputs,
    write_gif,
)

__all__ = [
    "KEY_LABELS",
    "MAX_GIF_FRAMES",
    "PANELS",
    "plot_key_days",
    "write_field_outputs",
    "write_gif",
]
