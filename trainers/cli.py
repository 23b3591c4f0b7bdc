"""Command line: `python -m trainers train ...` and `python -m trainers eval ...`.

    python -m trainers train --family F --data PATH --out RUN_DIR [--preset small|base] [--minutes M]
                             [--max-steps N] [--resume] [--teacher CHECKPOINT ...] [--set field=value ...]
    python -m trainers eval --model CHECKPOINT --data PATH [--split val] [--max-tokens N]
    python -m trainers codebook / token-decoder / pipeline ...   (the parts of a two-stage pipeline: trainers/codebook.py)
    python -m trainers presets [--family F]

`--set` overrides any TrainConfig field or, failing that, a field of the family's model config (so
`--set residual_channels=48 --set lr=1e-3` both work).  Bad input (an engine.errors.UserError, or an OSError on
the user's data or run folder) ends with one line on stderr and exit status 2, no traceback; any other exception
is a bug and propagates with its traceback (after marking the run failed).  Works unchanged under
`torchrun --nproc_per_node=N -m trainers train ...`.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import sys
from pathlib import Path

from engine import registry
from engine.devices import parse_device
from engine.errors import UserError, one_line
from engine.layers.token_decoder import TokenDecoderConfig

from . import runfiles
from .config import TrainConfig, coerce
from .data import KINDS, LABEL_RULES, SPLIT_RULES, DataError
from .presets import get_preset, presets
from .token_decoder import TokenDecoderTraining

# what a user can fix: every such error derives from UserError (DataError, PresetError, CheckpointError,
# AudioError, TrainError, ...); an OSError here is on the user's own data, checkpoint or run folder
USER_ERRORS = (UserError, OSError)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainers", description="Train and evaluate autoregressive models.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model (or resume a run)")
    t.add_argument("--family", help=f"model family ({', '.join(registry.families())})")
    t.add_argument("--data", help="text file, names list, .tsv pairs, or audio folder")
    t.add_argument("--out", required=True, help="run folder (checkpoints, status.json, metrics.jsonl)")
    t.add_argument("--preset", default=None, help="small | base | a named recipe (python -m trainers presets)")
    t.add_argument("--minutes", type=float,
                   help="training time budget: a total, resumes included (with --resume, a larger total extends it)")
    t.add_argument("--max-steps", type=int,
                   help="steps to train: a total, resumes included (with --resume, a larger total extends it)")
    t.add_argument("--resume", action="store_true",
                   help="continue from RUN_DIR/last/ (one trainer per folder: a folder being trained is refused)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--seq-len", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--data-kind", choices=KINDS)
    t.add_argument("--codebook", metavar="FOLDER",
                   help="train a token language model on the audio folder's frame tokens (python -m trainers codebook)")
    t.add_argument("--frames-codebook", metavar="FOLDER",
                   help="train a vocoder on its frames passed through this codebook's tokens (what a pipeline "
                        "gives it) instead of the real frames")
    t.add_argument("--split", choices=SPLIT_RULES, help="audio held-out rule")
    t.add_argument("--labels", choices=LABEL_RULES, help="audio class labels for global conditioning")
    t.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    t.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads)")
    t.add_argument("--seed", type=int)
    t.add_argument("--teacher", action="append", default=[], metavar="CHECKPOINT",
                   help="distill from this checkpoint folder (repeat for an ensemble; see trainers.distill); "
                        "--set distill_weight=... and distill_temperature=... tune it")
    t.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a TrainConfig or model config field (repeatable)")
    t.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    t.add_argument("--no-samples", action="store_true",
                   help="no sample of the model at each evaluation (RUN_DIR/samples/; by default at most "
                        "sample_budget = 5%% of the training time; --set sample_seconds=... / sample_chars=...)")
    e = sub.add_parser("eval", help="held-out nats and bits per token of a checkpoint")
    e.add_argument("--model", required=True, help="checkpoint folder (e.g. RUN_DIR/best)")
    e.add_argument("--data", required=True)
    e.add_argument("--split", default="val", help="val (held-out) or test (names lists)")
    e.add_argument("--max-tokens", type=int)
    e.add_argument("--batch-size", type=int, default=16)
    e.add_argument("--trailing-silence", type=float, default=None,
                   help="seconds of silence appended to clips (default: as in training; 0 scores real audio only)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--threads", type=int)
    c = sub.add_parser("codebook", help="fit the frame-token codebook of an audio folder for a vocoder")
    c.add_argument("--data", required=True, help="audio folder (its training split is read)")
    c.add_argument("--vocoder", required=True, help="the vocoder checkpoint whose frames the tokens stand for")
    c.add_argument("--size", type=int, default=256, help="number of tokens (k-means centroids)")
    c.add_argument("--split", choices=SPLIT_RULES, default="auto", help="audio held-out rule")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", required=True, help="codebook folder to write")
    d = sub.add_parser("token-decoder", help="train a codebook's token decoder (frames from the tokens around them)")
    d.add_argument("--codebook", required=True, help="the codebook folder (python -m trainers codebook)")
    d.add_argument("--data", required=True, help="audio folder (its training split is read, its held-out split scores)")
    d.add_argument("--out", required=True, help="codebook folder to write: the codebook plus its decoder")
    d.add_argument("--steps", type=int, default=TokenDecoderTraining.steps)
    d.add_argument("--width", type=int, default=TokenDecoderConfig.width)
    d.add_argument("--layers", type=int, default=TokenDecoderConfig.layers)
    d.add_argument("--kernel", type=int, default=TokenDecoderConfig.kernel, help="odd; context = layers x (kernel // 2)")
    d.add_argument("--shifts", type=int, default=TokenDecoderTraining.shifts, help="frame phases per training clip")
    d.add_argument("--split", choices=SPLIT_RULES, default=None, help="audio held-out rule (default: the codebook's)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--threads", type=int)
    pl = sub.add_parser("pipeline", help="compose a token LM, a vocoder and their codebook into one model")
    pl.add_argument("--lm", required=True,
                    help="the token LM checkpoint (trained with --codebook), or a pipeline whose LM to take")
    pl.add_argument("--vocoder", required=True, help="the vocoder checkpoint, or a pipeline whose vocoder to take")
    pl.add_argument("--codebook", required=True, help="the codebook folder, or a pipeline whose codebook to take")
    pl.add_argument("--out", required=True, help="the pipeline checkpoint folder to write")
    pl.add_argument("--half", action="store_true",
                    help="store the weights as float16 (half the size, for shipping; measure the stored model)")
    pl.add_argument("--guidance", type=float, default=1.0,
                    help="the pipeline's default classifier-free guidance (1 = none; needs an LM trained with "
                         "class_dropout); a decode option users can still change")
    pr = sub.add_parser("presets", help="list presets")
    pr.add_argument("--family")
    return p


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; give a folder for the run (it is created if missing)")
    if a.resume and (out / runfiles.RUN_FILE).is_file():
        from .train import load_run_config
        cfg = load_run_config(out)
        cfg.out = str(out)
    else:
        if a.resume:
            raise DataError(f"nothing to resume in {out}: {runfiles.RUN_FILE} is missing")
        if not a.family or not a.data:
            raise DataError("--family and --data are required (unless --resume)")
        registry.config_class(a.family)  # unknown family -> one clear line
        preset = get_preset(a.family, a.preset or "small")
        cfg = TrainConfig(**{**preset.train, "family": a.family, "data": a.data, "out": str(out),
                             "preset": preset.name, "model": dict(preset.model)})
    for name in ("minutes", "max_steps", "batch_size", "seq_len", "lr", "data_kind", "split", "labels", "device",
                 "threads", "seed", "codebook", "frames_codebook"):
        value = getattr(a, name, None)
        if value is not None:
            setattr(cfg, name, value)
    if getattr(a, "no_samples", False):
        cfg.samples = False
    if getattr(a, "teacher", None):
        cfg.teachers = [str(Path(t).resolve()) for t in a.teacher]
    train_fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    model_fields = {f.name: f for f in dataclasses.fields(registry.config_class(cfg.family))}
    for item in a.set:
        if "=" not in item:
            raise DataError(f"--set takes FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        if key in train_fields and key not in ("model",):
            setattr(cfg, key, _coerce(key, value, getattr(cfg, key)))
        elif key in model_fields:
            like = cfg.model.get(key, getattr(registry.config_class(cfg.family)(), key, None))
            cfg.model[key] = _coerce(key, value, like)
        else:
            raise DataError(f"--set {key}: not a training field nor a {cfg.family} config field")
    if cfg.max_steps < 1 or cfg.batch_size < 1 or cfg.seq_len < 1:
        raise DataError("max_steps, batch_size and seq_len must be positive")
    if cfg.minutes is not None and not cfg.minutes > 0:
        raise DataError("--minutes must be positive")
    if not (isinstance(cfg.lr, (int, float)) and math.isfinite(cfg.lr) and cfg.lr > 0):
        raise DataError(f"--lr must be a positive number, got {cfg.lr}")
    _check_threads(cfg.threads)
    if cfg.seed is not None and not SEEDS[0] <= cfg.seed <= SEEDS[1]:
        raise DataError(f"--seed must be a whole number from {SEEDS[0]} to {SEEDS[1]}, got {cfg.seed}")
    return cfg


SEEDS = (-2**63, 2**64 - 1)  # what torch.manual_seed takes


def _check_threads(threads: int | None) -> None:
    if threads is not None and threads < 0:
        raise DataError(f"--threads must be a positive number (0 or none: the default), got {threads}")


def _coerce(key: str, value: str, like):
    try:
        return coerce(value, like)
    except UserError as e:
        raise DataError(f"--set {key}: {e}") from None


def _mark_failed(msg: str, out: str | None) -> None:
    """The run folder's status.json says failed and why (rank 0; only where the folder exists)."""
    if out and Path(out).is_dir() and int(os.environ.get("RANK", "0")) == 0:
        runfiles.update_status(out, state="failed", error=msg)


