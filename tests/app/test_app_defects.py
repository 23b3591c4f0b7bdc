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


# ---- defect 10: long m4a / webm prompts keep their end ------------------------------------------------------
def long_recording(path, minutes=12.0, marker_s=5.0, codec=("-c:a", "aac", "-b:a", "16k")):
    """`minutes` of 8 kHz mono silence whose last `marker_s` seconds are a 1 kHz tone, made by the bundled ffmpeg."""
    import subprocess

    from app.ffmpeg import ensure_ffmpeg
    exe = ensure_ffmpeg()
    quiet = minutes * 60 - marker_s
    subprocess.run([exe, "-v", "error", "-y", "-f", "lavfi", "-i", f"anullsrc=r=8000:cl=mono:d={quiet}",
                    "-f", "lavfi", "-i", f"sine=f=1000:r=8000:d={marker_s}",
                    "-filter_complex", "[0][1]concat=n=2:v=0:a=1", *codec, str(path)], check=True, timeout=120)
    return str(path)


@pytest.mark.parametrize("suffix,codec", [(".m4a", ("-c:a", "aac", "-b:a", "16k")),
                                          (".webm", ("-c:a", "libopus", "-b:a", "8k"))])
def test_a_long_m4a_or_webm_prompt_keeps_its_end_and_says_its_real_length(tmp_path, suffix, codec):
    import numpy as np

    import engine
    from app.prompts import audio_prompt, read_prompt_audio
    path = long_recording(tmp_path / f"long{suffix}", codec=codec)
    wave, rate, seconds = read_prompt_audio(path, keep_seconds=10.0)
    assert abs(seconds - 720.0) < 1.0, seconds  # the whole recording, not ffmpeg's old 600 s cut
    assert abs(len(wave) / rate - 10.0) < 0.05
    # the kept 10 s are the end: silence, then the marker tone in the last 5 s
    assert np.abs(wave[: int(4 * rate)]).max() < 0.01 and np.abs(wave[-int(4 * rate):]).max() > 0.05
    warnings = []
    tokens = engine.TokenSpec("audio", 256, sample_rate=8000, quantization="mulaw")
    ids = audio_prompt(path, tokens, Limits(max_prompt_seconds=10.0), warnings.append)
    assert len(ids) == 80000
    assert warnings == ["The audio prompt is 12 min 0 s long; only its last 10 s are used."], warnings


def test_a_long_wav_prompt_is_read_from_its_end_only(tmp_path, monkeypatch):
    import numpy as np
    import soundfile as sf

    from app.prompts import read_prompt_audio
    rate = 1000
    data = np.zeros(700 * rate, np.float32)
    data[-rate:] = 0.5
    sf.write(tmp_path / "long.wav", data, rate)
    reads = []
    real_read = sf.read
    monkeypatch.setattr(sf, "read", lambda *a, **kw: reads.append(kw.get("start")) or real_read(*a, **kw))
    wave, got_rate, seconds = read_prompt_audio(str(tmp_path / "long.wav"), keep_seconds=10.0)
    assert got_rate == rate and seconds == 700.0 and len(wave) == 10 * rate and wave[-1] == 0.5
    assert reads == [690 * rate]  # seeked to the end: the first 690 s are never decoded


# ---- defect 12: messages ------------------------------------------------------------------------------------
def test_a_text_file_named_mp3_is_not_a_readable_audio_file_and_no_server_path_is_shown(ui, tmp_path):
    app, models = ui
    fake = tmp_path / "song.mp3"
    fake.write_text("these are my notes, not a song\n" * 40)
    with pytest.raises(gr.Error) as e:
        list(app.on_generate(models["audio"], "", str(fake), "1", 1.0, 0, 1.0, 0.5, 10, 1, 1))
    message = e.value.message
    assert "song.mp3" in message and "not a readable audio file" in message, message
    assert str(tmp_path) not in message and "pipe" not in message


