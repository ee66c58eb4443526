"""The one rule every writer follows: data files first, pictures after, a picture never loses data.

>>> from imiqsim.outputs.files import figure_step
>>> messages = []
>>> figure_step(lambda: 1 / 0, "draw x.png", messages.append) is None
True
>>> messages
['could not draw x.png (ZeroDivisionError: division by zero); data files were written']
>>> figure_step(lambda: "x.png", "draw x.png", messages.append)
'x.png'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from imiqsim.errors import ImiqsimError

__all__ = ["figure_step"]

T = TypeVar("T")


def figure_step(
    draw: Callable[[], T], what: str, on_error: Callable[[str], None] | None = None
) -> T | None:
    """Run a figure or report step after the data files are on disk.

    Parameters
    ----------
    draw : callable
        Draws and writes the picture; its result is returned.
    what : str
        The step in words, for the message (``"draw out/cascade.png"``).
    on_error : callable, optional
        Receives one line when the step fails; the data files stay and None
        is returned. Without it the failure is raised. A user error
        (:class:`imiqsim.errors.ImiqsimError`) is always raised.
    """
    if on_error is None:
        return draw()
    try:
        return draw()
    except ImiqsimError:
        raise
    except Exception as exc:  # a plotting failure must not lose the data already written
        on_error(f"could not {what} ({type(exc).__name__}: {exc}); data files were written")
        return None
