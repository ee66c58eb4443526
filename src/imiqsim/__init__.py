"""imiqsim: a mechanistic simulator of topical imiquimod therapy.

Research and teaching software, not a medical device.
"""

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy imports keep `import imiqsim` and `imiqsim --help` fast.
    if name in ("simulate", "SimulationResult", "DISCLAIMER"):
        from imiqsim import simulation as _sim

        return getattr(_sim, name)
    if name in ("Scenario", "load_scenario", "resolve", "list_presets", "load_preset"):
        from imiqsim import scenario as _sc

        return getattr(_sc, name)
    if name in ("sensitivity", "scan", "optimise"):
        # the functions, not the submodules of imiqsim.analysis that share their names
        from importlib import import_module

        return getattr(import_module(f"imiqsim.analysis.{name}"), name)
    if name == "get_model":
        from imiqsim.model import get_model

        return get_model
    raise AttributeError(f"module 'imiqsim' has no attribute {name!r}")


__all__ = [
    "simulate",
    "SimulationResult",
    "Scenario",
    "load_scenario",
    "list_presets",
    "get_model",
    "sensitivity",
    "scan",
    "optimise",
    "__version__",
]
