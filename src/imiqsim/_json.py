"""Strict-JSON conversion shared by the writers.

NaN/inf become null, numpy scalars become Python scalars.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_safe(x: Any) -> Any:
    """Recursively convert ``x`` into values that ``json.dumps(..., allow_nan=False)`` accepts."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    if isinstance(x, (str, type(None))):
        return x
    return str(x)
