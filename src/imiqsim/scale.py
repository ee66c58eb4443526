"""Large streamed virtual trials: moved to :mod:`imiqsim.trial.streaming` (names kept here)."""

from imiqsim.trial import streaming as _streaming
from imiqsim.trial.streaming import *  # noqa: F403 - the same public names

__all__ = list(_streaming.__all__)
