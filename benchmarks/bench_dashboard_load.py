"""Where the dashboard's time goes with eight sessions at once: CPU seconds per process (issue 14).

Starts ``imiqsim serve`` (2 simulation workers) on a free 127.0.0.1 port and drives Debian's
Chromium with Playwright as the browser tests do: a warm-up run, then a patient run on a freshly
opened page twice ("one alone", timed from the click to the status "done"), then eight sessions
clicked together (eight different treated areas). For each phase it prints the wall time and the
CPU seconds spent by the dashboard server, its simulation workers and Chromium's processes
(renderers, GPU process, browser), read with psutil. The compiled kernel is loaded (or compiled
into the disk cache) here first, as the browser tests' fixture does, so no timed run compiles it.

    .venv/bin/python benchmarks/bench_dashboard_load.py

Research and teaching software, not a medical device.
"""

from __future__ import annotations

import time

import psutil
from playwright.sync_api import sync_playwright

from imiqsim.web.launch import dashboard_process

DONE = ".imiq-status-patient .imiq-status-text"


def _cpu_by_kind(server_pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            t = p.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        cmd = " ".join(p.info["cmdline"] or [])
        if p.pid == server_pid:
            k = "server"
        elif "chromium" in cmd or "chrome" in (p.info["name"] or ""):
            k = "chromium " + (
                cmd.split("--type=")[1].split()[0] if "--type=" in cmd else "browser"
            )
        elif "multiprocessing" in cmd or "spawn_main" in cmd:
            k = "simulation workers"
        else:
            continue
        out[k] = out.get(k, 0.0) + t.user + t.system
    return out


def _measure(url: str, server_pid: int) -> list:
    """The three phases: (label, wall seconds, CPU seconds by process kind)."""
    rows = []
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"], headless=True
        )

        def page():
            ctx = b.new_context(viewport={"width": 1500, "height": 1100})
            p = ctx.new_page()
            p.goto(url + "?page=patient")
            p.locator(".imiq-tabs").first.wait_for()
            return p

        w = page()
        bt = w.get_by_role("button", name="Run patient")
        bt.wait_for()
        bt.click()
        w.locator(DONE, has_text="done").wait_for(timeout=120000)
        for rep in range(2):
            one = page()
            bt = one.get_by_role("button", name="Run patient")
            bt.wait_for()
            c0 = _cpu_by_kind(server_pid)
            t0 = time.monotonic()
            bt.click()
            one.locator(DONE, has_text="done").wait_for(timeout=120000)
            wall = time.monotonic() - t0
            c1 = _cpu_by_kind(server_pid)
            rows.append((f"one alone ({rep + 1})", wall, {k: c1[k] - c0.get(k, 0) for k in c1}))
        pages = [page() for _ in range(8)]
        bts = [p.get_by_role("button", name="Run patient") for p in pages]
        for bb in bts:
            bb.wait_for()
        for k, p in enumerate(pages):
            box = p.locator(".imiq-area_cm2 input").first
            box.fill(str(10 + 5 * k))
            box.press("Tab")
        time.sleep(1)
        c0 = _cpu_by_kind(server_pid)
        t0 = time.monotonic()
        for bb in bts:
            bb.click()
        for p in pages:
            p.locator(DONE, has_text="done").wait_for(timeout=120000)
        wall = time.monotonic() - t0
        c1 = _cpu_by_kind(server_pid)
        rows.append(("eight together", wall, {k: c1[k] - c0.get(k, 0) for k in c1}))
        b.close()
    return rows


def main() -> None:
    import imiqsim

    imiqsim.simulate("ak-5pct", days=1)  # compile or load the kernel cache once, before serving
    with dashboard_process(workers=2) as (url, srv):
        time.sleep(3)
        rows = _measure(url, srv.pid)
    kinds = sorted({k for _, _, c in rows for k in c})
    print("Research and teaching software, not a medical device.")
    print("| phase | wall s | " + " | ".join(kinds) + " |")
    print("|---|---|" + "---|" * len(kinds))
    for label, wall, c in rows:
        cells = " | ".join(f"{c.get(k, 0.0):.2f}" for k in kinds)
        print(f"| {label} | {wall:.2f} | {cells} |")
    print(f"eight together / faster one alone: {rows[2][1] / min(rows[0][1], rows[1][1]):.1f}x")


if __name__ == "__main__":
    main()
