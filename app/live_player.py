"""The live player: the Generate tab's audio, played in the browser chunk by chunk as the model makes it.

Why not `gr.Audio(streaming=True)`: Gradio 6.31 streams audio through an ffmpeg AAC encoder and an HLS playlist,
and the browser's HLS player fetches a playlist, then a segment, on a 100 ms tick, and does not start on a short
first segment.  Traced in Chromium (docs/BENCHMARKS.md, ninth session) that path took 300-450 ms of the click's
0.45-0.65 s.  Here each chunk is a message on the event's own stream (a gr.HTML value: JSON, the int16 samples
base64-encoded), and `live_player.js` schedules it on a Web Audio context running at the model's sample rate,
right after the chunk before: chunks join sample-exactly, and the first one plays about 30 ms after it arrives.

A run's messages, in order: `start` (the sample rate: the browser starts its audio device while the model
works), `chunk`s, and `end`.  The full clip, to replay or download, is the separate "Full audio" player.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import gradio as gr
import numpy as np

SCRIPT = (Path(__file__).with_name("live_player.js")).read_text(encoding="utf-8")
TEMPLATE = "<div class='live-player'><span class='live-title'>{title}</span> <span class='live-state'>" \
           "Press Generate: the audio plays here while it is made.</span>" \
           "<button class='live-stop' title='Stop playing (the full audio below keeps the clip)'>■</button></div>"
STYLE = ".live-player { display: flex; gap: 8px; align-items: center; padding: 10px 12px; " \
        "border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg); } " \
        ".live-title { font-weight: 600; } .live-state { flex: 1; } " \
        ".live-stop { padding: 0 8px; border-radius: var(--radius-sm); border: 1px solid var(--border-color-primary); }"


def player(label: str, elem_id: str, visible: bool = True) -> gr.HTML:
    """The component.  Its label is written into the template: Gradio 6.31 drops a gr.HTML's extra props when an
    update shows it again (hidden, it is unmounted), and its template then fails on the missing name."""
    return gr.HTML("", html_template=TEMPLATE.format(title=html.escape(label)), css_template=STYLE,
                   js_on_load=SCRIPT, elem_id=elem_id, visible=visible, apply_default_css=False)


class Messages:
    """One run's messages: each has the run's id and a sequence number (a value equal to the one before would
    not reach the browser)."""

    def __init__(self, run: str):
        self.run = run
        self.seq = 0

    def _message(self, **fields) -> str:
        self.seq += 1
        return json.dumps({"run": self.run, "seq": self.seq, **fields})

    def start(self, rate: int) -> str:
        return self._message(rate=int(rate))

    def chunk(self, rate: int, samples: np.ndarray) -> str:
        pcm = np.ascontiguousarray(samples, dtype="<i2").tobytes()
        return self._message(rate=int(rate), pcm=base64.b64encode(pcm).decode("ascii"))

    def end(self) -> str:
        return self._message(end=True)


def decode(message: str) -> dict:
    """A message back as a dict, with a chunk's samples as int16 under "samples" (tests and API clients)."""
    m = json.loads(message)
    if "pcm" in m:
        m["samples"] = np.frombuffer(base64.b64decode(m.pop("pcm")), dtype="<i2")
    return m
