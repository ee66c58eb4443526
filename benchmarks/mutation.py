"""Mutation check: which mechanism tests go red when a key rate or a threshold is changed.

Each mutation runs the mechanism, trial and cryotherapy tests in a fresh pytest process and
lists the tests that fail; a mutation no test catches is a hole in the suite (exit status 1).

Two kinds of mutation, neither needing a hook in production code:

* a parameter times a factor (``k_ctl_kill*0.1``): pytest runs with ``IMIQSIM_MUTATION`` set,
  and ``tests/conftest.py`` applies it through the model's ordinary parameter overrides to every
  parameter vector the tests resolve (per indication: the indication's value times the factor);
* a source edit (the partial-clearance definition, a literal in ``trial/outcomes.py``): the
  package is copied to a temporary folder, the one line is changed there (the script stops if
  the pattern is not found exactly once) and pytest imports the copy.

Before the mutations, the same tests run unmutated and must all pass (else nothing can be
concluded). Tests that start worker processes or compare against pinned numbers are left out:
the first would see the mutation in one process only, the second would catch everything.

Usage (from the repository root)::

    PYTHONPATH=src nice -n 15 .venv/bin/python benchmarks/mutation.py            # all, ~15 min
    PYTHONPATH=src nice -n 15 .venv/bin/python benchmarks/mutation.py --only k_ctl_kill --list
    ... benchmarks/mutation.py --markdown docs/mutation.md                       # write the table

Research and teaching software, not a medical device.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the tests the mutations are run against: mechanism, effect sizes, trial logic, cryotherapy
TEST_PATHS = (
    "tests/model",
    "tests/trial/test_trial.py",
    "tests/treatments/test_cryotherapy.py",
)
#: left out: worker processes (the mutation is in-process), SBML round trips (no model question),
#: bad-input checks (no numbers)
DESELECT = "not workers and not dask and not worker_process and not sbml and not bad"


@dataclass(frozen=True)
class Mutation:
    """One mutation: a parameter times a factor, or a one-line source edit."""

    label: str
    why: str
    parameter: str | None = None
    factor: float = 1.0
    file: str | None = None  # relative to src/imiqsim
    pattern: str | None = None  # regular expression, must match exactly once
    replacement: str | None = None


MUTATIONS: tuple[Mutation, ...] = (
    Mutation("k_ctl_kill x0.1", "CTL kill rate (lesions)", "k_ctl_kill", 0.1),
    Mutation("k_nk_kill x0.1", "NK kill rate (lesions)", "k_nk_kill", 0.1),
    Mutation("tlr7_ec50_ug_ml x10", "TLR7 EC50 (tlr7)", "tlr7_ec50_ug_ml", 10.0),
    Mutation(
        "ifn_growth_inhibition x0.1",
        "IFN-alpha growth inhibition, each indication's value (lesions)",
        "ifn_growth_inhibition",
        0.1,
    ),
    Mutation("k_memory_kill x0.1", "memory T-cell kill rate (lesions)", "k_memory_kill", 0.1),
    Mutation(
        "death_receptor_kill_max x0.1",
        "death-receptor apoptosis, each indication's value (lesions: sBCC)",
        "death_receptor_kill_max",
        0.1,
    ),
    Mutation(
        "partial clearance <=50% left",
        "partial-clearance threshold doubled (>=50% instead of >=75% fewer lesions)",
        file="trial/outcomes.py",
        pattern=r"vis_a <= 0\.25 \* vis0",
        replacement="vis_a <= 0.5 * vis0",
    ),
    Mutation(
        "partial clearance <=12.5% left",
        "partial-clearance threshold halved (>=87.5% fewer lesions)",
        file="trial/outcomes.py",
        pattern=r"vis_a <= 0\.25 \* vis0",
        replacement="vis_a <= 0.125 * vis0",
    ),
    Mutation(
        "visible_threshold_cells x2", "clinical detection limit", "visible_threshold_cells", 2.0
    ),
    Mutation(
        "visible_threshold_cells x0.5", "clinical detection limit", "visible_threshold_cells", 0.5
    ),
    Mutation(
        "histology_threshold_cells x2",
        "histological detection limit",
        "histology_threshold_cells",
        2.0,
    ),
    Mutation(
        "histology_threshold_cells x0.5",
        "histological detection limit",
        "histology_threshold_cells",
        0.5,
    ),
    # one key rate of each remaining stage, both ways where one way could hide
    Mutation("kp_cream_cm_h x10", "skin permeability (pk)", "kp_cream_cm_h", 10.0),
    Mutation("kp_cream_cm_h x0.1", "skin permeability (pk)", "kp_cream_cm_h", 0.1),
    Mutation("ifn_alpha_decay_rate x10", "IFN-alpha decay (cytokines)", "ifn_alpha_decay_rate", 10),
    Mutation(
        "ifn_alpha_decay_rate x0.1", "IFN-alpha decay (cytokines)", "ifn_alpha_decay_rate", 0.1
    ),
    Mutation("k_t_infiltration x0.1", "T-cell homing (cells)", "k_t_infiltration", 0.1),
    Mutation("k_vascular_on x10", "vascular inflammation (reactions)", "k_vascular_on", 10.0),
    Mutation("k_vascular_on x0.1", "vascular inflammation (reactions)", "k_vascular_on", 0.1),
    Mutation("cryo_log_kill_max x0.1", "freeze kill (cryo)", "cryo_log_kill_max", 0.1),
)

_FAILED = re.compile(r"^(FAILED|ERROR) (\S+)", re.MULTILINE)


def _pytest(env: dict[str, str], paths: tuple[str, ...]) -> tuple[int, list[str], float]:
    """Run pytest once; (exit code, failing test ids, seconds)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", "-k", DESELECT]
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd + list(paths), cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    out = proc.stdout + proc.stderr
    failed = sorted({m.group(2) for m in _FAILED.finditer(out)})
    if proc.returncode not in (0, 1):  # 2-5: interrupted, internal or usage error, no tests
        sys.stderr.write(out[-4000:])
        raise SystemExit(f"pytest could not run (exit {proc.returncode}); see above")
    return proc.returncode, failed, time.perf_counter() - t0