def _fail(msg: str, out: str | None) -> int:
    print(f"error: {msg}", file=sys.stderr)
    _mark_failed(msg, out)
    return 2


def cmd_train(a: argparse.Namespace) -> int:
    from .train import train
    try:
        cfg = config_from_args(a)
        summary = train(cfg, resume=a.resume, progress=not a.no_progress)
    except USER_ERRORS as e:  # a refusal that leaves the run as it was (another owner, nothing left) marks nothing
        return _fail(one_line(e), a.out if getattr(e, "mark_failed", True) else None)
    except Exception as e:  # a bug: the run is marked failed, and the traceback follows
        _mark_failed(f"{type(e).__name__}: {one_line(e)}", a.out)
        raise
    if int(os.environ.get("RANK", "0")) == 0:
        val = summary.get("val_loss")
        line = f"{summary['steps']} steps ({summary['stop_reason']})"
        if val is not None:
            line += f"; best held-out {val:.4f} nats/token = {val / math.log(2):.4f} bits/token -> {summary['best']}"
        print(line)
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    from .evaluate import evaluate_checkpoint
    import torch
    try:
        _check_threads(a.threads)
        parse_device(a.device)  # before reading any file
        if a.batch_size < 1 or (a.max_tokens is not None and a.max_tokens < 1):
            raise DataError("--batch-size and --max-tokens must be positive")
        if a.threads:
            torch.set_num_threads(a.threads)
        res = evaluate_checkpoint(a.model, a.data, a.split, a.max_tokens, batch_size=a.batch_size, device=a.device,
                                  trailing_silence=a.trailing_silence)
    except USER_ERRORS as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    print(f"held-out ({a.split}): {res.nats:.4f} nats/token, {res.bits:.4f} bits/token over {res.tokens} tokens")
    return 0


