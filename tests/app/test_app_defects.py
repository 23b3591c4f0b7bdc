"""Defects found trying the playground as a new user (issue "Hear it learn"), each checked at the handler level."""
from __future__ import annotations

import re
import threading
import time
from types import SimpleNamespace

import gradio as gr
import pytest
from app_helpers import tiny_models  # noqa: F401  (fixture)

from app.limits import Limits
from app.ui import App


@pytest.fixture
def ui(tiny_models):
    app = App(Limits(audio_seconds=600.0))
    app.build()
    return app, tiny_models


def session(name: str):
    return SimpleNamespace(session_hash=name)


def component(demo: gr.Blocks, elem_id: str) -> dict:
    return next(c for c in demo.get_config_file()["components"] if c["props"].get("elem_id") == elem_id)


# ---- defect 1: the Seed box ---------------------------------------------------------------------------------
def seed_of(note: str) -> int:
    return int(re.search(r"seed \*\*(\d+)\*\*", note).group(1))


def test_an_empty_seed_box_stays_empty_and_each_run_shows_its_seed(ui):
    app, models = ui
    box = component(app.demo, "seed")
    # Gradio 6's Number shows an empty value as 0 in the browser (`value ??= 0`): the box must be another kind
    assert box["type"] != "number" and box["props"]["value"] in ("", None)
    runs = [list(app.on_generate(models["text"], "ab", None, None, 1.0, 0, 1.0, 0.6, 40, "", 1)) for _ in range(3)]
    notes = [outs[0][6] for outs in runs]
    seeds = [seed_of(n) for n in notes]
    assert len(set(seeds)) == 3, seeds  # empty = a new random seed each run
    assert all(outs[-1][6] == gr.skip() for outs in runs)  # the note is written once per run, at its start
    # the shown seed repeats the run
    again = list(app.on_generate(models["text"], "ab", None, None, 1.0, 0, 1.0, 0.6, 40, str(seeds[0]), 1))
    assert again[-1][1] == runs[0][-1][1] and seed_of(again[0][6]) == seeds[0]


# ---- defect 6: Stop -----------------------------------------------------------------------------------------
def test_generate_stop_does_not_stop_a_speed_run_of_the_same_session(ui):
    app, _ = ui
    speed = app.stops.arm("speed:s1")
    app.on_stop(session("s1"))
    assert not speed.is_set()
    app.on_stop_speed(session("s1"))
    assert speed.is_set()


def test_a_stop_while_the_request_waits_in_the_queue_stops_it_when_it_starts(ui):
    """Two sessions: A is generating; B's request waits in the queue and B presses Stop.  B's run then ends at
    once when it starts, and A's run is not touched."""
    app, models = ui
    waiting = {"generate:B": 1}
    app.stops.waiting = lambda key: waiting.get(key, 0)
    a_run = app.on_generate(models["audio"], "", None, "1", 1.0, 0, 1.0, 600.0, 10, 1, 1, request=session("A"))
    next(a_run)  # A is running
    app.on_stop(session("B"))  # B's request is queued behind A
    waiting.clear()
    a_status = next(a_run)[2]
    assert "Stopped" not in a_status
    b_outs = list(app.on_generate(models["audio"], "", None, "1", 1.0, 0, 1.0, 600.0, 10, 1, 1,
                                  request=session("B")))
    assert b_outs[-1][2].startswith("Stopped before anything was generated"), b_outs[-1][2]
    # B's stop was used up: B's next run plays
    b_next = list(app.on_generate(models["audio"], "", None, "1", 1.0, 0, 1.0, 0.2, 10, 1, 1,
                                  request=session("B")))
    assert b_next[-1][2].startswith("Done")
    app.on_stop(session("A"))
    rest = list(a_run)
    assert rest[-1][2].startswith("Stopped:"), rest[-1][2]


def test_a_stop_with_nothing_running_or_queued_is_forgotten(ui):
    app, models = ui
    app.on_stop(session("C"))  # idle: must not stop C's next run
    outs = list(app.on_generate(models["text"], "ab", None, None, 1.0, 0, 1.0, 0.6, 20, 1, 1,
                                request=session("C")))
    assert outs[-1][2].startswith("Done")


def test_the_queue_is_read_per_session_and_per_tab(ui):
    """queued_requests reads Gradio's queue: only this session's waiting (not running) requests of this tab."""
    from app.ui import queued_requests
    app, _ = ui

    def event(session_hash, api_name):
        return SimpleNamespace(session_hash=session_hash, fn=SimpleNamespace(api_name=api_name))

    running, waiting_b, speed_b, other = event("A", "generate"), event("B", "generate"), event("B", "speed"), \
        event("C", "generate")
    queue = SimpleNamespace(active_jobs=[[running], None],
                            event_ids_to_events={str(i): e for i, e in enumerate([running, waiting_b, speed_b, other])})
    demo = SimpleNamespace(_queue=queue)
    assert queued_requests(demo, "generate:A") == 0  # running, not waiting
    assert queued_requests(demo, "generate:B") == 1
    assert queued_requests(demo, "speed:B") == 1
    assert queued_requests(demo, "speed:A") == 0
    assert queued_requests(None, "generate:B") == 0
    # the real demo has the queue fields this reads
    app.demo.queue()
    assert queued_requests(app.demo, "generate:nobody") == 0


def test_stop_switch_thread_safety_of_pending_stops():
    from app.stop import StopSwitch
    s = StopSwitch(waiting=lambda key: 2 if key == "generate:x" else 0)
    assert s.stop("generate:x") and not s.stop("generate:y")
    first, second, third = s.arm("generate:x"), None, None
    assert first.is_set()
    s.release("generate:x", first)
    second = s.arm("generate:x")
    assert second.is_set()
    s.release("generate:x", second)
    s.waiting = lambda key: 0
    third = s.arm("generate:x")
    assert not third.is_set()
    done = threading.Event()
    threading.Thread(target=lambda: (time.sleep(0.01), s.stop("generate:x"), done.set())).start()
    assert done.wait(5) and third.is_set()
