"""The browser dashboard: ``imiqsim serve`` (Panel, served from this machine only).

Five pages: Patient (one typical patient's cascade, runs overlaid), Trial (a virtual trial's
endpoints, bands and waterfall), Compare (imiquimod vs cryotherapy side by side), Field (the skin
field's maps over time) and Model (equations and the parameter table). Simulations run in a pool
of worker processes (:mod:`imiqsim.web.jobs`); everything they touch of imiqsim goes through one
adapter, :mod:`imiqsim.web.backend`.
"""

from __future__ import annotations

__all__ = ["serve"]


def __getattr__(name: str):
    # lazy: importing imiqsim.web (e.g. in a worker process) must not import Panel
    if name == "serve":
        from imiqsim.web.app import serve

        return serve
    raise AttributeError(f"module 'imiqsim.web' has no attribute {name!r}")
