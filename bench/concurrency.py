"""Load on the launched app: N simultaneous streaming generations plus one training job, through gradio_client.

Starts `python -m app` as a user would (its own process, its own queue settings), starts a training job from
the Train tab's endpoint, fires N Generate requests at once (text and audio models alternating, each with its
own seed), and records each stream's latency to its first chunk and its total time.  Then it replays two of
them alone and checks the outputs are identical (reproducible from the seed, no cross-talk between sessions).

    python bench/concurrency.py            # shipped models, writes the figures to docs/BENCHMARKS.md
"""
from __future__ import annotations

import argparse
import datetime
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HEADING = "App under load: 8 streams + a training job"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_app(home: Path, port: int, env: dict | None = None) -> subprocess.Popen:
    """`python -m app` on 127.0.0.1:port with PLAYGROUND_HOME=home; its output goes to home/app.log."""
    full_env = {**os.environ, "PLAYGROUND_HOME": str(home), "GRADIO_SERVER_PORT": str(port),
                "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    log = open(home / "app.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=full_env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def connect(port: int, downloads: Path, timeout_s: float = 180.0):
    from gradio_client import Client
    deadline = time.time() + timeout_s
    while True:
        try:
            return Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(downloads))
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


@dataclass
class Stream:
    index: int
    model: str
    kind: str  # "text" or "audio"
    args: tuple
    first_chunk_s: float | None = None
    total_s: float | None = None
    text: str | None = None
    wav: str | None = None
    error: str | None = None


def gen_args(model: str, kind: str, i: int, cond: str | None, seconds: float, tokens: int) -> tuple:
    seed_text = f"Stream {i} says" if kind == "text" else ""
    return (model, seed_text, None, cond if kind == "audio" else None, 1.0, 0, 1.0, seconds, tokens, 1000 + i, 1)


def run_stream(client, s: Stream) -> None:
    start = time.perf_counter()
    try:
        job = client.submit(*s.args, api_name="/generate")
        for out in job:
            live, text = out[0], out[1]
            got = (s.kind == "audio" and isinstance(live, str) and '"pcm"' in live) or (  # a chunk, not the start
                s.kind == "text" and isinstance(text, str) and len(text) > len(s.args[1]))
            if got and s.first_chunk_s is None:
                s.first_chunk_s = time.perf_counter() - start
        final = job.outputs()[-1]
        s.total_s = time.perf_counter() - start
        s.text, s.wav = final[1], final[3]
    except Exception as e:  # recorded, the caller asserts on it
        s.error = str(e)[:300]


def run_load(client, models: dict, n: int = 8, cond: str = "3", seconds: float = 1.0, tokens: int = 200,
             train_file: Path | None = None, train_family: str = "bytenet",
             jobs_root: Path | None = None) -> tuple[list[Stream], str | None]:
    """Start a training job (if train_file) and n simultaneous generations; returns the streams and the job id.
    With `jobs_root`, the generations start only once the job is past its start-up and training (step > 0)."""
    from gradio_client import handle_file
    job_id = None
    if train_file is not None:
        out = client.predict([handle_file(str(train_file))], "Text (one document)", train_family, "small", 0.5, 40,
                             "load-test", api_name="/train_start")
        job_id = out[1]["value"] if isinstance(out[1], dict) else out[1]
        if jobs_root is not None:
            from trainers.jobs import JobManager
            jobs, deadline = JobManager(jobs_root), time.time() + 300
            while time.time() < deadline and jobs.get(job_id).step == 0 and jobs.get(job_id).state == "running":
                time.sleep(0.5)
    kinds = ["text", "audio"]
    streams = [Stream(i, models[kinds[i % 2]], kinds[i % 2],
                      gen_args(models[kinds[i % 2]], kinds[i % 2], i, cond, seconds, tokens)) for i in range(n)]
    threads = [threading.Thread(target=run_stream, args=(client, s)) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    return streams, job_id


def same_output(a: Stream, b: Stream) -> bool:
    if a.kind == "text":
        return a.text == b.text
    return np.array_equal(sf.read(a.wav, dtype="int16")[0], sf.read(b.wav, dtype="int16")[0])


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from bench.report import machine, write_section
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--streams", type=int, default=8)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--tokens", type=int, default=200)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="load-"))
    text = home / "corpus.txt"
    text.write_text("To be, or not to be, that is the question. " * 400)
    models = {"audio": str(ROOT / "assets/models/wavenet-digits"), "text": str(ROOT / "assets/models/bytenet-shakespeare")}
    port = free_port()
    app = launch_app(home, port)
    try:
        client = connect(port, home / "downloads")
        time.sleep(5)  # let the app's warm-up finish, as a user arriving a little later would see it
        streams, job_id = run_load(client, models, args.streams, seconds=args.seconds, tokens=args.tokens,
                                   train_file=text, jobs_root=home / "runs")
        errors = [s.error for s in streams if s.error]
        replays = []
        for s in streams[:2]:
            r = Stream(s.index, s.model, s.kind, s.args)
            run_stream(client, r)
            replays.append(same_output(s, r))
        from trainers.jobs import JobManager
        job = JobManager(home / "runs").get(job_id)
    finally:
        os.killpg(app.pid, 15)
        app.wait(timeout=30)
    rows = ["| stream | model | first chunk (s) | total (s) |", "|---|---|---|---|"]
    for s in streams:
        rows.append(f"| {s.index} | {Path(s.model).name} | {s.first_chunk_s:.2f} | {s.total_s:.2f} |"
                    if not s.error else f"| {s.index} | {Path(s.model).name} | error: {s.error} | |")
    firsts = sorted(s.first_chunk_s for s in streams if s.first_chunk_s is not None)
    summary = (f"Measured {datetime.date.today()} on {machine()} with `python bench/concurrency.py`: "
               f"`python -m app` launched as a user would, one training job (bytenet small, Train tab endpoint) "
               f"and, once it was training, {args.streams} simultaneous Generate requests through gradio_client (text: "
               f"{args.tokens} tokens from bytenet-shakespeare; audio: {args.seconds:g} s of digit 3 from "
               f"wavenet-digits). Latency to first chunk: median {firsts[len(firsts) // 2]:.2f} s, worst "
               f"{firsts[-1]:.2f} s (the app runs one generation at a time on this 2-core CPU, so later requests "
               f"wait in its queue). Errors: {len(errors)}. Replayed alone, streams 0 and 1 gave identical "
               f"output: {all(replays)}. The generations started once the training job was training; at the end it was {job.state} at step {job.step}.")
    print(summary)
    print("\n".join(rows))
    if not args.no_write:
        write_section(HEADING, summary + "\n\n" + "\n".join(rows))
    return 0 if not errors and all(replays) else 1


if __name__ == "__main__":
    sys.exit(main())
