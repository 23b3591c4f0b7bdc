"""Samples while training: at every evaluation, a short sample of the current model beside its held-out loss.

RUN_DIR/samples/
  step-000500/      one folder per evaluation: `sample.txt` (text models), or one .wav per class (audio models;
                    `sample.wav` for an unconditioned one, `<index>-<label name>.wav` for a conditioned one)
  index.jsonl       one line per evaluation: {"step", "val_loss", "val_bits", "time", "seconds" (generation
                    time), "files": [paths relative to RUN_DIR], "labels": [class name per file, or null],
                    "text": str | null, "shortened": bool, "skipped": reason | null}

Every sample of one kind uses the same seed at every step (cfg.seed, one row per class), so samples of one run are
comparable across steps.  A step's files are written (each atomically) before its index line is appended, so a
reader that follows the index never meets a missing or half-written file.

The cost is bounded: generation may use at most `cfg.sample_budget` (default 5 %) of the training time so far,
resumes included.  Generation stops at that deadline (the sample is then marked `shortened`), and a sample is
skipped when too little of the allowance is left for a useful part of it; both are logged.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import torch

from engine import text as text_codec
from engine.audio import decode_audio, write_wav
from engine.errors import UserError
from engine.generation import generate

from . import runfiles

log = logging.getLogger("trainers.samples")

SAMPLES_DIR, INDEX_FILE = runfiles.SAMPLES_DIR, runfiles.SAMPLES_INDEX
MAX_CLASSES = 16  # a conditioned model samples its first this-many classes
MAX_SOURCES = 3  # a sequence-to-sequence model rewrites this many held-out sources
MIN_SECONDS = 0.02  # an allowance below this is not worth starting a sample for
MIN_SHARE = 0.25  # ... nor one that buys less than this share of the sample, at the rate measured so far


def step_folder(step: int) -> str:
    return f"step-{step:06d}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip("-.")[:40] or "class"


class Sampler:
    """Writes the samples of one run; `spent` (seconds of generation so far) is kept in last/ across resumes."""

    def __init__(self, cfg, model, data, out: Path, spent: float = 0.0):
        self.cfg, self.model, self.data, self.out = cfg, model, data, Path(out)
        self.spent = float(spent)
        self.rate: float | None = None  # tokens per second of generation, measured (all rows together)

    # ---- what to sample ----------------------------------------------------------------------------------
    def plan(self) -> dict | None:
        """The sample's generation arguments, or None with a logged reason when this model is not sampled."""
        model, cfg, tokens = self.model, self.cfg, self.model.tokens
        if tokens.kind == "audio":
            if getattr(model.config, "local_cond_channels", 0):
                return {"skip": "a locally conditioned model (vocoder) needs feature frames; not sampled yet"}
            n = max(1, int(round(cfg.sample_seconds * tokens.sample_rate)))
            names = list(self.data.label_names or [])
            if names:
                names = names[:MAX_CLASSES]
                return {"tokens": n, "batch": len(names), "cond": torch.arange(len(names)), "labels": names}
            return {"tokens": n, "batch": 1, "cond": None, "labels": [None]}
        n = max(1, int(cfg.sample_chars))
        if hasattr(model, "encode"):  # sequence to sequence: rewrite a few held-out sources
            sources = (self.data.sources or {}).get("val") or (self.data.sources or {}).get("train") or []
            sources = [s.tolist() for s in sources[:MAX_SOURCES]]
            if not sources:
                return {"skip": "no source texts to rewrite"}
            return {"tokens": min(n, 256), "batch": len(sources), "sources": sources, "labels": [None]}
        prompt = text_codec.encode(cfg.sample_text) if cfg.sample_text else None
        return {"tokens": n, "batch": 1, "cond": None, "prompt": prompt, "labels": [None]}

    # ---- one evaluation's sample ------------------------------------------------------------------------
    def sample(self, step: int, val_loss: float | None, elapsed: float) -> dict:
        """Generate, write the files and the index line; returns the index record."""
        record: dict[str, Any] = {"step": step, "val_loss": val_loss,
                                  "val_bits": None if val_loss is None else val_loss / 0.6931471805599453,
                                  "time": time.time(), "seconds": 0.0, "files": [], "labels": [], "text": None,
                                  "shortened": False, "skipped": None}
        plan = self.plan()
        allowance = self.cfg.sample_budget * elapsed - self.spent
        if plan.get("skip"):
            record["skipped"] = plan["skip"]
        elif allowance < MIN_SECONDS or (self.rate and allowance * self.rate < MIN_SHARE * plan["tokens"] *
                                         plan["batch"]):
            record["skipped"] = (f"over the sampling budget ({self.cfg.sample_budget:.0%} of training time: "
                                 f"{max(allowance, 0.0):.2f} s left)")
        else:
            try:
                self._generate(step, plan, allowance, record)
            except UserError as e:  # e.g. a seed text outside the model's alphabet
                record["skipped"] = f"cannot sample: {e}"
        if record["skipped"]:
            log.info("step %d: no sample (%s)", step, record["skipped"])
        append_index(self.out, record)
        return record

    def _generate(self, step: int, plan: dict, allowance: float, record: dict) -> None:
        model = self.model
        device = next(model.parameters()).device
        if device.type != "cpu":  # the compiled fast path runs float32 on the CPU
            model = copy.deepcopy(model).float().cpu()
        cond = plan.get("cond")
        t0 = time.perf_counter()
        if plan.get("sources") is not None:
            with torch.no_grad():
                cond = model.encode(plan["sources"])
        chunk = 64 if model.tokens.kind == "text" else 1024
        chunks, made, first = [], 0, None  # first: (tokens, time) after the first chunk, which pays the set-up
        gen = generate(model, plan.get("prompt"), max_new_tokens=plan["tokens"], cond=cond, seed=self.cfg.seed,
                       chunk_size=min(chunk, plan["tokens"]), batch_size=plan["batch"])
        try:
            for ids in gen:
                chunks.append(ids.cpu())
                made += ids.shape[1]
                if first is None:
                    first = (made, time.perf_counter())
                if made < plan["tokens"] and time.perf_counter() - t0 >= allowance:
                    record["shortened"] = True
                    break
        finally:
            gen.close()
        seconds = time.perf_counter() - t0
        self.spent += seconds
        if first is not None and made > first[0]:  # the steady rate, set-up (e.g. the fast path's warm-up) aside
            self.rate = (made - first[0]) * plan["batch"] / max(time.perf_counter() - first[1], 1e-6)
        elif made and self.rate is None:
            self.rate = made * plan["batch"] / max(seconds, 1e-6)
        record["seconds"] = round(seconds, 4)
        if not made:
            record["skipped"] = "nothing generated within the sampling budget"
            return
        ids = torch.cat(chunks, dim=1)
        folder = self.out / SAMPLES_DIR / step_folder(step)
        folder.mkdir(parents=True, exist_ok=True)
        rel = f"{SAMPLES_DIR}/{step_folder(step)}"
        tokens = model.tokens
        if tokens.kind == "audio":
            for row, label in enumerate(plan["labels"]):
                name = "sample.wav" if label is None else f"{row}-{_safe(label)}.wav"
                wave = decode_audio(ids[row], tokens)
                write_wav(folder / name, wave.numpy(), tokens.sample_rate)
                record["files"].append(f"{rel}/{name}")
                record["labels"].append(label)
            how = f"{made / tokens.sample_rate:.2f} s of audio" + (f" x {len(plan['labels'])} classes"
                                                                    if plan["labels"][0] is not None else "")
            log.info("step %d: sample %s -> %s (%.2f s)%s", step, how, rel, seconds,
                     " (shortened to fit the sampling budget)" if record["shortened"] else "")
            return
        if plan.get("sources") is not None:
            lines = []
            for src, row in zip(plan["sources"], ids.tolist()):
                end = row.index(tokens.eos_id) if tokens.eos_id is not None and tokens.eos_id in row else len(row)
                lines.append(f"{text_codec.decode(src)} -> {text_codec.decode(row[:end])}")
            text = "\n".join(lines)
        else:
            text = (self.cfg.sample_text or "") + text_codec.decode(ids[0].tolist())
        _write_text(folder / "sample.txt", text)
        record["files"].append(f"{rel}/sample.txt")
        record["labels"].append(None)
        record["text"] = text
        log.info("step %d: sample (%.2f s%s):\n%s", step, seconds,
                 ", shortened to fit the sampling budget" if record["shortened"] else "", text)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def append_index(run_dir: str | os.PathLike, record: dict) -> None:
    folder = Path(run_dir) / SAMPLES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    runfiles.append_line(folder / INDEX_FILE, json.dumps(record))


read_samples, latest_sample = runfiles.read_samples, runfiles.latest_sample
