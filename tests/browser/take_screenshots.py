"""Screenshots of each tab for docs/screenshots/ (run by hand, not by pytest):

    .venv/bin/python tests/browser/take_screenshots.py [OUT_DIR]

Starts `python -m app` with an empty PLAYGROUND_HOME (so only the shipped models show), then in headless
Debian Chromium: generates with the shipped audio model (if one ships) and a shipped text model, starts a short
training job on a generated text file from the Train tab (train.png, with its text sample), then one on generated
tones (train-samples.png, its audio sample in the player), and runs the Speed tab for L = 2..10.
"""
from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_support import CHROMIUM_ARGS, REPO, chromium_path, pick_model, serve_app  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

DONE = "() => document.querySelector('#status').innerText.startsWith('Done')"
SAMPLE = "() => document.querySelector('#train-sample-caption').innerText.startsWith('Sample at step')"
FINISHED = "() => document.querySelector('#train-status').innerText.includes('finished')"


def shipped() -> list[tuple[str, str]]:
    sys.path.insert(0, str(REPO))
    import engine
    return [(i.name, i.kind) for i in engine.list_models([engine.paths.SHIPPED_MODELS])]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    models = shipped()
    home = Path(tempfile.mkdtemp(prefix="screens-"))
    corpus = home / "my-notes.txt"
    rng = random.Random(0)
    words = "the a cat dog sat ran on under mat tree and then quietly far away".split()
    corpus.write_text(" ".join(rng.choice(words) for _ in range(20000)))
    import numpy as np
    import soundfile as sf
    clips = []
    for i in range(6):  # rising tones: an audio training set of a few seconds
        t = np.arange(16000) / 16000
        clips.append(home / f"tone{i}.wav")
        sf.write(clips[-1], 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t * (1 + t)), 16000)
    with serve_app(home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#generate-btn", timeout=60000)
        time.sleep(2)
        audio = [n for n, k in models if k == "audio"]
        text = [n for n, k in models if k == "text"]
        if audio:
            from app.catalog import DEFAULT_MODEL  # the model a new user hears first
            pick_model(page, next((n for n in audio if n == DEFAULT_MODEL), audio[0]))
            page.click("#generate-btn")
            page.wait_for_function(DONE, timeout=120000)
            time.sleep(1)
            page.screenshot(path=str(out / "generate-audio.png"), full_page=True)
        if text:
            name = next((n for n in text if "shakespeare" in n), text[0])
            pick_model(page, name)
            page.fill("#seed-text textarea", "ROMEO:\n")
            page.click("#generate-btn")
            page.wait_for_function(DONE, timeout=120000)
            time.sleep(1)
            page.screenshot(path=str(out / "generate-text.png"), full_page=True)

        page.get_by_role("tab", name="Train").click()
        page.set_input_files("#train-files input[type=file]", str(corpus))
        time.sleep(2)
        page.click("#train-family input")
        page.click("ul[role=listbox] li:has-text('bytenet')")
        time.sleep(1)
        page.fill("#train-max-steps input", "30")
        page.press("#train-max-steps input", "Tab")
        page.click("#train-start")
        page.wait_for_function(SAMPLE, timeout=300000)  # the text sample of its evaluation
        page.wait_for_function(FINISHED, timeout=300000)
        time.sleep(3)
        page.screenshot(path=str(out / "train.png"), full_page=True)

        # an audio job: its sample plays in the Train tab
        page.locator("#train-files button[aria-label='Clear']").first.click()
        time.sleep(1)
        page.set_input_files("#train-files input[type=file]", [str(c) for c in clips])
        page.wait_for_function("() => document.querySelector('#train-family input').value === 'wavenet'",
                               timeout=30000)
        page.fill("#train-max-steps input", "20")
        page.press("#train-max-steps input", "Tab")
        page.click("#train-start")
        page.wait_for_function(SAMPLE, timeout=300000)
        page.wait_for_selector("#train-sample-audio [data-testid^='waveform']", timeout=60000)
        time.sleep(3)
        page.screenshot(path=str(out / "train-samples.png"), full_page=True)

        page.get_by_role("tab", name="Speed").click()
        time.sleep(1)
        page.click("#speed-run")
        page.wait_for_function("() => document.querySelector('#speed-status').innerText.startsWith('Done')",
                               timeout=300000)
        time.sleep(2)
        page.screenshot(path=str(out / "speed.png"), full_page=True)
        browser.close()
    from trainers.jobs import JobManager  # jobs outlive the app by design: stop the one started here
    jobs = JobManager(home / "runs")
    for job in jobs.list():
        if job.state in ("queued", "running"):
            jobs.cancel(job.id)
    print("screenshots in", out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
