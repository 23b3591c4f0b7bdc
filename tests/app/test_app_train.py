"""Train tab handlers without a server or a training process: uploads, job requests, the job view."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import soundfile as sf

from app import train
from app.errors import UserError
from app.limits import Limits
from trainers import runfiles
from trainers.jobs import JOB_FILE, JobManager

LIMITS = Limits()


class FakeManager:
    """Records start() calls; list() returns what the test put in `jobs`."""

    def __init__(self, jobs=()):
        self.jobs = list(jobs)
        self.started = []

    def list(self):
        return self.jobs

    def start(self, family, data, **kw):
        self.started.append((family, data, kw))
        return "job-1"


class J:
    def __init__(self, state):
        self.state = state


def wav_bytes(seconds=0.1, rate=8000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(np.arange(int(seconds * rate)) / 5), rate, format="WAV")
    return buf.getvalue()


def test_families_and_presets():
    fams = train.families()
    assert "wavenet" in fams and "bytenet" in fams
    assert "small" in [v for _, v in train.preset_choices("wavenet")]
    assert train.preset_choices(None) == []
    assert train.family_kind("wavenet", "small") == "audio" and train.family_kind("bytenet", "small") == "text"


def test_stage_text_names_and_non_utf8(tmp_path):
    src = tmp_path / "corpus.txt"
    src.write_text("hello world\n" * 50)
    data, kind = train.stage_upload([str(src)], "Detect from the files", LIMITS, print, root=tmp_path / "up")
    assert data.read_text() == src.read_text() and kind == "auto" and data.parent.parent == tmp_path / "up"
    data, kind = train.stage_upload([str(src)], "Names list (one per line)", LIMITS, print, root=tmp_path / "up")
    assert kind == "names"
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café crème\n".encode("latin-1") * 20)
    warnings = []
    data, _ = train.stage_upload([str(latin)], "Text (one document)", LIMITS, warnings.append, root=tmp_path / "up")
    assert data.read_bytes() == latin.read_bytes() and any("not valid UTF-8" in w for w in warnings)


@pytest.mark.parametrize("setup,kind,message", [
    (lambda d: [], "Detect from the files", "Upload some data first"),
    (lambda d: [_write(d / "empty.txt", b"")], "Detect from the files", "empty"),
    (lambda d: [_write(d / "big.txt", b"a" * (2 * 2**20))], "Detect from the files", "limit is 1 MB"),
    (lambda d: [_write(d / "bin.txt", b"\x00\x01\x02" * 100)], "Text (one document)", "binary"),
    (lambda d: [_write(d / "a.txt", b"x" * 10), _write(d / "b.txt", b"y" * 10)], "Text (one document)",
     "exactly one file"),
    (lambda d: [_write(d / "notes.txt", b"x" * 10)], "Audio (files or a zip)", "Audio training takes"),
    (lambda d: [_write(d / "fake.zip", b"not a zip at all")], "Audio (files or a zip)", "not a readable zip"),
    (lambda d: [_write(d / "clip.wav", wav_bytes())], "Text (one document)", "not a text file"),
    (lambda d: [_zip(d / "docs.zip", {"readme.txt": b"hi"})], "Audio (files or a zip)", "No audio files"),
])
def test_stage_refuses_bad_uploads(tmp_path, setup, kind, message):
    with pytest.raises(UserError, match=message):
        train.stage_upload(setup(tmp_path), kind, Limits(max_upload_mb=1), print, root=tmp_path / "up")


def _write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _zip(path, members: dict) -> str:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return str(path)


def test_stage_audio_files_and_a_safe_zip(tmp_path):
    clip = _write(tmp_path / "one.wav", wav_bytes())
    z = _zip(tmp_path / "more.zip", {"../../evil.wav": wav_bytes(), "sub/dir/two.wav": wav_bytes(),
                                     "__MACOSX/._two.wav": b"junk", "notes.txt": b"hello"})
    warnings = []
    folder, kind = train.stage_upload([clip, z], "Detect from the files", LIMITS, warnings.append,
                                      root=tmp_path / "up")
    assert kind == "audio"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["evil.wav", "one.wav", "two.wav"]  # flattened into the folder: nothing escapes it
    assert not (tmp_path / "evil.wav").exists()
    assert any("2 file(s) that are not audio" in w for w in warnings)


def test_zip_bomb_is_refused(tmp_path):
    big = _zip(tmp_path / "bomb.zip", {f"{i}.wav": b"\x00" * (600 * 1024) for i in range(20)})
    with pytest.raises(UserError, match="unpacks to more than"):
        train.stage_upload([big], "Audio (files or a zip)", Limits(max_upload_mb=1), print, root=tmp_path / "up")


def test_start_job_checks(tmp_path):
    text = _write(tmp_path / "t.txt", b"some text " * 100)
    clip = _write(tmp_path / "c.wav", wav_bytes())
    m = FakeManager()
    job = train.start_job(m, [text], "Names list (one per line)", "bytenet", "small", 1.0, 50, " mine ", LIMITS,
                          root=tmp_path / "up")
    family, data, kw = m.started[0]
    assert job == "job-1" and family == "bytenet" and kw["overrides"] == {"data_kind": "names"}
    assert kw["minutes"] == 1.0 and kw["max_steps"] == 50 and kw["name"] == "mine"
    cases = [
        (dict(files=[clip], family="bytenet"), "but bytenet is a text family: pick wavenet"),
        (dict(files=[text], family="wavenet", kind="Text (one document)"), "but wavenet is an audio family"),
        (dict(files=[text], family="wavenet"), "t.txt is a text corpus, but wavenet is an audio family"),
        (dict(family="nope"), "Pick a model family"),
        (dict(preset="huge"), "Pick a preset"),
        (dict(minutes=float("nan")), "Minutes must be more than 0"),
        (dict(minutes=10**6), "at most 30"),
        (dict(max_steps="many"), "Max steps must be a whole number"),
    ]
    for change, message in cases:
        args = dict(files=[text], kind="Detect from the files", family="bytenet", preset="small", minutes=1,
                    max_steps=None)
        args.update(change)
        with pytest.raises(UserError, match=message):
            train.start_job(m, args["files"], args["kind"], args["family"], args["preset"], args["minutes"],
                            args["max_steps"], None, LIMITS, root=tmp_path / "up")
    with pytest.raises(UserError, match="already running or queued"):
        train.start_job(FakeManager([J("running")]), [text], "Detect from the files", "bytenet", "small", 1, None,
                        None, LIMITS, root=tmp_path / "up")


def test_job_view_from_a_run_folder(tmp_path):
    root = tmp_path / "runs"
    folder = root / "20261123-000000-demo"
    folder.mkdir(parents=True)
    runfiles.write_json(folder / JOB_FILE, {"id": folder.name, "name": "demo <b>", "family": "bytenet",
                                            "created": 1.0})
    runfiles.update_status(folder, state="finished", step=40, total=40, val_loss=2.5, val_bits=3.6)
    for step, split, loss in [(10, "train", 5.0), (20, "train", 4.0), (20, "val", 4.2), (40, "val", 2.5)]:
        runfiles.append_metric(folder, {"step": step, "split": split, "loss": loss})
    m = JobManager(root)
    assert train.job_ids(m) == [folder.name]
    view = train.job_view(m, folder.name)
    assert view.state == "finished" and view.fraction == 1.0
    assert "demo &lt;b&gt;" in view.status and "2.500" in view.status
    assert [p["split"] for p in view.metrics] == ["train", "train", "validation", "validation"]
    row = train.jobs_table(m)[0]
    assert row == ["finished", "40 steps", "2.500", "", "demo <b>", "bytenet", folder.name]  # what changes first
    assert "finished at step 40" in view.status
    assert "No job selected" in train.job_view(m, None).status
    assert "no job" in train.job_view(m, "missing").status
    with pytest.raises(UserError, match="no checkpoint to resume"):
        train.resume_job(m, folder.name, 1, LIMITS)
    with pytest.raises(UserError, match="Pick a job"):
        train.cancel_job(m, None)
    assert 'width:50.0%' in train.progress_html(0.5, "running")
