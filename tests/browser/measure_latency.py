"""Time from clicking Generate to audio playing, for the default model (app/catalog.py DEFAULT_MODEL):

    .venv/bin/python tests/browser/measure_latency.py [CLICKS]

Starts `python -m app` (empty PLAYGROUND_HOME: shipped models only), opens it in headless Debian Chromium,
and for each click records (a) the milliseconds until the live player fires its `playing` event and
(b) the server's own "first audio after" figure from the status line (request in -> first chunk handed to
Gradio).  Prints each click and the median.  Run by hand; the numbers go to docs/BENCHMARKS.md.
"""
from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_support import CHROMIUM_ARGS, chromium_path, serve_app  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

HOOK = """() => { window.__ev = []; setInterval(() => { const a = document.querySelector('#live-audio audio');
  if (a && !a.__hooked) { a.__hooked = true; a.addEventListener('playing',
    () => window.__ev.push(performance.now() - window.__t0)); } }, 5); }"""


def main(clicks: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="latency-"))
    with serve_app(home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#generate-btn", timeout=60000)
        time.sleep(3)  # the page's load event fills the form; the app warms the models up at start
        model = page.input_value("#model-picker input")
        page.evaluate(HOOK)
        playing, server = [], []
        for i in range(clicks):
            page.evaluate("() => { window.__ev = []; window.__t0 = performance.now(); }")
            page.click("#generate-btn")
            page.wait_for_function("() => window.__ev.length > 0", timeout=60000, polling=5)
            page.wait_for_function("() => document.querySelector('#status').innerText.startsWith('Done')",
                                   timeout=120000)
            ms = page.evaluate("() => window.__ev[0]")
            status = page.inner_text("#status")
            first = re.search(r"first audio after ([\d.]+) s", status)
            speed = re.search(r"([\d.]+)× real time", status)
            playing.append(ms)
            server.append(float(first.group(1)) if first else float("nan"))
            print(f"click {i + 1}: playing after {ms:.0f} ms; server first chunk {server[-1]:.2f} s; "
                  f"{speed.group(1) if speed else '?'}x real time")
            time.sleep(2.5)  # let the 2 s clip finish so the next click starts from a quiet player
        browser.close()
    print(f"model: {model}; clicks: {clicks}")
    print(f"click -> playing: median {statistics.median(playing):.0f} ms, min {min(playing):.0f}, "
          f"max {max(playing):.0f}")
    print(f"request -> first chunk (server): median {statistics.median(server):.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
