"""Interval estimates for trial endpoints: moved to :mod:`imiqsim.trial.stats` (names kept here)."""

from imiqsim.trial.stats import (
    Z95,
    clopper_pearson_ci,
    median_ci,
    newcombe_diff_ci,
    proportion,
    wilson_ci,
)

__all__ = ["Z95", "clopper_pearson_ci", "median_ci", "newcombe_diff_ci", "proportion", "wilson_ci"]