@pytest.mark.parametrize("model", [["tiny-text"], {"name": "x"}, 3])
def test_a_model_of_the_wrong_type_through_the_api_gets_one_clear_message(ui, model):
    app, _ = ui
    with pytest.raises(gr.Error, match="The model must be one name from the model list"):
        list(app.on_generate(model, "hi", None, None, 1.0, 0, 1.0, 0.5, 10, 1, 1))
    assert "must be one name" in app.on_model(model)[0]


# ---- defect 2 (app side): the family follows the uploaded data ---------------------------------------------
def names_file(folder):
    path = folder / "names.txt"
    path.write_text("\n".join(["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn",
                               "abigail", "emily", "ella"] * 5) + "\n")
    return str(path)


def test_the_default_family_follows_the_detected_data(ui, tmp_path):
    from app import train
    from test_app_train import wav_bytes
    app, _ = ui
    clip = tmp_path / "clip.wav"
    clip.write_bytes(wav_bytes())
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("It was the best of times, it was the worst of times. " * 50)
    assert train.suggested_family([names_file(tmp_path)], "Detect from the files", "wavenet")[0] in \
        ("hierarchical", "bytenet", "rnn")
    assert train.suggested_family([str(corpus)], "Detect from the files", "wavenet")[0] == "bytenet"
    assert train.suggested_family([str(clip)], "Detect from the files", "bytenet")[0] == "wavenet"
    assert train.suggested_family([str(clip)], "Detect from the files", "samplernn")[0] == "samplernn"  # it fits
    update, note = app.on_train_files([str(corpus)], "Detect from the files", "wavenet")
    assert update["value"] == "bytenet" and "text corpus" in note
    assert app.on_train_files([str(clip)], "Detect from the files", "wavenet")[0] == gr.skip()
    assert app.on_train_files([], "Detect from the files", "wavenet") == (gr.skip(), "")


def test_a_names_list_kept_on_wavenet_is_refused_with_a_toast(ui, tmp_path):
    app, _ = ui
    with pytest.raises(gr.Error, match="names.txt is a names list .*but wavenet is an audio family.*pick"):
        app.on_train_start([names_file(tmp_path)], "Detect from the files", "wavenet", "small", 1, "", "")


# ---- defect 11: PLAYGROUND_MAX_JOBS -------------------------------------------------------------------------
def test_playground_max_jobs_sets_how_many_jobs_run(tiny_models):
    assert App(Limits(max_jobs=3)).jobs.max_concurrent == 3
    assert App(Limits.from_env({"PLAYGROUND_MAX_JOBS": "2"})).jobs.max_concurrent == 2
    assert App(Limits()).jobs.max_concurrent == 1


# ---- friction on the Train tab ------------------------------------------------------------------------------
def make_job(root, name, created, minutes=None, **status):
    from trainers import runfiles
    from trainers.jobs import JOB_FILE
    folder = root / name
    folder.mkdir(parents=True)
    runfiles.write_json(folder / JOB_FILE, {"id": name, "name": name, "family": "bytenet", "created": created,
                                            "minutes": minutes})
    runfiles.update_status(folder, **{"state": "finished", "step": 10, "total": 10, **status})
    return folder


def test_an_unnamed_audio_jobs_data_is_named_after_the_upload_not_the_time(tmp_path):
    import zipfile

    from app import train
    from test_app_train import wav_bytes
    z = tmp_path / "my-clips.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.wav", wav_bytes())
    data, _ = train.stage_upload([str(z)], "Detect from the files", Limits(), print, root=tmp_path / "up")
    assert data.name == "my-clips"  # the job id is <time>-<family>-<data name>: no second timestamp
    clips = [tmp_path / f"{i}.wav" for i in range(2)]
    for c in clips:
        c.write_bytes(wav_bytes())
    data, _ = train.stage_upload([str(c) for c in clips], "Detect from the files", Limits(), print,
                                 root=tmp_path / "up")
    assert data.name == "audio" and re.fullmatch(r"\d{8}-\d{6}(-\d+)?", data.parent.name)


