"""What every figure shares: the Agg figure, unit spellings, the footer, and the model's series.

The *names* of the plotted series (cytokines, immune cells, kill tallies) come
from the model definition (:mod:`imiqsim.model`), so a new cytokine, cell or
kill mechanism appears in the figures without editing them. This module only
adds how a known name is drawn (its label and colour); a name it does not know
gets a readable label and a colour from a fallback palette.

Examples
--------
>>> from imiqsim.outputs.style import label, pretty_unit
>>> pretty_unit("cells/mm2")
'cells/mm²'
>>> label("ifn_alpha"), label("nk_cells"), label("nk_cells", short=True)
('IFN-α', 'NK cells', 'NK')
>>> label("il23")                     # a name without a drawing entry still gets a label
'il23'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from imiqsim.vocabulary import FOOTER

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DRUG_LAYERS",
    "FOOTER",
    "LSR_COMPONENTS",
    "TLR7_SIGNALS",
    "circulating_cells",
    "colour",
    "cytokines",
    "kill_tallies",
    "label",
    "new_figure",
    "ordered",
    "pretty_unit",
    "skin_cells",
]

_UNITS = {"ug/mL": "\u00b5g/mL", "cells/mm2": "cells/mm\u00b2", "cells/uL": "cells/\u00b5L"}
_GREEK = (("alpha", "\u03b1"), ("beta", "\u03b2"), ("gamma", "\u03b3"), ("kappa", "\u03ba"))

#: labels of known series, in their customary order (figures list known names in this order and
#: new names after them, in the model's order)
_LABELS = {
    "pdc": "pDC",
    "macrophage": "macrophages",
    "dendritic_cells": "DC / Langerhans",
    "nk_cells": "NK cells",
    "cd4_th1": "CD4 Th1",
    "cd8_ctl": "CD8 CTL",
    "memory_t": "memory T",
    "t_effector": "effector T (blood)",
}
#: shorter labels where a legend is crowded (the cascade's cell panel)
_SHORT = {"dendritic_cells": "DC/LC", "nk_cells": "NK"}

_COLOURS = {
    # cytokines
    "ifn_alpha": "#1f77b4",
    "tnf_alpha": "#d62728",
    "il1": "#ff7f0e",
    "il6": "#2ca02c",
    "il8": "#8c564b",
    "il12": "#9467bd",
    # cells
    "macrophage": "#d62728",
    "pdc": "#9467bd",
    "dendritic_cells": "#2ca02c",
    "nk_cells": "#ff7f0e",
    "cd4_th1": "#17becf",
    "cd8_ctl": "#1f77b4",
    "t_effector": "#393b79",
    "memory_t": "#bcbd22",
    # kill tallies
    "killed_baseline": "#7f7f7f",
    "killed_nk": "#ff7f0e",
    "killed_ctl": "#1f77b4",
    "killed_macrophage": "#d62728",
    "killed_death_receptor": "#9467bd",
    "killed_memory": "#bcbd22",
}
#: colours for names without an entry (Okabe-Ito, then darker shades)
_FALLBACK = ("#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#0072B2", "#D55E00", "#000000", "#8c6d31")


#: the drug-by-layer panel: (state, label, colour); the cascade figure and the dashboard draw it
DRUG_LAYERS = [
    ("film", "film", "#8c564b"),
    ("stratum_corneum", "stratum corneum", "#ff7f0e"),
    ("epidermis", "epidermis", "#2ca02c"),
    ("dermis", "dermis", "#d62728"),
    ("blood", "blood", "#9467bd"),
]
#: the TLR7-signalling panel: (variable, label, colour, line style)
TLR7_SIGNALS = [
    ("tlr7_occupancy", "TLR7 occupancy", "#1f77b4", "-"),
    ("tlr7_activation", "TLR7 activation", "#17becf", "-"),
    ("tlr7_tolerance", "TLR7 tolerance", "#7f7f7f", "--"),
    ("pdc_irf7", "pDC IRF7", "#9467bd", "-"),
    ("macrophage_nfkb", "macrophage NF-\u03baB", "#d62728", "-"),
    ("dc_activation", "DC activation", "#2ca02c", "-"),
]
#: the six local-skin-reaction components: (observable, label, colour)
LSR_COMPONENTS = [
    ("erythema_score", "erythema", "#e377c2"),
    ("oedema_score", "oedema", "#ffbb78"),
    ("weeping_score", "weeping", "#9edae5"),
    ("erosion_score", "erosion", "#d62728"),
    ("crusting_score", "crusting", "#8c564b"),
    ("flaking_score", "flaking", "#c7c7c7"),
]


def pretty_unit(unit: str) -> str:
    """A unit as printed in figures (``ug/mL`` -> ``µg/mL``, ``cells/mm2`` -> ``cells/mm²``)."""
    return _UNITS.get(unit, unit)


def _greek(text: str) -> str:
    for word, letter in _GREEK:
        text = text.replace(f"-{word}", f"-{letter}")
    return text


def label(name: str, *, short: bool = False) -> str:
    """How a series is named in a figure.

    Cytokines take the model's own label (``IFN-alpha``, written ``IFN-α``);
    cells and other known series a drawing label; anything else its name.
    """
    if short and name in _SHORT:
        return _SHORT[name]
    if name in _LABELS:
        return _LABELS[name]
    from imiqsim.model import cytokines as stage

    return _greek(stage.LABELS.get(name, name))


def colour(name: str, others: Sequence[str] = ()) -> str:
    """The colour of a series; a name without an entry gets the next fallback colour.

    ``others`` are the names drawn together with it, so that two new names in
    one panel get different fallback colours.
    """
    if name in _COLOURS:
        return _COLOURS[name]
    unknown = [n for n in others if n not in _COLOURS]
    i = unknown.index(name) if name in unknown else 0
    return _FALLBACK[i % len(_FALLBACK)]


def ordered(names: Iterable[str]) -> list[str]:
    """``names`` with the known ones in their customary order first, the rest as given."""
    rank = {n: i for i, n in enumerate(_LABELS)}
    names = list(dict.fromkeys(names))
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), names.index(n)))


# --------------------------------------------------------------------------- the model's series


def cytokines() -> tuple[str, ...]:
    """The model's cytokines (local tissue levels; ``<name>_serum`` are the serum levels)."""
    from imiqsim.model import CYTOKINES

    return CYTOKINES


def skin_cells() -> tuple[str, ...]:
    """Immune cells in the treated skin (cells/mm2), in the model's order."""
    from imiqsim.model import SKIN_CELLS

    return SKIN_CELLS


def circulating_cells() -> tuple[str, ...]:
    """Lesion-specific T cells in blood (the cell stage's cells/uL states), in the model's order."""
    from imiqsim.model import get_model

    return tuple(s.name for s in get_model().states if s.module == "cells" and s.unit == "cells/uL")


def kill_tallies() -> dict[str, tuple[str, str]]:
    """Cumulative lesion-cell kill tallies: state -> (label, kind ``background|immune|direct``)."""
    from imiqsim.model import get_model

    return dict(get_model().kill_tallies)


# --------------------------------------------------------------------------- figures


def new_figure(
    figsize: tuple[float, float],
    *,
    dpi: float | None = None,
    layout: Literal["constrained", "compressed", "tight"] | None = None,
) -> Figure:
    """A :class:`matplotlib.figure.Figure` on an Agg canvas.

    No pyplot, no GUI backend, nothing to close.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout=layout)  # dpi None: matplotlib's default
    FigureCanvasAgg(fig)
    return fig
