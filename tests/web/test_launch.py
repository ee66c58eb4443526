"""``imiqsim.web.launch``: the helper that runs ``imiqsim serve`` in a child process.

The happy path is exercised by every browser test (the ``server`` fixture uses it); here, the
failure path: a server that exits at once is reported with its own message, not waited for.
"""

from __future__ import annotations

import socket
import time

import pytest

from imiqsim.web.launch import dashboard_process, free_port


def test_free_port_is_bindable():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # raises if something holds it


def test_a_server_that_exits_is_reported_with_its_error_and_status(tmp_path):
    log = tmp_path / "serve.log"
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="exited with status 2") as e:
        with dashboard_process(workers=0, timeout_s=60, log=log):
            pytest.fail("a server with 0 workers must not start")
    assert "workers: got 0" in str(e.value)  # the CLI's own message, from the log
    assert time.monotonic() - t0 < 30  # noticed when it exits, not after the timeout