def test_the_page_selects_the_newest_job_now_not_at_start_up(tiny_models, monkeypatch):
    from engine.paths import runs_dir
    make_job(runs_dir(), "20261201-100000-old", 1.0)
    app = App(Limits())
    demo = app.build()
    job_box = component(demo, "train-job")
    assert job_box["props"].get("value") in (None, [], "")  # not the newest job at build time
    make_job(runs_dir(), "20261201-110000-new", 2.0)  # started after start-up (e.g. by another process)
    fn, inputs, outputs = app._train_load
    out = fn(*[getattr(i, "value", None) for i in inputs])
    assert out[1]["value"] == "20261201-110000-new"
    load_fns = [d for d in demo.get_config_file()["dependencies"]
                if any(t[1] == "load" for t in d["targets"])]
    assert any(len(d["outputs"]) == len(outputs) for d in load_fns)


def test_max_steps_box_is_empty_and_means_the_presets(ui):
    app, _ = ui
    box = component(app.demo, "train-max-steps")
    assert box["type"] != "number" and box["props"]["value"] in ("", None)
    from app import train
    from test_app_train import FakeManager
    m = FakeManager()
    for given, want in [("", None), ("  ", None), ("500", 500), ("1,000", 1000), (None, None)]:
        m.started.clear()
        train.start_job(m, [names_file_for(app)], "Names list (one per line)", "bytenet", "small", 1, given, "",
                        Limits())
        assert m.started[0][2]["max_steps"] == want, given


def names_file_for(app):
    import tempfile
    from pathlib import Path
    folder = Path(tempfile.mkdtemp())
    return names_file(folder)


def test_time_limited_jobs_show_time_progress_and_how_they_ended(tmp_path):
    from app import train
    from trainers.jobs import JobManager
    root = tmp_path / "runs"
    make_job(root, "a-running", 1.0, minutes=5, state="running", step=283, total=2000, elapsed_s=150.0)
    make_job(root, "b-done", 2.0, minutes=5, state="finished", step=283, total=2000, elapsed_s=300.0,
             stop_reason="minutes")
    m = JobManager(root)
    m._refresh = lambda folder: "running"  # no process behind the fake running job
    running = m._job(root / "a-running")
    fraction, words = train.job_progress(running)
    assert fraction == 0.5 and "2.5 of 5 min" in words and "step 283 of at most 2,000" in words
    done = m._job(root / "b-done")
    fraction, words = train.job_progress(done)
    assert fraction == 1.0 and words == "finished at step 283: its 5-minute budget ran out"
    rows = {r[-1]: r for r in train.jobs_table(m)}
    assert rows["b-done"][:2] == ["finished", "283 steps"] and "283/2000" not in str(rows)
    assert rows["a-running"][1] == "50% (step 283)"


