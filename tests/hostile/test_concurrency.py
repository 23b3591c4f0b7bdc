"""Eight simultaneous streaming generations plus a training job through the launched app (`python -m app`):
all finish, each is reproducible from its seed, and no session's output leaks into another's."""
from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("gradio_client")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.concurrency import Stream, connect, free_port, launch_app, run_load, run_stream, same_output  # noqa: E402
from app_helpers import make_models  # noqa: E402

from trainers.jobs import JobManager  # noqa: E402


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """`python -m app` in its own process, on a free port, with tiny models in its own PLAYGROUND_HOME."""
    tmp_path = tmp_path_factory.mktemp("launched")
    home = tmp_path / "home"
    home.mkdir()
    models = make_models(home)
    port = free_port()
    app = launch_app(home, port, env={"PLAYGROUND_HOME": str(home)})
    try:
        try:
            client = connect(port, tmp_path / "downloads")
        except Exception:
            pytest.fail("the app did not come up; its log ends:\n" + (home / "app.log").read_text()[-3000:])
        yield client, port, home, models, tmp_path
    finally:
        os.killpg(app.pid, 15)
        app.wait(timeout=30)


def test_gradio_serves_only_its_own_files(launched):
    _, port, home, _, _ = launched
    base = f"http://127.0.0.1:{port}/gradio_api/file="
    targets = ["/etc/passwd", str(Path(__file__).resolve()), str(home / "models" / "tiny-text" / "config.json"),
               "../../../../etc/passwd", str(Path(__file__).resolve().parents[2] / "README.md")]
    for target in targets:
        try:
            with urllib.request.urlopen(base + urllib.parse.quote(target), timeout=30) as r:
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        assert status in (403, 404), f"{target} was served ({status})"


def test_eight_streams_and_a_training_job(launched):
    client, port, home, models, tmp_path = launched
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 200)
    streams, job_id = run_load(client, models, n=8, cond="3", seconds=0.5, tokens=60, train_file=corpus)
    assert [s.error for s in streams] == [None] * 8
    assert all(s.first_chunk_s is not None and s.total_s is not None for s in streams)
    for s in streams:
        if s.kind == "text":
            assert s.text.startswith(s.args[1]), (s.args[1], s.text[:40])  # its own seed text, nobody else's
    texts = [s.text for s in streams if s.kind == "text"]
    assert len(set(texts)) == len(texts)
    for s in (streams[0], streams[1], streams[6], streams[7]):  # replayed alone: the same output
        alone = Stream(s.index, s.model, s.kind, s.args)
        run_stream(client, alone)
        assert alone.error is None and same_output(s, alone), s.index
    jobs = JobManager(home / "runs")
    deadline = time.time() + 180  # the job process imports torch and builds its data while we generate
    while time.time() < deadline and jobs.get(job_id).step == 0 and jobs.get(job_id).state == "running":
        time.sleep(0.5)
    job = jobs.get(job_id)
    assert job.state in ("running", "finished") and job.step > 0, (job.state, job.error, jobs.log(job_id)[-500:])
