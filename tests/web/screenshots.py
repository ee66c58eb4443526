"""Take the README's dashboard screenshots with the real browser (not a test).

Usage: ``python tests/web/screenshots.py [OUT_DIR]`` (default ``docs``): starts ``imiqsim serve``
on a free port, runs each page once in Debian's Chromium and writes ``dashboard_<page>.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from imiqsim.web.launch import dashboard_process

CHROMIUM = "/usr/bin/chromium"


def _status(page, name: str, text: str, timeout_s: float = 180) -> None:
    loc = page.locator(f".imiq-status-{name} .imiq-status-text", has_text=text)
    loc.wait_for(timeout=timeout_s * 1000)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with dashboard_process(workers=2, timeout_s=180) as (url, _server):
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1560, "height": 1000})
            page.set_default_timeout(180_000)

            page.goto(url + "?page=patient")
            page.get_by_role("button", name="Run patient").click()
            _status(page, "patient", "done: run 1")
            page.locator(".imiq-knockouts label", has_text="tlr7").locator("input").check()
            page.get_by_role("button", name="Run patient").click()
            _status(page, "patient", "done: run 2")
            page.wait_for_timeout(2500)
            page.screenshot(path=out / "dashboard_patient.png", full_page=True)

            page.goto(url + "?page=trial")
            page.get_by_role("button", name="Run trial").click()
            _status(page, "trial", "done")
            page.wait_for_timeout(2500)
            page.screenshot(path=out / "dashboard_trial.png", full_page=True)

            page.goto(url + "?page=compare")
            page.get_by_role("button", name="Run comparison").click()
            _status(page, "compare", "done")
            page.wait_for_timeout(1000)
            page.screenshot(path=out / "dashboard_compare.png", full_page=True)

            page.goto(url + "?page=field")
            page.get_by_role("button", name="Run field").click()
            _status(page, "field", "done")
            handle = page.locator(".imiq-time .noUi-handle").first
            handle.focus()
            for _ in range(12):  # mid-treatment: week 12
                handle.press("ArrowRight")
            page.wait_for_timeout(2000)
            page.screenshot(path=out / "dashboard_field.png", full_page=True)

            page.goto(url + "?page=model")
            search = page.locator(".imiq-search input")
            search.fill("tlr7")
            search.press("Tab")
            page.wait_for_timeout(1500)
            page.screenshot(path=out / "dashboard_model.png")
            browser.close()
    for p in sorted(out.glob("dashboard_*.png")):
        print(f"wrote {p}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