def _env(src: Path, mutation: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(ROOT / "tests")])
    env.pop("IMIQSIM_MUTATION", None)
    if mutation:
        env["IMIQSIM_MUTATION"] = mutation
    return env


def _patched_source(m: Mutation, tmp: Path) -> Path:
    """A copy of ``src/`` with the mutation's one-line edit; its path."""
    assert m.file and m.pattern and m.replacement is not None
    dst = tmp / "src"
    shutil.copytree(ROOT / "src", dst, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    target = dst / "imiqsim" / m.file
    text = target.read_text(encoding="utf-8")
    new, n = re.subn(m.pattern, m.replacement, text)
    if n != 1:
        raise SystemExit(
            f"mutation {m.label!r}: pattern {m.pattern!r} found {n} times in src/imiqsim/{m.file}"
            " (expected once): update the mutation to the code"
        )
    target.write_text(new, encoding="utf-8")
    return dst


def run(
    mutations: tuple[Mutation, ...], paths: tuple[str, ...]
) -> list[tuple[Mutation, list[str], float]]:
    """Run the unmutated baseline, then each mutation; the failing tests of each."""
    code, failed, secs = _pytest(_env(ROOT / "src", None), paths)
    print(f"baseline (no mutation): {'green' if code == 0 else 'RED'} in {secs:.0f} s", flush=True)
    if code != 0:
        raise SystemExit(
            "the unmutated tests fail, so no mutation can be judged:\n  " + "\n  ".join(failed)
        )
    rows = []
    for m in mutations:
        with tempfile.TemporaryDirectory(prefix="imiqsim-mutation-") as tmp:
            if m.parameter:
                env = _env(ROOT / "src", f"{m.parameter}*{m.factor:g}")
            else:
                env = _env(_patched_source(m, Path(tmp)), None)
            _, failed, secs = _pytest(env, paths)
        rows.append((m, failed, secs))
        print(f"{m.label:34s} {len(failed):3d} red  ({secs:.0f} s)", flush=True)
    return rows


def _short(test_id: str) -> str:
    path, _, name = test_id.partition("::")
    return f"{Path(path).stem}::{name}"


def table(rows: list[tuple[Mutation, list[str], float]], list_tests: bool = True) -> str:
    """The result as a Markdown table: mutation, what it changes, red tests."""
    lines = ["| mutation | what it changes | tests red | which (file::test) |", "|---|---|---|---|"]
    for m, failed, _ in rows:
        which = "<br>".join(_short(t) for t in failed) if list_tests else ""
        if not failed:
            which = "**none: not caught**"
        lines.append(f"| {m.label} | {m.why} | {len(failed)} | {which} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="TEXT", help="mutations whose label contains TEXT")
    ap.add_argument("--list", action="store_true", help="print the red tests of each mutation")
    ap.add_argument("--markdown", type=Path, help="write the table to this Markdown file")
    ap.add_argument("--paths", nargs="+", default=list(TEST_PATHS), help="test paths to run")
    args = ap.parse_args(argv)
    chosen = MUTATIONS
    if args.only:
        chosen = tuple(m for m in MUTATIONS if any(s in m.label for s in args.only))
        if not chosen:
            ap.error(
                f"--only {args.only}: no mutation label contains it; labels: "
                + ", ".join(m.label for m in MUTATIONS)
            )
    t0 = time.perf_counter()
    rows = run(chosen, tuple(args.paths))
    text = table(rows)
    print()
    print(text if args.list else table(rows, list_tests=False))
    print(
        f"\n{len(rows)} mutations in {time.perf_counter() - t0:.0f} s; "
        f"command: PYTHONPATH=src python benchmarks/mutation.py {' '.join(argv or sys.argv[1:])}"
    )
    if args.markdown:
        args.markdown.write_text(
            "# Mutation check\n\n(`benchmarks/mutation.py`; research and teaching software, not a"
            " medical device)\n\n" + text + "\n",
            encoding="utf-8",
        )
    missed = [m.label for m, failed, _ in rows if not failed]
    if missed:
        print("not caught by any test: " + ", ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
