"""Files of a skin-field simulation: NetCDF maps and time courses, lesion table, key-day strip, GIF.

>>> from imiqsim.spatial import FieldSpec, simulate_field
>>> from imiqsim.outputs.field import write_field_outputs
>>> res = simulate_field(FieldSpec("ak-5pct", resolution_mm=5))     # doctest: +SKIP
>>> write_field_outputs(res, "out/field")                           # doctest: +SKIP

The data files are written before the figures, so a plotting failure never
loses them. Every figure and the lesion table carry the footer
(:data:`imiqsim.vocabulary.FOOTER`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imiqsim.errors import InputError
from imiqsim.outputs.files import atomic_path, figure_step, write_text_atomic
from imiqsim.outputs.style import FOOTER, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    # the field package imports this module for its public API: no cycle at runtime
    from imiqsim.spatial import FieldResult

#: panels of the strip and of the animation: variable, title, colour map, scaling
PANELS = (
    ("lesion_cells", "lesion cells / mm2", "magma", "log"),
    ("erythema_score", "erythema (0-3)", "Reds", "fixed3"),
    ("immune_infiltrate", "infiltrate (CTL+NK+MΦ) / mm2", "viridis", "linear"),
)
KEY_LABELS = {
    "baseline": "baseline",
    "mid_treatment": "mid-treatment",
    "end_of_treatment": "end of treatment",
    "assessment": "assessment",
    "end_of_followup": "end of follow-up",
}
MAX_GIF_FRAMES = 80


def _norms(maps):
    from matplotlib.colors import LogNorm, Normalize

    out: dict[str, Normalize] = {}
    for var, _, _, scale in PANELS:
        a = maps[var].values
        if scale == "log":
            hi = float(np.nanmax(a)) if a.size else 1.0
            hi = max(hi, 10.0)
            out[var] = LogNorm(vmin=max(hi * 1e-4, 1e-3), vmax=hi, clip=True)
        elif scale == "fixed3":
            out[var] = Normalize(vmin=0.0, vmax=3.0, clip=True)
        else:
            out[var] = Normalize(
                vmin=0.0, vmax=max(float(np.nanmax(a)) if a.size else 1.0, 1e-9), clip=True
            )
    return out


def _extent(maps):
    x, y = maps["x"].values, maps["y"].values
    dx = float(x[1] - x[0]) if x.size > 1 else 2 * float(x[0])
    dy = float(y[1] - y[0]) if y.size > 1 else 2 * float(y[0])
    return (x[0] - dx / 2, x[-1] + dx / 2, y[0] - dy / 2, y[-1] + dy / 2)


def _outline_lesions(ax, result: FieldResult) -> None:
    """Thin circles where the lesions were placed (dashed: not visible at baseline)."""
    from matplotlib.patches import Circle

    thr = result.layout.visible_threshold_cells
    for L in result.layout.lesions:
        ax.add_patch(
            Circle(
                (L.x_mm, L.y_mm),
                L.radius_mm,
                fill=False,
                lw=0.6,
                color="0.55",
                ls="-" if L.cells > thr else ":",
            )
        )


def _panel(ax, maps, var, k, norm, cmap, extent):
    a = _frame_data(maps, var, k, norm)  # empty skin at the bottom of a log scale
    im = ax.imshow(a, origin="lower", extent=extent, cmap=cmap, norm=norm, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def plot_key_days(result: FieldResult, path: str | Path | None = None) -> Figure:
    """Strip: rows lesion cells / erythema / infiltrate, columns the key days; returns it."""
    maps = result.maps
    t = maps["time"].values
    keys = [(k, v) for k, v in result.key_times_days.items() if k in KEY_LABELS]
    cols = [(KEY_LABELS[k], int(np.argmin(np.abs(t - v)))) for k, v in keys]
    norms = _norms(maps)
    extent = _extent(maps)
    fig = new_figure((2.6 * len(cols) + 1.2, 2.5 * len(PANELS) + 0.9), dpi=100)
    axes = fig.subplots(len(PANELS), len(cols), squeeze=False)
    for r, (var, title, cmap, _) in enumerate(PANELS):
        im = None
        for c, (label, k) in enumerate(cols):
            ax = axes[r][c]
            im = _panel(ax, maps, var, k, norms[var], cmap, extent)
            if r > 0:
                _outline_lesions(ax, result)
            if r == 0:
                ax.set_title(f"{label}\nday {t[k]:.0f}", fontsize=9)
            if c == 0:
                ax.set_ylabel(title, fontsize=9)
        if im is not None:
            fig.colorbar(im, ax=list(axes[r]), shrink=0.85, pad=0.01)
    a = maps.attrs
    fig.suptitle(
        f"{a.get('scenario', '')}: {a.get('area_cm2', 0):g} cm2 field, "
        f"{a.get('resolution_mm', 0):.3g} mm grid ({a.get('n_sites', 0):,} sites)",
        fontsize=10,
    )
    fig.text(0.5, 0.005, FOOTER, ha="center", va="bottom", fontsize=8, color="0.3")
    if path is not None:
        fig.savefig(path)
    return fig


def _frame_data(maps, var, k, norm) -> np.ndarray:
    a = np.asarray(maps[var].values[k], dtype=float)
    if norm.__class__.__name__ == "LogNorm":
        a = np.where(a > 0, a, norm.vmin)
    return a


def write_gif(result: FieldResult, path: str | Path, *, seconds_per_frame: float = 0.25) -> Path:
    """Animated GIF of the maps over time (at most ``MAX_GIF_FRAMES`` frames, Pillow)."""
    from PIL import Image

    maps = result.maps
    t = maps["time"].values
    idx = np.unique(np.linspace(0, t.size - 1, min(t.size, MAX_GIF_FRAMES)).round().astype(int))
    norms = _norms(maps)
    extent = _extent(maps)
    name = maps.attrs.get("scenario", "")
    fig = new_figure((3.1 * len(PANELS), 3.4), dpi=100)
    axes = fig.subplots(1, len(PANELS))
    images = []
    for ax, (var, label, cmap, _) in zip(axes, PANELS, strict=True):
        im = _panel(ax, maps, var, int(idx[0]), norms[var], cmap, extent)
        if var != "lesion_cells":
            _outline_lesions(ax, result)
        ax.set_title(label, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02)
        images.append((im, var))
    title = fig.suptitle("", fontsize=10)
    fig.text(0.5, 0.01, FOOTER, ha="center", va="bottom", fontsize=7, color="0.3")
    frames = []
    for k in idx:
        for im, var in images:
            im.set_data(_frame_data(maps, var, int(k), norms[var]))
        title.set_text(f"{name}  day {t[k]:.0f}")
        fig.canvas.draw()
        rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # type: ignore[attr-defined]
        frames.append(Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=255))
    path = Path(path)
    frames[0].save(
        path,
        save_all=True,
        append_images=frames[1:],
        duration=int(seconds_per_frame * 1000),
        loop=0,
    )
    return path


def write_field_outputs(
    result: FieldResult,
    out_dir: str | Path,
    *,
    gif: bool = True,
    on_figure_error: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Write the field's files into ``out_dir`` and return their paths.

    The data first: ``field_maps.nc`` (maps over time and the per-site maps,
    NetCDF4 via h5netcdf), ``field_timecourses.nc``, ``field_lesions.csv``;
    then the pictures: ``field_key_days.png`` (lesion cells / erythema /
    infiltrate at baseline, mid-treatment, end of treatment, assessment and
    end of follow-up) and ``field_maps.gif`` (the maps over time; with
    ``gif=True``). With ``on_figure_error`` a failing picture is reported
    through it and left out of the returned paths; without it the failure is
    raised (the data files are on disk either way).
    """
    from imiqsim.spatial import FieldResult

    if not isinstance(result, FieldResult):
        raise InputError("result", type(result).__name__, "a FieldResult from simulate_field")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError("out_dir", str(out_dir), f"a writable directory ({exc})") from None
    paths = {
        "maps": out / "field_maps.nc",
        "timecourses": out / "field_timecourses.nc",
        "lesions": out / "field_lesions.csv",
    }
    enc = {
        v: {"zlib": True, "complevel": 4} for v in result.maps.data_vars if result.maps[v].ndim >= 2
    }
    with atomic_path(paths["maps"]) as tmp:
        result.maps.to_netcdf(tmp, engine="h5netcdf", encoding=enc)
    with atomic_path(paths["timecourses"]) as tmp:
        result.timecourses.to_netcdf(tmp, engine="h5netcdf")
    buf = io.StringIO()
    result.lesions.to_csv(buf, index=False)
    write_text_atomic(paths["lesions"], f"# {FOOTER}\n" + buf.getvalue())
    strip = out / "field_key_days.png"
    if figure_step(lambda: plot_key_days(result, strip), f"draw {strip}", on_figure_error):
        paths["key_days"] = strip
    if gif:
        anim = out / "field_maps.gif"
        if figure_step(lambda: write_gif(result, anim), f"draw {anim}", on_figure_error):
            paths["gif"] = anim
    return paths
