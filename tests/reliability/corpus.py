"""A corpus of bad inputs: every one must exit 2 with one line naming the field, no traceback.

Each case is ``(id, argv, files)``: ``argv`` may hold ``{tmp}`` (a fresh directory) and
``{<name>}`` for a file of ``files`` (name -> text) written there first. The corpus is data, so
it can be run in-process (typer's test runner), through the real executable, or by hand.

Cases cover every flag of every command, scenario files, output paths and the reports of
issue 12 (the cases it lists are marked ``issue-``).
"""

from __future__ import annotations

PRESET = "sbcc-5pct"

#: a valid scenario file, for variations
GOOD_TOML = """
name = "t"
indication = "sBCC"
site = "trunk"
product = "imiquimod-5%"
area_cm2 = 4.0
assessment_weeks_after_last_dose = 12.0
{extra}
[regimen]
applications_per_week = 5
max_weeks = 6
leave_on_hours = {leave_on}
amount = {amount}
{regimen_extra}
"""


def toml(extra: str = "", leave_on: str = "8", amount: str = "{ sachets = 1 }", regimen_extra=""):
    return GOOD_TOML.format(
        extra=extra, leave_on=leave_on, amount=amount, regimen_extra=regimen_extra
    )


def _cases() -> list[tuple[str, list[str], dict[str, str]]]:
    c: list[tuple[str, list[str], dict[str, str]]] = []

    def add(id_: str, argv: list[str], files: dict[str, str] | None = None) -> None:
        c.append((id_, argv, files or {}))

    # --- the cases issue 12 lists ------------------------------------------------------------
    add("issue-stream-out-proc", ["trial", PRESET, "-n", "4", "--stream", "--out", "/proc/x"])
    for cmd in (
        ["simulate", PRESET],
        ["trial", PRESET, "-n", "2"],
        ["compare", PRESET, "sbcc-5pct-vehicle", "-n", "2"],
        ["calibration-report"],
        ["field"],
        ["demo"],
    ):
        add(f"issue-outdir-is-file-{cmd[0]}", [*cmd, "--out", "{tmp}/afile"], {"afile": "x"})
        add(f"issue-outdir-parent-is-file-{cmd[0]}", [*cmd, "--out", "{afile}/sub"], {"afile": "x"})
        add(f"issue-outdir-proc-{cmd[0]}", [*cmd, "--out", "/proc/imiqsim-x"])
        add(f"issue-outdir-empty-{cmd[0]}", [*cmd, "--out", ""])
    for cmd in (["export", "sbml", PRESET], ["population", PRESET]):
        add(f"issue-outfile-is-dir-{cmd[0]}", [*cmd, "--out", "{tmp}"])
        add(f"issue-outfile-parent-is-file-{cmd[0]}", [*cmd, "--out", "{afile}/x"], {"afile": "x"})
        add(f"issue-outfile-proc-{cmd[0]}", [*cmd, "--out", "/proc/imiqsim-x/y"])
        add(f"issue-outfile-empty-{cmd[0]}", [*cmd, "--out", ""])
    add("issue-checkpoint-is-dir", ["calibrate", "--checkpoint", "{tmp}"])
    add("issue-checkpoint-proc", ["calibrate", "--checkpoint", "/proc/imiqsim-x/c.json"])
    add("issue-population-seed-negative", ["population", PRESET, "--seed", "-1"])
    add("issue-seed-2-64-trial", ["trial", PRESET, "--seed", str(2**64), "--out", "{tmp}/o"])
    add("issue-seed-2-64-population", ["population", PRESET, "--seed", str(2**64)])
    add("issue-seed-2-64-field", ["field", "--seed", str(2**64)])
    add("issue-every-1e-6", ["simulate", PRESET, "--every", "1e-6"])
    for name in ("central_volume_l", "plasma_volume_ml", "visible_threshold_cells"):
        add(f"issue-zero-{name}", ["simulate", PRESET, "--set", f"{name}=0"])
        add(f"issue-zero-{name}-trial", ["trial", PRESET, "-n", "2", "--set", f"{name}=0"])
    add("issue-nk-present-2", ["simulate", PRESET, "--set", "nk_present=2"])
    add("issue-cd8-fraction-1e6", ["simulate", PRESET, "--set", "cd8_fraction=1e6"])
    add("issue-tlr7-hill-0", ["simulate", PRESET, "--set", "tlr7_hill=0"])
    add("issue-tlr7-ec50-0", ["simulate", PRESET, "--set", "tlr7_ec50_ug_ml=0"])
    add("issue-underscore-number", ["simulate", PRESET, "--set", "tlr7_ec50_ug_ml=1_0"])
    add("issue-area-1e-320", ["simulate", "{s.toml}"], {"s.toml": toml().replace("4.0", "1e-320")})
    add("issue-chunk-size-0", ["trial", PRESET, "--chunk-size", "0"])
    add(
        "issue-chunk-size-0-stream",
        ["trial", PRESET, "--chunk-size", "0", "--stream", "--out", "{tmp}/s"],
    )
    add(
        "issue-duplicate-knockout", ["simulate", PRESET, "--knockout", "tlr7", "--knockout", "tlr7"]
    )
    add(
        "issue-duplicate-knockout-sbml",
        ["export", "sbml", PRESET, "--knockout", "nk", "--knockout", "nk", "--out", "{tmp}/m.xml"],
    )
    add("issue-trial-mixed-indications", ["trial", "ak-5pct", "egw-5pct", "-n", "2"])
    add("issue-compare-mixed-indications", ["compare", "ak-5pct", "egw-5pct", "-n", "2"])
    add(
        "issue-compare-mixed-indications-3",
        ["compare", "ak-5pct", "ak-cryo", "sbcc-5pct", "-n", "2"],
    )
    add("issue-simulate-out-empty", ["simulate", PRESET, "--out", ""])
    add(
        "issue-trial-huge-no-force",
        ["trial", PRESET, "--patients", "1000000000000", "--out", "{tmp}/o"],
    )
    add("issue-trial-huge-no-out", ["trial", PRESET, "--patients", "100001"])
    add(
        "issue-trial-huge-stream",
        ["trial", PRESET, "--patients", "1000000000000", "--stream", "--out", "{tmp}/o"],
    )

    # --- --set: syntax, names, numbers, bounds -------------------------------------------
    for i, bad in enumerate(
        [
            "noequals",
            "=3",
            "tlr7_ec50_ug_ml=",
            "tlr7_ec50_ug_ml=abc",
            "tlr7_ec50_ug_ml=inf",
            "tlr7_ec50_ug_ml=nan",
            "tlr7_ec50_ug_ml=-inf",
            "tlr7_ec50_ug_ml=1e999",
            "tlr7_ec50_ug_ml=0x10",
            "tlr7_ec50_ug_ml=1,5",
            "tlr7_ec50_ug_ml=3 4",
            "tlr7_ec50_ug_ml=--1",
            "tlr7_ec50_ug_ml=1e",
            "tlr7_ec50_ug_ml=.",
            "no_such_param=1",
            "tlr7_ec50=1",
            "TLR7_EC50_UG_ML=1",
            "tlr7_ec50_ug_ml=true",
        ]
    ):
        add(f"set-syntax-{i}", ["simulate", PRESET, "--set", bad])
    add("set-twice", ["simulate", PRESET, "--set", "k_nk_kill=1", "--set", "k_nk_kill=2"])
    for name, value in [
        ("ifn_alpha_present", "0.5"),
        ("tnf_alpha_present", "-1"),
        ("pdc_present", "3"),
        ("memory_present", "0.999"),
        ("cd8_present", "2"),
        ("il12_present", "1.0001"),
        ("k_nk_kill", "-0.1"),
        ("k_ctl_kill", "-1e-9"),
        ("k_irf7_on", "-5"),
        ("fraction_excreted_urine", "1.5"),
        ("skin_unbound_fraction", "-0.1"),
        ("cd8_fraction", "2"),
        ("lesion_memory_overlap_3", "1.01"),
        ("flu_hill", "0"),
        ("damage_hill", "-2"),
        ("cryo_hill", "0"),
        ("fu_ts_ec50_ug_ml", "0"),
        ("damage_half", "0"),
        ("nk_kill_half", "-3"),
        ("il6_k_signal", "0"),
        ("il6_serum_symptom_level", "0"),
        ("cryo_t50_s", "0"),
        ("histology_threshold_cells", "0"),
        ("epidermis_thickness_um", "0"),
        ("lesion_thickness_2", "0"),
        ("q_il8_keratinocyte", "-1"),
        ("il8_decay_rate", "-1"),
        ("lesion_seed_rate_9", "-0.2"),
        ("il6_baseline", "-2"),
        ("cream_strength", "1.5"),
        ("tolerance_max", "1.2"),
        ("memory_protection", "-0.1"),
        ("lsr_rest_threshold", "19"),
        ("treated_area_cm2", "0"),
        ("treated_area_cm2", "1e-320"),
        ("treated_area_cm2", "501"),
        ("cream_density_mg_cm3", "0"),
        ("film_exhaustion_mg_cm2", "0"),
        ("t_effector_max", "0"),
        ("lesion_capacity_cells", "0"),
        ("lesion_count_4", "-1"),
        ("lesion_initial_cells_1", "-5"),
        ("surveillance_weight_nk", "-1"),
        ("kp_cream_cm_h", "-1"),
        ("systemic_clearance_l_h", "-1"),
        ("site_permeability", "-1"),
    ]:
        add(f"set-bound-{name}-{value}", ["simulate", PRESET, "--set", f"{name}={value}"])
    add("set-bound-trial", ["trial", PRESET, "-n", "2", "--set", "nk_present=2"])
    add(
        "set-bound-stream",
        ["trial", PRESET, "-n", "2", "--stream", "--out", "{tmp}/s", "--set", "nk_present=2"],
    )
    add(
        "set-bound-sbml",
        ["export", "sbml", PRESET, "--set", "cd8_fraction=7", "--out", "{tmp}/m.xml"],
    )

    # --- knockouts ---------------------------------------------------------------------------
    add("knockout-unknown", ["simulate", PRESET, "--knockout", "tlr8"])
    add("knockout-empty", ["simulate", PRESET, "--knockout", ""])
    add("knockout-case", ["simulate", PRESET, "--knockout", "TLR7"])
    add(
        "knockout-sbml-unknown",
        ["export", "sbml", PRESET, "--knockout", "x", "--out", "{tmp}/m.xml"],
    )

    # --- numbers of every command ------------------------------------------------------------
    for flag, values in {
        "--days": ["0", "-1", "3651", "nan", "inf", "abc", "1e400"],
        "--every": ["0", "-1", "169", "nan", "abc"],
    }.items():
        for v in values:
            add(f"simulate{flag}={v}", ["simulate", PRESET, flag, v])
    for flag, values in {
        "--patients": ["0", "-5", "1.5", "abc", ""],
        "--seed": ["-1", "1.5", "abc", str(2**63)],
        "--workers": ["0", "-1", "257", "abc"],
        "--chunk-size": ["-1", "abc", "2.5"],
        "--followup-years": ["-1", "11", "nan", "inf", "abc"],
        "--immunosuppressed-fraction": ["-0.1", "1.1", "nan", "abc"],
    }.items():
        for v in values:
            add(f"trial{flag}={v}", ["trial", PRESET, flag, v])
    for flag, values in {
        "--patients": ["0", "1000001", "abc"],
        "--seed": ["-1", str(2**64)],
        "--immunosuppressed-fraction": ["-1", "2", "nan"],
    }.items():
        for v in values:
            add(f"population{flag}={v}", ["population", PRESET, flag, v, "--out", "{tmp}/p.csv"])
    for flag, values in {
        "--patients": ["0", "abc", "100001"],
        "--seed": ["-1"],
        "--workers": ["0"],
        "--followup-years": ["-1", "nan"],
    }.items():
        for v in values:
            add(f"compare{flag}={v}", ["compare", PRESET, "sbcc-5pct-vehicle", flag, v])
    add("compare-one-arm", ["compare", PRESET])
    for flag, values in {
        "--rounds": ["0", "11", "abc"],
        "--seed": ["-1"],
        "--patients": ["0"],
    }.items():
        for v in values:
            add(f"calibrate{flag}={v}", ["calibrate", flag, v, "--checkpoint", "{tmp}/c.json"])
    add("calibrate-resume-missing", ["calibrate", "--resume", "--checkpoint", "{tmp}/none.json"])
    for v in ["0", "19", "abc", "100001"]:
        add(
            f"calibration-report--patients={v}",
            ["calibration-report", "--patients", v, "--out", "{tmp}/c"],
        )
    add("calibration-report-seed", ["calibration-report", "--seed", "-3", "--out", "{tmp}/c"])
    for flag, values in {
        "--resolution-mm": ["0", "-1", "nan", "abc"],
        "--seed": ["-1"],
        "--followup-days": ["-1", "nan"],
    }.items():
        for v in values:
            add(f"field{flag}={v}", ["field", flag, v, "--out", "{tmp}/f"])
    for v in ["0", "abc"]:
        add(f"demo--patients={v}", ["demo", "--patients", v, "--out", "{tmp}/d"])
    add("demo--workers=0", ["demo", "--workers", "0", "--out", "{tmp}/d"])

    # --- streamed runs ------------------------------------------------------------------------
    add("stream-no-out", ["trial", PRESET, "--stream"])
    add("resume-no-out", ["trial", PRESET, "--resume"])
    add("scheduler-no-out", ["trial", PRESET, "--scheduler", "tcp://127.0.0.1:9"])
    add(
        "scheduler-file-missing",
        ["trial", PRESET, "--scheduler-file", "{tmp}/none.json", "--out", "{tmp}/s"],
    )
    add(
        "scheduler-file-not-json",
        ["trial", PRESET, "-n", "2", "--scheduler-file", "{sch.json}", "--out", "{tmp}/s"],
        {"sch.json": "not json"},
    )
    add(
        "scheduler-file-no-address",
        ["trial", PRESET, "-n", "2", "--scheduler-file", "{sch.json}", "--out", "{tmp}/s"],
        {"sch.json": "{}"},
    )
    add(
        "scheduler-both",
        [
            "trial",
            PRESET,
            "--scheduler",
            "tcp://x:1",
            "--scheduler-file",
            "{sch.json}",
            "--out",
            "{tmp}/s",
        ],
        {"sch.json": "{}"},
    )
    add(
        "stream-out-is-file",
        ["trial", PRESET, "-n", "2", "--stream", "--out", "{afile}"],
        {"afile": "x"},
    )
    add(
        "stream-into-in-memory-dir",
        ["trial", PRESET, "-n", "2", "--stream", "--out", "{tmp}"],
        {"outcomes.parquet": "x"},
    )
    add(
        "in-memory-into-stream-dir",
        ["trial", PRESET, "-n", "2", "--out", "{tmp}"],
        {"manifest.json": "{}"},
    )
    add(
        "stream-patients-over-cap",
        ["trial", PRESET, "--patients", str(10**9 + 1), "--stream", "--out", "{tmp}/s"],
    )

    # --- presets, files and commands ---------------------------------------------------------
    for i, arg in enumerate(
        ["nope", "ak-5pct.toml", "AK-5PCT", "", "{tmp}", "{afile}", "/proc/none.toml"]
    ):
        add(f"scenario-name-{i}", ["simulate", arg], {"afile": "x"})
    add("trial-unknown-arm", ["trial", PRESET, "nope"])
    add("parameters-unknown-module", ["parameters", "--module", "nope"])
    add("no-such-command", ["simulat"])
    add("no-such-option", ["simulate", PRESET, "--dayz", "3"])
    add("missing-argument", ["simulate"])
    add("missing-option-value", ["simulate", PRESET, "--days"])
    add("extra-argument", ["simulate", PRESET, "extra"])
    add("export-no-format", ["export", "pdf"])

    # --- scenario files ----------------------------------------------------------------------
    bad_files = {
        "not-toml": "name = ",
        "binary": "\x00\x01\x02",
        "empty": "",
        "unknown-key": toml('colour = "red"'),
        "area-zero": toml().replace("4.0", "0.0"),
        "area-negative": toml().replace("4.0", "-1.0"),
        "area-string": toml().replace("4.0", '"4"'),
        "area-huge": toml().replace("4.0", "1e6"),
        "area-nan": toml().replace("4.0", "nan"),
        "area-inf": toml().replace("4.0", "inf"),
        "indication-unknown": toml().replace('"sBCC"', '"melanoma"'),
        "site-unknown": toml().replace('"trunk"', '"elbow"'),
        "product-unknown": toml().replace('"imiquimod-5%"', '"aspirin"'),
        "assessment-negative": toml().replace("= 12.0", "= -1.0"),
        "leave-on-zero": toml(leave_on="0"),
        "leave-on-25": toml(leave_on="25"),
        "leave-on-string": toml(leave_on='"8"'),
        "amount-zero-sachets": toml(amount="{ sachets = 0 }"),
        "amount-two-kinds": toml(amount="{ sachets = 1, cream_mg = 250 }"),
        "amount-negative-mg": toml(amount="{ cream_mg = -1 }"),
        "parameters-switch-2": toml("[parameters]\nnk_present = 2"),
        "parameters-fraction": toml("[parameters]\ncd8_fraction = 1e6"),
        "parameters-hill-0": toml("[parameters]\ntlr7_hill = 0"),
        "parameters-ec50-0": toml("[parameters]\ntlr7_ec50_ug_ml = 0"),
        "parameters-volume-0": toml("[parameters]\ncentral_volume_l = 0"),
        "parameters-unknown": toml("[parameters]\nno_such = 1"),
        "parameters-string": toml('[parameters]\ntlr7_hill = "1"'),
        "parameters-bool": toml("[parameters]\ntlr7_hill = true"),
        "knockouts-duplicate": toml('knockouts = ["tlr7", "tlr7"]'),
        "knockouts-unknown": toml('knockouts = ["tlr9"]'),
        "knockouts-not-list": toml('knockouts = "tlr7"'),
        "repeat-courses-negative": toml(regimen_extra="repeat_courses = -1"),
        "repeat-courses-float": toml(regimen_extra="repeat_courses = 1.5"),
        "apw-zero": toml().replace("applications_per_week = 5", "applications_per_week = 0"),
        "max-weeks-negative": toml().replace("max_weeks = 6", "max_weeks = -6"),
        "days-zero": toml("days = 0"),
        "days-huge": toml("days = 1e9"),
        "name-empty": toml().replace('name = "t"', 'name = ""'),
    }
    for key, text in bad_files.items():
        add(f"file-{key}", ["simulate", "{s.toml}"], {"s.toml": text})
    add(
        "file-in-trial",
        ["trial", "{s.toml}", "-n", "2"],
        {"s.toml": bad_files["parameters-switch-2"]},
    )
    add(
        "file-in-sbml",
        ["export", "sbml", "{s.toml}", "--out", "{tmp}/m.xml"],
        {"s.toml": bad_files["parameters-fraction"]},
    )
    return c


CASES = _cases()

#: scenario-file floors that need a one-line change in treatments/cream.py (NOTES-reliab.md):
#: leave_on_hours >= 0.1 h and cream_mg >= 1 mg. Run when that change is in.
CREAM_FLOOR_CASES = [
    ("issue-leave-on-1e-300", ["simulate", "{s.toml}"], {"s.toml": toml(leave_on="1e-300")}),
    (
        "issue-cream-mg-1e-300",
        ["simulate", "{s.toml}"],
        {"s.toml": toml(amount="{ cream_mg = 1e-300 }")},
    ),
]

#: zeros that mean "none" and must stay valid (scenario files; exit 0 with --days 1)
VALID_ZERO_FILES = {
    "assessment-0": toml().replace("= 12.0", "= 0.0"),
    "repeat-0": toml(regimen_extra="repeat_courses = 0\nrepeat_check_weeks = 0"),
}
