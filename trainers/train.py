"""The training loop: any engine family, through the protocol.

    python -m trainers train --family wavenet --data clips/ --out runs/demo --preset small --minutes 10

One step = a batch of random windows (or, for stateful families, the next truncated-BPTT chunk of each row's
sequence; see trainers.losses), the family's loss (next-token cross-entropy by default, counting only targets
with a full receptive field of real context), AdamW with warm-up + cosine learning rate, gradient clipping, and
autocast on CUDA.  Every `eval_every` steps the held-out split is scored in nats and bits per token; the best
model is written with `engine.save_model` to RUN_DIR/best/, and a resumable RUN_DIR/last/ (trainers.state) is
written every `checkpoint_every` steps and at the end.  The run stops at `max_steps` or after `minutes` of
training (resumes included), whichever comes first; SIGTERM/SIGINT stop it cleanly after the current step.

Under torchrun each rank trains on its own shard of the data in DistributedDataParallel and rank 0 alone
evaluates and writes (trainers.distributed).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine import registry
from engine.checkpoint import save_model

from . import distributed, runfiles, schedule, state as ckpt
from .config import TrainConfig
from .data import DataError, SequenceDataset, StreamSampler, fit_alphabet, load_dataset
from .distill import DistillError, check_distillable, distillation_loss, load_teachers
from .evaluate import evaluate
from .losses import detach_state, next_token_loss

log = logging.getLogger("trainers.train")


class TrainError(ValueError):
    """A run that cannot start (bad config, nothing to resume); one line for the user."""


class _LossModule(nn.Module):
    """model + loss in one module, so DistributedDataParallel sees every loss (custom ones too) as a forward."""

    def __init__(self, model: nn.Module, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch, state):
        out = self.loss_fn(self.model, batch, state)
        return out.nats_sum, out.count, out.state, out.penalties


def build(cfg: TrainConfig) -> tuple[Any, SequenceDataset]:
    """The model (with `global_cond_classes` set from the data's labels) and the dataset, read for its tokens."""
    from_data = cfg.model.get("alphabet") == "data"
    try:
        probe = registry.build_model(cfg.family, **{**cfg.model, "alphabet": None} if from_data else cfg.model)
    except (TypeError, ValueError) as e:
        raise TrainError(f"{cfg.family} config: {e}") from None
    data = load_dataset(cfg.data, probe.tokens, cfg.data_kind, cfg.split, cfg.labels, cfg.val_fraction,
                        cfg.trailing_silence)
    fields = {f.name for f in dataclasses.fields(registry.config_class(cfg.family))}
    if data.labels:
        if "global_cond_classes" not in fields:
            raise TrainError(f"the {cfg.family} family has no global conditioning; use --labels none")
        cfg.model = {**cfg.model, "global_cond_classes": data.num_labels}
    if from_data:
        # every byte of every split (a character is not a leak, and held-out text must not score infinity),
        # plus the start and end ids; run.json keeps the list, so a resumed run builds the same model
        tokens = probe.tokens
        seen = torch.unique(torch.cat([s for split in data.sequences.values() for s in split])).tolist()
        symbols = sorted(set(seen) | {tokens.start_id} | ({tokens.eos_id} if tokens.eos_id is not None else set()))
        cfg.model = {**cfg.model, "alphabet": symbols}
    model = probe
    if data.labels or from_data:
        try:
            model = registry.build_model(cfg.family, **cfg.model)
        except (TypeError, ValueError) as e:
            raise TrainError(f"{cfg.family} config: {e}") from None
    return model, fit_alphabet(data, model.tokens)


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def _autocast(device: torch.device, enabled: bool) -> tuple[Any, torch.amp.GradScaler | None]:
    if device.type != "cuda" or not enabled:
        return nullcontext(), None
    if torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16), None
    return torch.autocast("cuda", dtype=torch.float16), torch.amp.GradScaler("cuda")


class _Stop:
    """SIGTERM / SIGINT set a flag; the loop finishes its step, writes `last/` and exits as cancelled."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_Stop":
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def load_run_config(out: str | Path) -> TrainConfig:
    data = runfiles.read_json(Path(out) / runfiles.RUN_FILE)
    if not data:
        raise TrainError(f"nothing to resume in {out}: {runfiles.RUN_FILE} is missing")
    return TrainConfig.from_dict(data)


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Run (or resume) training as `cfg` says; returns a summary dict (steps, val_loss, val_bits, best path)."""
    d = distributed.setup(cfg.device)
    try:
        return _train(cfg, resume, progress, d)
    finally:
        distributed.teardown(d)


