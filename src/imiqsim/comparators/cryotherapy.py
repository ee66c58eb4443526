"""Cryotherapy comparator, kept for existing imports: the code is in imiqsim.treatments."""

from __future__ import annotations

from imiqsim.treatments.cryotherapy import REFERENCE_RIM_MM, CryoSpec, build_freeze_events

__all__ = ["REFERENCE_RIM_MM", "CryoSpec", "build_freeze_events"]
