"""Shared by the browser test and the screenshot script: start `python -m app` on a free port, open Chromium.

Chromium is Debian's (/usr/bin/chromium, or $CHROMIUM), driven by Playwright for Python with `executable_path`
(Playwright's own browser download is never used).  The flags are the ones that work on a closed network.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_app(home: Path, extra_env: dict | None = None, timeout: float = 90.0):
    """`python -m app` in a subprocess with PLAYGROUND_HOME=home; yields its URL; stops it afterwards."""
    port = free_port()
    env = dict(os.environ, PLAYGROUND_HOME=str(home), GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    env.pop("SPACE_ID", None)
    env.update(extra_env or {})
    log = open(home / "app.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the app did not start: {(home / 'app.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def pick_model(page, name: str) -> None:
    """Choose a model in the Generate tab's picker by (part of) its label."""
    page.click("#model-picker input")
    page.click(f"ul[role=listbox] li:has-text('{name}')")
    page.wait_for_function(f"() => document.querySelector('#model-info').innerText.includes({name!r})",
                           timeout=15000)