# ---- samples in the Train tab -------------------------------------------------------------------------------
def write_samples(folder, kind="audio"):
    import json

    import numpy as np

    import engine
    records = []
    for step, loss in [(10, 3.0), (20, 2.5)]:
        rel = f"samples/step-{step:06d}"
        (folder / rel).mkdir(parents=True, exist_ok=True)
        if kind == "audio":
            files = [f"{rel}/0-zero.wav", f"{rel}/1-one.wav"]
            for f in files:
                engine.audio.write_wav(folder / f, np.zeros(800, np.float32) + step / 100, 8000)
            records.append({"step": step, "val_loss": loss, "files": files, "labels": ["zero", "one"],
                            "text": None, "shortened": False, "skipped": None})
        else:
            (folder / rel / "sample.txt").write_text(f"text at {step}")
            records.append({"step": step, "val_loss": loss, "files": [f"{rel}/sample.txt"], "labels": [None],
                            "text": f"text at {step}", "shortened": False, "skipped": None})
    records.append({"step": 30, "val_loss": 2.4, "files": [], "labels": [], "text": None, "skipped": "budget"})
    (folder / "samples" / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_the_train_tab_plays_the_latest_sample_and_steps_back(tiny_models):
    from engine.paths import runs_dir
    app = App(Limits())
    app.build()
    folder = make_job(runs_dir(), "20261201-120000-voice", 1.0)
    write_samples(folder, "audio")
    out = app.on_train_tick("20261201-120000-voice", None, None)
    pick, caption, text, audio, files = out[9:14]
    assert [v for _, v in pick["choices"]] == ["latest", "20", "10"] and pick["value"] == "latest"
    assert "step 20 · held-out 2.500 nats" in pick["choices"][1][0] and "class zero" in caption
    assert audio["visible"] and not text["visible"]
    rate, wave = audio["value"]  # (rate, int16): given a path, Gradio would run ffprobe, which is not shipped
    assert rate == 8000 and wave.dtype.name == "int16" and abs(wave[0] / 32768 - 0.2) < 0.01  # step 20's class 0
    assert files["visible"] and len(files["value"]) == 2 and files["value"][0].endswith("0-zero.wav")
    app.sample_audio.postprocess(audio["value"])  # Gradio can send it
    # the next tick leaves the player alone (a new value would restart it)
    again = app.on_train_tick("20261201-120000-voice", None, out[8])
    assert again[12] == gr.skip() and again[9] == gr.skip()
    # step back to step 10
    back = app.on_train_tick("20261201-120000-voice", None, out[8], "10")
    assert abs(back[12]["value"][1][0] / 32768 - 0.1) < 0.01 and "step 10" in back[10]


def test_the_train_tab_shows_text_samples(tiny_models):
    from engine.paths import runs_dir
    app = App(Limits())
    app.build()
    folder = make_job(runs_dir(), "20261201-130000-names", 1.0)
    out = app.on_train_tick("20261201-130000-names", None, None)
    assert "No samples yet" in out[10] and out[11]["value"] == ""
    write_samples(folder, "text")
    out = app.on_train_tick("20261201-130000-names", None, out[8])
    assert out[11]["value"] == "text at 20" and out[11]["visible"] and not out[12]["visible"]


# ---- friction: messages -------------------------------------------------------------------------------------
def test_a_run_folder_given_as_a_model_suggests_its_best_checkpoint(tmp_path):
    import engine
    from engine.checkpoint import CheckpointError
    model = engine.build_model("rnn", hidden_size=8)
    engine.save_model(model, tmp_path / "run" / "best", data="x")
    with pytest.raises(CheckpointError, match=r"config.json is missing; did you mean .*run/best\?"):
        engine.load_model(tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"config.json is missing$"):
        engine.load_model(tmp_path)


def test_the_dates_model_says_what_kind_of_date_it_reads(ui):
    from app import generate
    from app.errors import UserError
    app, _ = ui
    import engine
    from engine.paths import user_models_dir
    s2s = engine.build_model("seq2seq", encoder="bytenet", decoder="rnn", attention="additive", d=8, enc_sets=1,
                             cell="gru", hidden_size=8)
    path = str(engine.save_model(s2s, user_models_dir() / "tiny-dates", data="untrained (test)"))
    with pytest.raises(UserError) as e:
        list(generate.run(generate.GenerateRequest(path, "  ", tokens=5), app.cache, app.limits))
    assert "in words" not in str(e.value) and "month as a word" in str(e.value)


def test_resuming_a_running_job_says_it_is_running_not_that_the_limit_is_reached(tmp_path):
    from app import train
    from app.errors import UserError
    from trainers.jobs import JobManager
    root = tmp_path / "runs"
    make_job(root, "a-running", 1.0, state="running", step=3, total=10)
    m = JobManager(root)
    m._refresh = lambda folder: "running"
    with pytest.raises(UserError, match="a-running is already running; nothing to resume"):
        train.resume_job(m, "a-running", 1, Limits())


def test_the_train_tab_offers_the_audio_suffixes_the_trainer_reads():
    import engine
    from app import train
    assert train.AUDIO_EXT == engine.audio.AUDIO_SUFFIXES and ".au" in train.AUDIO_EXT