def cmd_codebook(a: argparse.Namespace) -> int:
    from .codebook import codebook_command
    try:
        print(codebook_command(a.data, a.vocoder, a.size, a.out, a.split, a.seed))
    except USER_ERRORS as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    return 0


def cmd_token_decoder(a: argparse.Namespace) -> int:
    import torch

    from .token_decoder import token_decoder_command
    try:
        _check_threads(a.threads)
        if a.threads:
            torch.set_num_threads(a.threads)
        config = TokenDecoderConfig(a.width, a.layers, a.kernel)
        run = TokenDecoderTraining(steps=a.steps, shifts=a.shifts, seed=a.seed)
        print(token_decoder_command(a.codebook, a.data, a.out, config, run, a.split))
    except USER_ERRORS as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    return 0


def cmd_pipeline(a: argparse.Namespace) -> int:
    from .codebook import pipeline_command
    try:
        print(pipeline_command(a.lm, a.vocoder, a.codebook, a.out, a.half, a.guidance))
    except USER_ERRORS as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    return 0


def cmd_presets(a: argparse.Namespace) -> int:
    for p in presets(a.family):
        print(f"{p.family:12s} {p.name:8s} {p.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    a = _parser().parse_args(argv)
    return {"train": cmd_train, "eval": cmd_eval, "codebook": cmd_codebook, "token-decoder": cmd_token_decoder,
            "pipeline": cmd_pipeline,
            "presets": cmd_presets}[a.command](a)
