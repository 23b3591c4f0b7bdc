"""The real browser: Debian Chromium driven by Playwright opens the app, generates text and audio.

Skipped where Chromium or Playwright for Python is not installed (`.ci/run` installs both).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_support import CHROMIUM_ARGS, chromium_path, pick_model, serve_app  # noqa: E402

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
if chromium_path() is None:
    pytest.skip("Debian chromium is not installed", allow_module_level=True)

import engine  # noqa: E402
from app import live_player  # noqa: E402

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
        page.set_default_timeout(90000)  # a loaded 2-core machine can take long to show a component
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

        # audio: the live player plays the chunks as they come, to the end of the clip
        pick_model(page, "browser-audio")
        t0 = time.time()
        page.click("#generate-btn")
        page.wait_for_function("() => document.querySelector('#status').innerText.startsWith('Done')",
                               timeout=120000)
        assert time.time() - t0 < 120
        live = LIVE
        page.wait_for_function(f"() => {live}.events.some(e => e[0] === 'ended')", timeout=30000)
        names = [name for name, _ in page.evaluate(f"() => {live}.events")]
        assert names[0] == "chunk" and "playing" in names and names[-1] == "ended", names
        seconds = float(page.input_value("#length-seconds input[type=number]"))
        assert abs(page.evaluate(f"() => {live}.received") - seconds) < 1e-3  # every sample reached the player
        assert page.evaluate(f"() => {live}.ctx.state") == "running"
        assert page.locator("#live-audio").inner_text().count("Played") == 1
        assert page.locator("#wav-files").inner_text().count(".wav") == 1
        page.wait_for_selector("#plot img", timeout=30000)  # drawn by the follow-up event, after the stream ends
        assert page.locator("#plot img").count() == 1
        page.screenshot(path=str(tmp_path / "audio.png"), full_page=True)
        assert errors == [], errors
        browser.close()


LIVE = ("[document.querySelector('#live-audio'), ...document.querySelectorAll('#live-audio *')]"
        ".find(e => e && e.__live).__live")


def test_live_player_joins_chunks_counts_gaps_and_drops_an_old_run(tmp_path):
    """The live player's logic (app/live_player.js), fed messages made here: chunks that come in time join with no
    gap; a chunk that comes after the audio before it ran out is one gap; every sample is counted; a new run
    stops the old run's audio; Stop silences the player."""
    home = tmp_path / "home"
    make_models(home)
    with serve_app(home) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.set_default_timeout(90000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#generate-btn", timeout=60000)
        pick_model(page, "browser-audio")  # an audio model: the player is shown
        page.wait_for_function(f"() => !!({LIVE})", timeout=30000)

        def send(message: str) -> None:
            page.evaluate(f"(m) => {LIVE}.receive(JSON.parse(m))", message)

        def names() -> list[str]:
            return [name for name, _ in page.evaluate(f"() => {LIVE}.events")]

        rate = 8000
        tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate)).astype(np.int16)
        page.evaluate(f"() => {{ {LIVE}.events.length = 0; }}")
        a = live_player.Messages("run-a")
        send(a.start(rate))
        send(a.chunk(rate, tone[:800]))  # 0.1 s, then another at once: back to back
        send(a.chunk(rate, tone[800:1600]))
        page.wait_for_timeout(500)  # both have played out: the next chunk is late
        send(a.chunk(rate, tone[1600:2400]))
        send(a.end())
        page.wait_for_function(f"() => {LIVE}.events.some(e => e[0] === 'ended')", timeout=10000)
        assert names() == ["chunk", "playing", "chunk", "chunk", "waiting", "playing", "ended"], names()
        assert abs(page.evaluate(f"() => {LIVE}.received") - 0.3) < 1e-6 and page.evaluate(f"() => {LIVE}.gaps") == 1
        assert page.evaluate(f"() => {LIVE}.ctx.sampleRate") == rate  # played at the model's rate

        b = live_player.Messages("run-b")
        send(b.start(rate))
        send(b.chunk(rate, tone))  # 2 s: still playing when the next run starts
        assert page.evaluate(f"() => {LIVE}.sources.length") == 1
        c = live_player.Messages("run-c")
        send(c.start(rate))
        assert page.evaluate(f"() => [{LIVE}.sources.length, {LIVE}.received]") == [0, 0]
        send(c.chunk(rate, tone))
        page.click("#stop-btn")
        assert page.evaluate(f"() => {LIVE}.sources.length") == 0
        assert "Stopped" in page.locator("#live-audio").inner_text()
        send(c.chunk(rate, tone[:800]))  # a chunk of the stopped run that was already on its way: not played
        assert page.evaluate(f"() => {LIVE}.sources.length") == 0
        assert errors == [], errors
        browser.close()


