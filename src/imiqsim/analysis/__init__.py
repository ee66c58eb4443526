"""Analysis tools: global sensitivity, parameter and regimen scans, a regimen optimiser.

Each evaluates virtual trials with common random numbers (the same virtual patients at every
point): :func:`imiqsim.sensitivity` (SALib Sobol and Morris, module
:mod:`imiqsim.analysis.sensitivity`), :func:`imiqsim.scan` (grids of parameters and regimen
fields, :mod:`imiqsim.analysis.scan`) and :func:`imiqsim.optimise` (the Pareto front of efficacy
vs tolerability under limits with Optuna NSGA-II, :mod:`imiqsim.analysis.optimise`). What they
share: :mod:`imiqsim.analysis.factors` (what can vary, ranges by provenance) and
:mod:`imiqsim.analysis.evaluate` (a virtual trial at a sample point). Research and teaching
software, not a medical device.
"""
