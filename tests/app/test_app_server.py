"""The app served for real on a free port and driven with gradio_client, as a user's browser would drive it."""
from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest
import soundfile as sf
import torch
from app_helpers import AUDIO_RATE, make_models

from app import live_player

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    old_home = os.environ.get("PLAYGROUND_HOME")
    os.environ["PLAYGROUND_HOME"] = str(home)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    models = make_models(home)
    from app.ffmpeg import ensure_ffmpeg
    from app.ui import build_app

    assert ensure_ffmpeg() is not None
    from app.limits import Limits

    demo, _ = build_app(Limits(audio_seconds=600.0))  # long enough that Stop lands before the end
    demo.queue(default_concurrency_limit=1)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                max_file_size="1mb")
    client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(home / "downloads"))
    try:
        yield client, models, home
    finally:
        client.close()
        demo.close()
        from trainers.jobs import JobManager  # training jobs outlive the app by design: stop any left running
        jobs = JobManager(home / "runs")
        for job in jobs.list():
            if job.state in ("queued", "running"):
                jobs.cancel(job.id, grace_s=2.0)
        torch.set_num_threads(threads)
        if old_home is None:
            os.environ.pop("PLAYGROUND_HOME", None)
        else:
            os.environ["PLAYGROUND_HOME"] = old_home


@pytest.fixture
def served(server, monkeypatch):
    """The module's server, with PLAYGROUND_HOME pointing at its models (conftest gives each test its own home)."""
    monkeypatch.setenv("PLAYGROUND_HOME", str(server[2]))
    return server


def gen_args(model, seed_text="", prompt=None, cond=None, temperature=1.0, seconds=0.5, tokens=50, seed=3,
             variations=1):
    return (model, seed_text, prompt, cond, temperature, 0, 1.0, seconds, tokens, seed, variations)


def test_api_lists_the_events(served):
    client, _, _ = served
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/generate", "/stop", "/model_form", "/refresh_models", "/speed"} <= names


def test_text_generation_streams(served):
    client, models, _ = served
    job = client.submit(*gen_args(models["text"], seed_text="Once", tokens=1500), api_name="/generate")
    texts = [out[1] for out in job if isinstance(out[1], str)]
    assert len(texts) > 2, texts  # cleared box, several growing updates, the final text
    assert texts[-1].startswith("Once") and len(texts[-1]) > len("Once")
    assert "tokens/s" in job.outputs()[-1][2]


def test_audio_generation_has_requested_length(served):
    client, models, _ = served
    job = client.submit(*gen_args(models["audio"], cond="4", seconds=0.8, variations=2), api_name="/generate")
    outs = list(job)
    live = [live_player.decode(o[0]) for o in outs if isinstance(o[0], str) and o[0]]
    # the live player's messages: the run's start (its rate), the chunks in order, the end
    assert live[0]["rate"] == AUDIO_RATE and "samples" not in live[0] and live[-1].get("end") is True
    assert [m["seq"] for m in live] == list(range(1, len(live) + 1)) and len({m["run"] for m in live}) == 1
    played = np.concatenate([m["samples"] for m in live if "samples" in m])
    final = job.outputs()[-1]
    full, files, image, status = final[3], final[4], final[5], final[2]
    assert "samples/s" in status
    data, rate = sf.read(full)
    assert rate == AUDIO_RATE and len(data) == int(0.8 * AUDIO_RATE)
    assert len(files) == 2 and all(len(sf.read(f)[0]) == int(0.8 * AUDIO_RATE) for f in files)
    assert len(played) == len(data) and np.abs(played / 32768 - data).max() < 1e-4  # the live copy is the clip
    assert isinstance(image, dict)  # the image is not drawn inside the generation's event (the stream ends first)
    image = client.predict(api_name="/figure")  # the follow-up event the page runs: this session's last run
    assert image.endswith(".png") and os.path.getsize(image) > 1000


def test_stop_button_stops_a_long_generation(served):
    client, models, _ = served
    job = client.submit(*gen_args(models["audio"], cond="1", seconds=600.0), api_name="/generate")
    deadline = time.time() + 30
    while time.time() < deadline and len(job.outputs()) < 2:  # the cleared outputs, then the first chunk
        time.sleep(0.05)
    client.predict(api_name="/stop")
    final = job.result(timeout=60)
    assert "Stopped" in final[2], final[2]
    assert len(sf.read(final[3])[0]) < 600 * AUDIO_RATE


