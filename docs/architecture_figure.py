"""Draw docs/architecture.png: imiqsim's packages along the data flow.

.venv/bin/python docs/architecture_figure.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

#: (title, modules, x, y): one box per stage of the data flow, left to right, top to bottom
BOXES = [
    ("input", "scenario.py  presets/*.toml\nvalidation.py  errors.py", 0.0, 2.2),
    ("treatments/", "base.py  products.py\ncream.py  cryotherapy.py\nfluorouracil.py", 1.0, 2.2),
    (
        "model/",
        "expr + spec (_dsl.py)\none module per stage\nparameters.csv\nindications.csv  sites.csv",
        2.0,
        2.2,
    ),
    (
        "engine/",
        "codegen.py  cache.py\nsteppers.py (DP5, Rodas4)\npolicy.py (gates, rest)\nrun.py",
        3.0,
        2.2,
    ),
    (
        "trial/",
        "outcomes.py  endpoints.py\n(one registry)\nexecutors.py  run.py\nstreaming.py  stats.py",
        4.0,
        2.2,
    ),
    ("outputs/", "writers  figures  HTML\n(patient, trial,\ncompare, field)", 5.0, 2.2),
    ("front ends", "cli.py (parse, call,\nprint)  web/ (dashboard)\nPython API", 6.0, 2.2),
    ("population.py", "virtual patients\n(seed, patient) streams", 1.0, 0.7),
    (
        "spatial/",
        "spec  layout  site_events\nsimulate  results\n(engine steppers + policy)",
        3.0,
        0.55,
    ),
    ("export/", "SBML (events from\nthe model)\npopulation CSV", 4.0, 3.6),
]
#: (from, to, side of the first box, side of the second box)
ARROWS = [
    ("input", "treatments/", "right", "left"),
    ("treatments/", "model/", "right", "left"),
    ("model/", "engine/", "right", "left"),
    ("engine/", "trial/", "right", "left"),
    ("trial/", "outputs/", "right", "left"),
    ("outputs/", "front ends", "right", "left"),
    ("input", "population.py", "bottom", "left"),
    ("population.py", "trial/", "right", "bottom"),
    ("engine/", "spatial/", "bottom", "top"),
    ("spatial/", "outputs/", "right", "bottom"),
    ("model/", "export/", "top", "left"),
    ("export/", "front ends", "right", "top"),
]
VOCAB = "vocabulary.py: event kinds, gates, status codes, time units, the disclaimer (read by all)"


OUT = Path(__file__).with_name("architecture.png")


def main(path: Path = OUT) -> Path:
    fig, ax = plt.subplots(figsize=(14, 6))
    ax.set_xlim(-0.55, 6.55)
    ax.set_ylim(-0.3, 4.2)
    ax.axis("off")
    w, h = 0.92, 0.95
    centre = {}
    for title, body, x, y in BOXES:
        ax.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - h / 2),
                w,
                h,
                boxstyle="round,pad=0.02",
                fc="#eef4fb",
                ec="#0072B2",
                lw=1.2,
            )
        )
        ax.text(x, y + h / 2 - 0.12, title, ha="center", va="center", fontsize=10, weight="bold")
        ax.text(x, y - 0.08, body, ha="center", va="center", fontsize=7.5, family="monospace")
        centre[title] = (x, y)
    offset = {"left": (-w / 2, 0), "right": (w / 2, 0), "top": (0, h / 2), "bottom": (0, -h / 2)}
    for a, b, side_a, side_b in ARROWS:
        start = tuple(c + d for c, d in zip(centre[a], offset[side_a], strict=True))
        end = tuple(c + d for c, d in zip(centre[b], offset[side_b], strict=True))
        ax.add_patch(
            FancyArrowPatch(
                start, end, arrowstyle="-|>", mutation_scale=12, color="#555555", lw=1.0
            )
        )
    ax.text(3.0, -0.2, VOCAB, ha="center", fontsize=8.5, style="italic")
    ax.set_title(
        "imiqsim: scenario -> treatment events -> model -> engine -> outcomes -> endpoints"
        " -> outputs",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


if __name__ == "__main__":
    print(main())