def test_seed_box_stays_empty_and_shows_each_runs_seed(tmp_path):
    """Opening the Sampling panel must not fix the seed at 0: two runs get two seeds, each shown beside the box."""
    home = tmp_path / "home"
    make_models(home)
    with serve_app(home) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.set_default_timeout(90000)  # a loaded 2-core machine can take long to show a component
        page.goto(url)
        page.wait_for_selector("#generate-btn", timeout=60000)
        pick_model(page, "browser-text")
        page.get_by_text("Sampling").click()
        page.wait_for_selector("#seed input, #seed textarea", timeout=10000)
        box = page.locator("#seed input, #seed textarea").first
        assert box.input_value() == ""  # empty = random, not 0
        page.fill("#length-tokens input[type=number]", "20")
        page.press("#length-tokens input[type=number]", "Enter")
        seeds = []
        for _ in range(2):
            page.click("#generate-btn")
            page.wait_for_function("() => document.querySelector('#status').innerText.startsWith('Done')",
                                   timeout=120000)
            note = page.locator("#seed-used").inner_text()
            seeds.append(note)
            assert "Last run: seed" in note and box.input_value() == ""
            page.wait_for_timeout(300)
        assert seeds[0] != seeds[1], seeds
        browser.close()


def test_a_training_job_from_the_train_tab_shows_and_plays_its_samples(tmp_path):
    """Upload text: the family turns to a text one; upload audio clips instead: an audio family; train a few
    steps; the job's sample appears with an audio player (and a screenshot of it is kept)."""
    import numpy as np
    import soundfile as sf
    home = tmp_path / "home"
    home.mkdir()
    clips = []
    for i in range(6):
        t = np.arange(16000) / 16000
        clips.append(str(tmp_path / f"tone{i}.wav"))
        sf.write(clips[-1], 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t), 16000)
    names = tmp_path / "names.txt"
    names.write_text("\n".join(["emma", "olivia", "ava", "sophia", "mia", "amelia", "harper", "ella"] * 4) + "\n")
    with serve_app(home) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(90000)  # a loaded 2-core machine can take long to show a component
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#generate-btn", timeout=60000)
        page.get_by_role("tab", name="Train").click()
        family = "() => document.querySelector('#train-family input').value"
        page.set_input_files("#train-files input[type=file]", str(names))
        page.wait_for_function(f"() => ({family})() !== 'wavenet'", timeout=20000)
        assert page.evaluate(family) in ("hierarchical", "bytenet", "rnn")
        assert "names list" in page.locator("#train-detected").inner_text()
        page.locator("#train-files button[aria-label='Clear']").first.click()
        page.wait_for_timeout(500)
        page.set_input_files("#train-files input[type=file]", clips)
        page.wait_for_function(f"() => ({family})() === 'wavenet'", timeout=20000)
        page.fill("#train-max-steps input", "20")
        page.press("#train-max-steps input", "Tab")
        page.click("#train-start")
        try:
            page.wait_for_function("() => document.querySelector('#train-sample-caption')?.innerText"
                                   ".includes('Sample at step 20')", timeout=240000)
        except sync_api.TimeoutError:
            page.screenshot(path=str(tmp_path / "timeout.png"), full_page=True)
            raise AssertionError("no sample shown: " + " | ".join(
                page.locator(sel).first.inner_text() for sel in ("#train-status", "#train-sample-caption",
                                                                 "#train-table")) +
                " | pick: " + page.input_value("#train-sample-pick input") +
                " | log: " + page.input_value("#train-log textarea")[-1500:]) from None
        # the player: a waveform over the sample's wav (Gradio 6 draws it with wavesurfer; the file is linked)
        page.wait_for_selector("#train-sample-audio [data-testid^='waveform']", timeout=30000)
        page.wait_for_function("() => document.querySelector('#train-sample-audio a.download-link')"
                               "?.href.endsWith('.wav')", timeout=30000)
        page.click("#train-sample-pick input")  # the evaluations to step back through
        page.wait_for_selector("ul[role=listbox] li:has-text('step 20 · held-out')", timeout=10000)
        page.keyboard.press("Escape")
        table = page.locator("#train-table").inner_text()
        assert table.index("state") < table.index("job")  # the columns that change come first
        page.screenshot(path=str(tmp_path / "train-samples.png"), full_page=True)
        assert errors == [], errors
        browser.close()
