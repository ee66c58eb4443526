"""Run ``imiqsim serve`` in a child process on a free 127.0.0.1 port and wait until it answers.

For scripts, notebooks, the browser tests and the dashboard benchmarks: the dashboard is started
exactly as a user starts it (the CLI command), so what they drive is what a user gets.

Example
-------
>>> from imiqsim.web.launch import dashboard_process
>>> with dashboard_process(workers=2) as (url, proc):  # doctest: +SKIP
...     print(url)
http://127.0.0.1:.../
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

__all__ = ["dashboard_process", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dashboard_process(
    workers: int = 2, timeout_s: float = 90.0, log: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start ``imiqsim serve --port P --workers N``; yield ``(url, process)`` once it answers 200.

    The server's output goes to ``log`` (default: discarded). Raises RuntimeError, with the log's
    text when there is one, if the server exits first or does not answer within ``timeout_s``.
    On leaving the block the server is terminated (killed after 10 s).
    """
    port = free_port()
    cmd = [sys.executable, "-m", "imiqsim.cli", "serve", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    finally:
        if log is not None:
            out.close()
    url = f"http://127.0.0.1:{port}/"

    def why() -> str:
        return f": {log.read_text()}" if log is not None and log.exists() else ""

    try:
        end = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"imiqsim serve exited with status {proc.returncode}{why()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > end:
                raise RuntimeError(f"imiqsim serve did not answer within {timeout_s:g} s{why()}")
            time.sleep(0.3)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