def test_a_second_users_stop_while_queued_is_kept_and_not_shared(served):
    """User A generates; user B's request waits in the queue and B presses Stop: B's run ends as soon as it
    starts, A's run goes on until A stops it."""
    client, models, home = served
    other = Client(client.src, verbose=False, download_files=str(home / "downloads-b"))
    try:
        a = client.submit(*gen_args(models["audio"], cond="1", seconds=600.0), api_name="/generate")
        deadline = time.time() + 30
        while time.time() < deadline and len(a.outputs()) < 2:
            time.sleep(0.05)
        b = other.submit(*gen_args(models["audio"], cond="2", seconds=600.0), api_name="/generate")
        deadline = time.time() + 30
        while time.time() < deadline and b.status().code.name != "IN_QUEUE":
            time.sleep(0.05)
        assert b.status().code.name == "IN_QUEUE", b.status()
        other.predict(api_name="/stop")
        time.sleep(1.0)
        assert not a.done()  # B's Stop did not stop A
        client.predict(api_name="/stop")
        assert "Stopped" in a.result(timeout=60)[2]
        final = b.result(timeout=60)
        assert final[2].startswith("Stopped before anything was generated"), final[2]
    finally:
        other.close()


def test_bad_input_gets_a_message_and_the_app_keeps_serving(served, tmp_path):
    client, models, _ = served
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" * 20)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    huge = tmp_path / "huge.wav"
    huge.write_bytes(b"\x00" * (2 * 2**20))  # over the 1 MB cap of this test server
    cases = [
        (gen_args(models["audio"], cond="2", prompt=handle_file(str(corrupt))), "Audio prompt"),
        (gen_args(models["audio"], cond="2", prompt=handle_file(str(empty))), "empty"),
        (gen_args(models["audio"], cond="2", prompt=handle_file(str(huge))), "size|large|exceeds"),
        (gen_args(models["audio"], cond="99"), "pick one of"),
        (gen_args(models["text"], temperature=-1), "less than minimum"),
        (gen_args(str(models["text"]) + "/../../../../etc"), "not in the model list"),
    ]
    for args, message in cases:
        with pytest.raises(Exception, match=message):
            client.predict(*args, api_name="/generate")
    ok = client.predict(*gen_args(models["text"], seed_text="still here", tokens=5), api_name="/generate")
    assert ok[1].startswith("still here")


def test_model_form_and_a_model_saved_later(served):
    client, models, home = served
    form = client.predict(models["audio"], api_name="/model_form")
    assert "wavenet" in form[0] and "synthetic test tones" in form[0]
    # a model saved after start-up (as a finished training job does) can be picked and used at once
    import engine
    later = engine.save_model(engine.load_model(models["text"]), home / "models" / "later-model", data="later")
    picker = client.predict(str(later), api_name="/refresh_models")
    assert picker["value"] == "models/later-model" and ["models/later-model"] in [c[1:] for c in picker["choices"]]
    assert not any(c[1].startswith("/") for c in picker["choices"])  # the API shows names, not server paths
    out = client.predict(*gen_args(str(later), seed_text="new", tokens=5), api_name="/generate")
    assert out[1].startswith("new")


def test_training_job_from_the_ui_makes_progress_and_its_model_appears(served, tmp_path):
    client, models, home = served
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat and the dog ran far away. " * 200)
    out = client.predict([handle_file(str(corpus))], "Detect from the files", "bytenet", "small", 1.0, 4,
                         "ui test", api_name="/train_start")
    job_id = out[1]["value"] if isinstance(out[1], dict) else out[1]
    assert "ui-test" in job_id
    deadline, states, picker = time.time() + 120, [], None
    while time.time() < deadline:
        tick = client.predict(job_id, models["text"], api_name="/train_tick")
        table, status = tick[0], tick[2]
        states.append(next(row[0] for row in table["data"] if row[-1] == job_id))
        if isinstance(tick[7], dict) and "choices" in tick[7]:
            picker = tick[7]
        if states[-1] in ("finished", "failed", "cancelled"):
            break
        time.sleep(1.0)
    assert states[-1] == "finished", (states, status, tick[6])
    assert "best held-out loss" in status
    for curve in tick[4:6]:  # training and held-out loss curves both have points
        assert curve and curve["data"], tick[4:6]
    best = f"runs/{job_id}/best"
    assert picker is not None and best in [c[1] for c in picker["choices"]]
    # and the new model generates
    text = client.predict(*gen_args(best, seed_text="the ", tokens=20), api_name="/generate")[1]
    assert text.startswith("the ")
