"""Time from clicking Generate to audio playing, for the default model (app/catalog.py DEFAULT_MODEL):

    .venv/bin/python tests/browser/measure_latency.py [CLICKS]

Starts `python -m app` (empty PLAYGROUND_HOME: shipped models only), opens it in headless Debian Chromium,
and for each click records (a) the milliseconds until the live player's first sample reaches the audio output
(app/live_player.js logs it from the Web Audio output timestamp, so the device latency is in), (b) the server's
own "first audio after" figure from the status line (request in -> first chunk handed to Gradio), and (c) the
gaps once playing (a chunk that came after the audio before it had run out, and their total length).  Prints each click and
the medians.  Run by hand; the numbers go to docs/BENCHMARKS.md.  PLAYGROUND_FIRST_CHUNK_SECONDS and
PLAYGROUND_FIRST_CHUNK_DEADLINE in the environment reach the app (app/generate.py ChunkPolicy.from_env).
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

LIVE = "[document.querySelector('#live-audio'), ...document.querySelectorAll('#live-audio *')].find(e => e && e.__live)"
EVENTS = f"() => {{ const el = {LIVE}; return el ? el.__live.events.map(([n, t]) => [n, t - window.__t0]) : []; }}"


def stalls(events: list) -> tuple[float, int, float]:
    """(ms to the first `playing`, stalls after it, their total ms) from [name, ms] events in order."""
    first = next(t for name, t in events if name == "playing")
    count, total, since = 0, 0.0, None
    for name, t in events:
        if t <= first:
            continue
        if name == "waiting" and since is None:
            count, since = count + 1, t
        elif name in ("playing", "ended") and since is not None:
            total, since = total + t - since, None
    return first, count, total


def main(clicks: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="latency-"))
    with serve_app(home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#generate-btn", timeout=60000)
        time.sleep(3)  # the page's load event fills the form; the app warms the models up at start
        model = page.input_value("#model-picker input")
        playing, arrived, server, stall_counts, stall_ms = [], [], [], [], []
        for i in range(clicks):
            page.evaluate(f"() => {{ const el = {LIVE}; if (el) el.__live.events.length = 0; "
                          "window.__t0 = performance.now(); }")
            page.click("#generate-btn")
            page.wait_for_function("() => document.querySelector('#status').innerText.startsWith('Done')",
                                   timeout=120000)
            page.wait_for_function(f"() => ({EVENTS})().some(e => e[0] === 'ended')", timeout=60000, polling=20)
            events = page.evaluate(EVENTS)
            ms, n_stalls, stalled = stalls(events)
            arrived.append(next(t for name, t in events if name == "chunk"))
            status = page.inner_text("#status")
            first = re.search(r"first audio after ([\d.]+) s", status)
            speed = re.search(r"([\d.]+)× real time", status)
            playing.append(ms)
            stall_counts.append(n_stalls)
            stall_ms.append(stalled)
            server.append(float(first.group(1)) if first else float("nan"))
            print(f"click {i + 1}: playing after {ms:.0f} ms (first chunk in the page after {arrived[-1]:.0f}); server first chunk {server[-1]:.2f} s; "
                  f"{speed.group(1) if speed else '?'}x real time; {n_stalls} gaps, {stalled:.0f} ms")
            time.sleep(1.0)  # the clip has ended: a short pause, and the next click starts from a quiet player
        browser.close()
    print(f"model: {model}; clicks: {clicks}")
    print(f"click -> playing: median {statistics.median(playing):.0f} ms, min {min(playing):.0f}, "
          f"max {max(playing):.0f}")
    print(f"click -> first chunk in the page: median {statistics.median(arrived):.0f} ms")
    print(f"request -> first chunk (server): median {statistics.median(server):.2f} s")
    print(f"gaps once playing: {statistics.mean(stall_counts):.2f} per click, mean {statistics.mean(stall_ms):.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
