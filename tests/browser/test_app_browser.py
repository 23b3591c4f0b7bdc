"""The real browser: Debian Chromium driven by Playwright opens the app, generates text and audio.

Skipped where Chromium or Playwright for Python is not installed (`.ci/run` installs both).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_support import CHROMIUM_ARGS, chromium_path, pick_model, serve_app  # noqa: E402

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
if chromium_path() is None:
    pytest.skip("Debian chromium is not installed", allow_module_level=True)

import engine  # noqa: E402

GROWTH = """() => { window.__lengths = []; const box = () => document.querySelector('#text-out textarea');
  window.__poll = setInterval(() => { const t = box(); if (!t) return; const n = t.value.length;
    const L = window.__lengths; if (!L.length || L[L.length - 1] !== n) L.push(n); }, 5); }"""


def make_models(home: Path) -> None:
    torch.manual_seed(0)
    wn = engine.build_model("wavenet", layers_per_block=4, blocks=1, residual_channels=8, gate_channels=8,
                            skip_channels=8, global_cond_classes=10, sample_rate=8000)
    engine.save_model(wn, home / "models" / "browser-audio", data="untrained (test)",
                      classes=[str(i) for i in range(10)])
    rnn = engine.build_model("rnn", cell="lstm", hidden_size=64, layers=2)  # eager: slow enough to watch grow
    engine.save_model(rnn, home / "models" / "browser-text", data="untrained (test)")


def test_generate_text_and_audio_in_chromium(tmp_path):
    home = tmp_path / "home"
    make_models(home)
    with serve_app(home, {"PLAYGROUND_TEXT_TOKENS": "3000"}) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#generate-btn", timeout=60000)

        # text: the box grows while the model writes
        pick_model(page, "browser-text")
        page.fill("#length-tokens input[type=number]", "3000")
        page.press("#length-tokens input[type=number]", "Enter")
        page.fill("#seed-text textarea", "Hello")
        page.evaluate(GROWTH)
        page.click("#generate-btn")
        page.wait_for_function("() => document.querySelector('#status').innerText.startsWith('Done')",
                               timeout=120000)
        lengths = page.evaluate("() => window.__lengths")
        assert len([n for n in lengths if n > len("Hello")]) >= 3, lengths  # several growing updates
        assert page.input_value("#text-out textarea").startswith("Hello")
        page.screenshot(path=str(tmp_path / "text.png"), full_page=True)

        # audio: the live player gets a stream and plays
        pick_model(page, "browser-audio")
        t0 = time.time()
        page.click("#generate-btn")
        page.wait_for_function("() => { const a = document.querySelector('#live-audio audio');"
                               " return a && (a.currentSrc || a.src); }", timeout=60000)
        page.wait_for_function("() => document.querySelector('#status').innerText.startsWith('Done')",
                               timeout=120000)
        assert time.time() - t0 < 120
        assert page.locator("#wav-files").inner_text().count(".wav") == 1
        assert page.locator("#plot img").count() == 1
        page.screenshot(path=str(tmp_path / "audio.png"), full_page=True)
        assert errors == [], errors
        browser.close()
