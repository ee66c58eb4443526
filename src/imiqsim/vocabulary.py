"""Every name that more than one part of imiqsim must agree on, written once.

Event kinds and gates (read by the treatments that emit events, the engine's
kernel template, the skin field and the SBML export), integration status
codes, time units and the disclaimer. The mechanism's own vocabulary
(states, cytokines, cells, knockouts, indications, sites) lives with the model
(:mod:`imiqsim.model`), read from its definition and tables.

Examples
--------
>>> from imiqsim.vocabulary import APPLY, EVENT_KINDS, STATUS_TEXT
>>> EVENT_KINDS[APPLY]
'APPLY'
>>> STATUS_TEXT[0]
'ok'
"""

from __future__ import annotations

__all__ = [
    "APPLY",
    "CHECK",
    "DISCLAIMER",
    "DISCLAIMER_SHORT",
    "EVENT_KINDS",
    "FOOTER",
    "FREEZE",
    "GATES",
    "GATE_ALWAYS",
    "GATE_NOT_CLEAR_AT_CHECK",
    "GATE_UNTIL_CLEAR",
    "HOURS_PER_DAY",
    "HOURS_PER_WEEK",
    "HOURS_PER_YEAR",
    "METHODS",
    "STATUS_FAILED_STEPS",
    "STATUS_NON_FINITE",
    "STATUS_OK",
    "STATUS_STEP_UNDERFLOW",
    "STATUS_TEXT",
    "WASH",
]

# ------------------------------------------------------------------------ time (engine unit: hours)
HOURS_PER_DAY = 24.0
HOURS_PER_WEEK = 168.0
HOURS_PER_YEAR = 8766.0  # 365.25 days

# --------------------------------------------------------------------------- event kinds
# The numeric order is also the tie-break order when two events share a time
# stamp (APPLY before WASH before CHECK before FREEZE).
APPLY = 1  # cream put on the skin (amount: mg of drug)
WASH = 2  # cream washed off
CHECK = 3  # a clinic visit that records whether the patient is clear (for repeat courses)
FREEZE = 4  # a cryotherapy session (amount: freeze time in s)

EVENT_KINDS: dict[int, str] = {APPLY: "APPLY", WASH: "WASH", CHECK: "CHECK", FREEZE: "FREEZE"}

# --------------------------------------------------------------------------- gates
# Conditions the engine evaluates per patient before giving an APPLY.
GATE_ALWAYS = 0
GATE_UNTIL_CLEAR = 1  # skip once the patient has no visible lesion, and ever after
GATE_NOT_CLEAR_AT_CHECK = 2  # give only if NOT clear at the most recent CHECK

GATES: dict[int, str] = {
    GATE_ALWAYS: "always",
    GATE_UNTIL_CLEAR: "until clear",
    GATE_NOT_CLEAR_AT_CHECK: "only if not clear at the last check",
}

# --------------------------------------------------------------------------- integration
STATUS_OK = 0
STATUS_FAILED_STEPS = 1
STATUS_NON_FINITE = 2
STATUS_STEP_UNDERFLOW = 3

STATUS_TEXT: dict[int, str] = {
    STATUS_OK: "ok",
    STATUS_FAILED_STEPS: "too many steps",
    STATUS_NON_FINITE: "non-finite state",
    STATUS_STEP_UNDERFLOW: "step size underflow",
}

#: integration methods: explicit Dormand-Prince 5(4), the L-stable Rosenbrock method Rodas4 with
#: the generated analytic Jacobian, or DP5 switching per patient to Rodas4 on stiffness
METHODS: dict[str, int] = {"dp5": 0, "rosenbrock": 1, "auto": 2}

# --------------------------------------------------------------------------- the disclaimer
#: the short form, for footers, JSON ``disclaimer`` keys and help texts
DISCLAIMER_SHORT = "research and teaching software, not a medical device"
#: the full sentence, for reports and summaries
DISCLAIMER = (
    "imiqsim is research and teaching software, not a medical device: "
    "its outputs are model predictions, not clinical evidence and not treatment advice"
    " for any patient."
)
#: the line under every figure
FOOTER = f"imiqsim \u2014 {DISCLAIMER_SHORT}"
