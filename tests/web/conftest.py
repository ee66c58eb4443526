"""Fixtures of the dashboard tests: a real ``imiqsim serve`` on 127.0.0.1 and Debian's Chromium.

The server is the CLI command itself, started once per test session on a free port with two
simulation workers; the compiled kernel is warmed (compiled into the disk cache if needed) in
this process first, so the workers only load it. Each browser test opens its own page, i.e. its
own dashboard session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
SERVER_START_S = 90.0
#: default time limit of one browser wait, ms
WAIT_MS = 90_000


@pytest.fixture(scope="session")
def server():
    """Base URL of a dashboard served by ``imiqsim serve`` for the whole session."""
    import imiqsim
    from imiqsim.web.launch import dashboard_process

    imiqsim.simulate("ak-5pct", days=1)  # compile or load the kernel cache once, here
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"imiqsim-serve-{os.getpid()}.log"
    with dashboard_process(workers=2, timeout_s=SERVER_START_S, log=log) as (url, _proc):
        yield url


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (headless, --no-sandbox as root)."""
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(
                f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
            )
        pytest.skip(f"{CHROMIUM} is missing (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield b
        b.close()


@pytest.fixture
def open_page(browser, server):
    """``open_page(page_name)``: a new dashboard session on that page, once its widgets show."""
    contexts = []

    def _open(name: str = "patient", route=None):
        ctx = browser.new_context(viewport={"width": 1500, "height": 1100})
        ctx.set_default_timeout(WAIT_MS)
        if route is not None:
            ctx.route("**/*", route)
        contexts.append(ctx)
        page = ctx.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.goto(f"{server}?page={name}")
        page.locator(".imiq-tabs").first.wait_for()
        return page

    yield _open
    for ctx in contexts:
        ctx.close()
