"""Shared test set-up. The test folders mirror ``src/imiqsim/`` (``tests/engine`` tests
``imiqsim.engine``, ...); tests at this level test the top-level modules.

Tests are imported by path (``--import-mode=importlib``), so two folders may hold files of the
same name; this folder is put on ``sys.path`` so tests can import ``pins_generate``.
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