def _train(cfg: TrainConfig, resume: bool, progress: bool, d: distributed.Dist) -> dict:
    if not cfg.out:
        raise TrainError("no output folder given (--out)")
    out = Path(cfg.out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    last_path = ckpt.find_last(out / runfiles.LAST) if resume else None
    if resume and last_path is None:
        raise TrainError(f"nothing to resume in {out}: no complete {runfiles.LAST}/ checkpoint")
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run of this config
    model, data = build(cfg)
    model.to(d.device)
    shard = data.shard(d.rank, d.world)
    loss_fn, stateful = next_token_loss, model.training_stateful
    if cfg.teachers:
        try:
            check_distillable(model)
            teachers = load_teachers(cfg.teachers, model, d.device)
            loss_fn = distillation_loss(teachers, cfg.distill_weight, cfg.distill_temperature)
        except DistillError as e:
            raise TrainError(str(e)) from None
    optimizer = _optimizer(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed + d.rank)
    torch.manual_seed(cfg.seed + d.rank)
    step, elapsed, best = 0, 0.0, math.inf
    if last_path is not None:
        from safetensors.torch import load_file
        tstate, tensors = ckpt.load_last(last_path)
        model.load_state_dict(load_file(str(last_path / "model.safetensors")))
        ckpt.restore(optimizer, gen, tstate, tensors)
        if d.enabled:  # every rank restores rank 0's files; give the ranks their own data streams again
            gen.manual_seed(cfg.seed + d.rank + 7919 * tstate["step"])
        step, elapsed = tstate["step"], tstate["elapsed_s"]
        best = math.inf if tstate.get("best_val") is None else tstate["best_val"]
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        runfiles.write_json(out / runfiles.RUN_FILE, cfg.to_dict())
    autocast, scaler = _autocast(d.device, cfg.amp)
    net: nn.Module = _LossModule(model, loss_fn)
    if d.enabled:
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[d.device.index] if d.device.type == "cuda" else None,
            find_unused_parameters=True)  # e.g. WaveNet's last residual 1x1 feeds nothing
    rf = model.receptive_field
    window = cfg.seq_len + (rf - 1 if rf and not stateful else 0)
    stream = StreamSampler(shard, "train", cfg.batch_size, cfg.seq_len, gen) if stateful else None
    budget = cfg.minutes * 60 if cfg.minutes else None
    train_meta = _training_meta(cfg, data, model)
    summary: dict[str, Any] = {"steps": step, "val_loss": None if math.isinf(best) else best}

    def status(**kw: Any) -> None:
        if d.main:
            runfiles.update_status(out, total=cfg.max_steps, family=cfg.family, **kw)

    def do_eval() -> float:
        res = evaluate(model, data, "val", cfg.seq_len, cfg.eval_batch_size, cfg.eval_tokens, d.device,
                       autocast if d.device.type == "cuda" else None)
        runfiles.append_metric(out, {"step": step, "split": "val", "loss": res.nats, "bits": res.bits,
                                     "tokens": res.tokens, "time": time.time()})
        return res.nats

    def save_last() -> None:
        ckpt.save_last(out / runfiles.LAST, model, optimizer, gen,
                       {"step": step, "elapsed_s": elapsed, "best_val": None if math.isinf(best) else best,
                        "scaler": scaler.state_dict() if scaler else None},
                       **train_meta, steps=step)

    status(state="running", step=step, pid=_pid(), error=None, started=time.time(), device=str(d.device),
           world_size=d.world, tokens_train=data.num_tokens("train"), tokens_val=data.num_tokens("val"))
    if scaler is not None and last_path is not None and tstate.get("scaler"):
        scaler.load_state_dict(tstate["scaler"])
    bar = _bar(cfg, step, progress and d.main)
    model.train()
    state = None
    t_last = time.time()
    run_loss, run_n = 0.0, 0
    run_penalties: dict[str, float] = {}
    reason = "max_steps"
    with _Stop() as stopper:
        while True:
            if step >= cfg.max_steps:
                break
            if distributed.any_true(stopper.requested or (budget is not None and elapsed >= budget), d):
                reason = "cancelled" if stopper.requested else "minutes"
                break
            frac = schedule.progress(step, cfg.max_steps, elapsed, budget)
            lr = schedule.learning_rate(step, frac, cfg.lr, cfg.warmup_steps, cfg.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = (stream.next() if stream else shard.sample_batch("train", cfg.batch_size, window, gen)).to(d.device)
            with autocast:
                nats_sum, count, state, penalties = net(batch, state)
            loss = nats_sum / count.clamp(min=1)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            state = detach_state(state) if stateful else None
            step += 1
            now = time.time()
            elapsed += now - t_last
            t_last = now
            run_loss, run_n = run_loss + float(loss.detach()), run_n + 1
            for name, value in penalties.items():
                run_penalties[name] = run_penalties.get(name, 0.0) + value
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", lr=f"{lr:.1e}")
            if d.main and (step % cfg.log_every == 0 or step == cfg.max_steps):
                mean = run_loss / run_n
                penalties = {name: total / run_n for name, total in run_penalties.items()}
                record = {"step": step, "split": "train", "loss": mean, "bits": mean / math.log(2), "lr": lr,
                          "time": now}
                if penalties:  # the loss includes them; report each apart, and the cross-entropy alone
                    record.update(penalties, ce=mean - sum(penalties.values()))
                runfiles.append_metric(out, record)
                summary["train_loss"] = mean
                run_loss, run_n, run_penalties = 0.0, 0, {}
                status(step=step, eta_s=_eta(step, cfg.max_steps, elapsed, budget), elapsed_s=elapsed)
            if d.main and step % cfg.eval_every == 0:
                best = _eval_and_keep(do_eval, best, model, out, train_meta, step, summary)
                save_last()
            elif d.main and step % cfg.checkpoint_every == 0:
                save_last()
            t_last = time.time()  # evaluation and checkpoint time do not count against the budget
    if bar is not None:
        bar.close()
    if d.main:
        if step > 0 and step % cfg.eval_every != 0 and reason != "cancelled":
            best = _eval_and_keep(do_eval, best, model, out, train_meta, step, summary)
        save_last()
        final = "cancelled" if reason == "cancelled" else "finished"
        status(state=final, step=step, eta_s=0, elapsed_s=elapsed, stop_reason=reason,
               val_loss=None if math.isinf(best) else best,
               val_bits=None if math.isinf(best) else best / math.log(2), finished=time.time())
    distributed.barrier(d)
    summary.update(steps=step, stop_reason=reason, best=str(out / runfiles.BEST))
    return summary


def _eval_and_keep(do_eval, best: float, model, out: Path, meta: dict, step: int, summary: dict) -> float:
    val = do_eval()
    summary["last_val_loss"] = val
    if val < best:
        best = val
        save_model(model, out / runfiles.BEST, **meta, steps=step, val_loss=val, val_bits=val / math.log(2),
                   train_loss=summary.get("train_loss"))
        summary["val_loss"] = val
    log.info("step %d: val %.4f nats (%.4f bits), best %.4f", step, val, val / math.log(2), best)
    return best


def _training_meta(cfg: TrainConfig, data: SequenceDataset, model) -> dict:
    return {"data": str(cfg.data), "data_kind": cfg.data_kind, "split": cfg.split, "labels": cfg.labels,
            "label_names": data.label_names, "val_fraction": cfg.val_fraction,
            "trailing_silence": cfg.trailing_silence, "seq_len": cfg.seq_len, "preset": cfg.preset,
            "data_description": data.description, "data_source": cfg.data_source, "license": cfg.license,
            "batch_size": cfg.batch_size, "lr": cfg.lr,
            **({"distilled_from": [str(t) for t in cfg.teachers], "distill_weight": cfg.distill_weight,
                "distill_temperature": cfg.distill_temperature} if cfg.teachers else {})}


def _eta(step: int, max_steps: int, elapsed: float, budget: float | None) -> float | None:
    if step == 0:
        return None
    eta = (max_steps - step) * elapsed / step
    return max(0.0, min(eta, budget - elapsed)) if budget else eta


def _bar(cfg: TrainConfig, step: int, show: bool):
    if not show:
        return None
    from tqdm import tqdm
    return tqdm(total=cfg.max_steps, initial=step, desc=f"{cfg.family} {Path(cfg.out).name}", unit="step",
                dynamic_ncols=True, file=sys.stderr, mininterval=1.0)


def _pid() -> int:
    import os
    return os.getpid()


__all__ = ["train", "build", "TrainConfig", "TrainError", "DataError", "load_run_config"]
