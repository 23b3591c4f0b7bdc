"""The app's small parts without a server: limits, stop switch, ffmpeg on PATH, launch address, Speed tab."""
from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest

from app import speed
from app.__main__ import server_name, server_port
from app.errors import UserError
from app.ffmpeg import ensure_ffmpeg
from app.limits import Limits
from app.stop import StopSwitch


def test_limits_from_env():
    lim = Limits.from_env({"PLAYGROUND_AUDIO_SECONDS": "8", "PLAYGROUND_MAX_JOBS": "2", "OTHER": "x"})
    assert lim.audio_seconds == 8.0 and lim.max_jobs == 2 and isinstance(lim.max_jobs, int)
    for bad in ("lots", "-1", "nan", "0"):
        with pytest.raises(ValueError, match="PLAYGROUND_MAX_JOBS"):
            Limits.from_env({"PLAYGROUND_MAX_JOBS": bad})


def test_stop_switch_per_session():
    s = StopSwitch()
    assert not s.stop("a")
    ev = s.arm("a")
    other = s.arm("b")
    assert s.stop("a") and ev.is_set() and not other.is_set()
    assert not s.stop("a")  # already stopped
    newer = s.arm("b")
    assert other.is_set() and not newer.is_set()  # a new run of the same session ends the old one
    s.release("b", other)  # releasing a stale run leaves the new one armed
    assert s.stop("b") and newer.is_set()


def test_ffmpeg_is_put_on_path(monkeypatch):
    monkeypatch.setenv("PATH", os.defpath if shutil.which("ffmpeg", path=os.defpath) is None else "/nonexistent")
    exe = ensure_ffmpeg()
    assert exe is not None and os.path.basename(exe).startswith("ffmpeg")
    assert shutil.which("ffmpeg") == exe


def test_server_address(monkeypatch):
    for var in ("SPACE_ID", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "PORT"):
        monkeypatch.delenv(var, raising=False)
    assert server_name() == "127.0.0.1" and server_port() == 7860
    monkeypatch.setenv("SPACE_ID", "user/playground")
    assert server_name() == "0.0.0.0"
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    assert server_port() == 7999


def test_speed_run_tiny_range():
    out = list(speed.run(1, 2, 3, Limits(), budget_s=0.5))
    rows, status = out[-1]
    methods = speed.available_methods()
    assert methods[:2] == ("naive", "cached")
    assert [(r.layers, r.method) for r in rows] == [(L, m) for L in (1, 2) for m in methods]
    assert all(r.ms_per_sample > 0 and r.samples >= 1 for r in rows)
    assert "naive ÷ cached" in status
    table = speed.table(rows)
    assert [t[0] for t in table] == [1, 2] and table[0][1] == rows[0].receptive_field
    assert len(table[0]) == len(speed.TABLE_HEADERS) and table[1][5].endswith("×")


def test_speed_stop_and_bad_ranges():
    stop = threading.Event()
    stop.set()
    rows, status = list(speed.run(1, 3, 3, Limits(), stop=stop))[-1]
    assert rows == [] and "Stopped" in status
    for args in [(3, 2, 5), (0, 2, 5), (1, 99, 5), (1, 2, 1), ("a", 2, 5)]:
        with pytest.raises(UserError):
            list(speed.run(*args, Limits()))


def test_root_app_py_is_the_spaces_launcher():
    """README front matter: app_file app.py; the `app` package must still win over that file on import."""
    import importlib
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    text = (root / "app.py").read_text()
    assert "from app.__main__ import main" in text
    assert importlib.import_module("app").__path__  # a package, not the launcher module


def test_model_description_names_the_data_source_and_its_address():
    import engine
    from app.catalog import describe
    meta = {"tokens": {"sample_rate": 8000}, "training": {"data": "Some Corpus", "data_url": "https://example.org/c",
                                                        "license": "CC0"}}
    text = describe(engine.ModelInfo("m", "/x", "wavenet", "audio", True, meta))
    assert "trained on: Some Corpus (https://example.org/c)" in text and "data license: CC0" in text


def test_model_description_says_when_the_ids_are_of_the_pre_emphasized_waveform():
    import engine
    from app.catalog import describe
    plain = {"tokens": {"sample_rate": 16000, "quantization": "mulaw", "vocab_size": 256, "preemphasis": 0.0}}
    emphasized = {"tokens": {**plain["tokens"], "preemphasis": 0.85}}
    assert "pre-emphasized" not in describe(engine.ModelInfo("m", "/x", "wavenet", "audio", True, plain))
    assert "mulaw 256 levels of the pre-emphasized waveform (0.85" in describe(
        engine.ModelInfo("m", "/x", "wavenet", "audio", True, emphasized))


def test_live_player_messages_round_trip():
    """A run's messages for the browser's live player: numbered from 1, one run id, int16 samples exactly."""
    from app import live_player
    m = live_player.Messages("run-a")
    samples = np.array([-32768, -1, 0, 1, 32767], dtype=np.int16)
    sent = [m.start(8000), m.chunk(8000, samples), m.chunk(8000, samples[:0]), m.end()]
    back = [live_player.decode(s) for s in sent]
    assert [b["seq"] for b in back] == [1, 2, 3, 4] and {b["run"] for b in back} == {"run-a"}
    assert back[0] == {"run": "run-a", "seq": 1, "rate": 8000} and back[3]["end"] is True
    assert np.array_equal(back[1]["samples"], samples) and len(back[2]["samples"]) == 0
    assert len(set(sent)) == len(sent)  # no message equals the one before (the browser would not see it)
