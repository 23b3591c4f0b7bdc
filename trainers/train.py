"""The training loop: any engine family, through the protocol.

    python -m trainers train --family wavenet --data clips/ --out runs/demo --preset small --minutes 10

One step = a batch of random windows (or, for stateful families, the next truncated-BPTT chunk of each row's
sequence; see trainers.losses), the loss (trainers.losses: next-token cross-entropy over the targets with a
full receptive field of real context, plus the family's penalties; or the distillation loss), AdamW with
warm-up + cosine learning rate, gradient clipping, and autocast on CUDA.  Every `eval_every` steps the
held-out split is scored in nats and bits per token; the best model is written with `engine.save_model` to
RUN_DIR/best/, and a resumable RUN_DIR/last/ (trainers.state) is written every `checkpoint_every` steps and at
the end.  The run stops at `max_steps` or after `minutes` of
training (resumes included), whichever comes first; SIGTERM/SIGINT stop it cleanly after the current step.

Under torchrun each rank trains on its own shard of the data in DistributedDataParallel and rank 0 alone
evaluates and writes (trainers.distributed).

The run is a `_Run`: `restore` (build, or resume from last/), then `loop` over `train_step` with its train
records, `evaluate` (keeps best/) and `save_last`, then `finish` (final evaluation, last/, status).
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
from engine.checkpoint import read_meta as ckpt_meta, save_model
from engine.errors import UserError
from engine.frame_tokens import TokenLayout, load_codebook
from engine.paths import data_root

from . import distributed, runfiles, schedule, state as ckpt
from .config import TrainConfig
from .data import DataError, SequenceDataset, StreamSampler, detect_kind, fit_alphabet, load_dataset
from .data.kinds import check_fits
from .data.tokens import decoded_frames, token_sequences
from .distill import DistillError, check_distillable, distillation_loss, load_teachers
from .augment import attenuate
from .evaluate import evaluate
from .losses import detach_state, next_token_loss
from .runlock import RunLock, RunLocked
from .samples import Sampler

log = logging.getLogger("trainers.train")


class TrainError(UserError):
    """A run that cannot start (bad config, nothing to resume); one line for the user."""


class NothingToDo(TrainError):
    """A resume whose budget (max steps or minutes, totals) is already spent; the run is left as it is."""

    mark_failed = False


def _check_budget_left(cfg: TrainConfig, step: int, elapsed: float) -> None:
    """max_steps and minutes are totals, resumes included: a resume must raise whichever ran out."""
    if step >= cfg.max_steps:
        raise NothingToDo(f"the run already reached max steps {cfg.max_steps} (it is at step {step}); pass "
                          f"--max-steps N (a larger total) to continue")
    if cfg.minutes and elapsed >= cfg.minutes * 60:
        raise NothingToDo(f"the run already used its {cfg.minutes:g} minutes of training ({elapsed / 60:.1f} min "
                          f"trained); pass --minutes M (a larger total) to continue")


class _LossModule(nn.Module):
    """model + loss in one module, so DistributedDataParallel sees the loss (distillation too) as a forward."""

    def __init__(self, model: nn.Module, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch, state):
        out = self.loss_fn(self.model, batch, state)
        return out.nats_sum, out.count, out.state, out.penalties


def build(cfg: TrainConfig) -> tuple[Any, SequenceDataset]:
    """The model (with `global_cond_classes` set from the data's labels) and the dataset, read for its tokens."""
    if cfg.codebook:
        return _build_token_lm(cfg)
    from_data = cfg.model.get("alphabet") == "data"
    try:
        probe = registry.build_model(cfg.family, **{**cfg.model, "alphabet": None} if from_data else cfg.model)
    except (TypeError, ValueError) as e:
        raise TrainError(f"{cfg.family} config: {e}") from None
    if probe.frame_context and probe.frame_features is None:
        raise TrainError(f"this {cfg.family} is conditioned on frames but its config has no `features` (the "
                         "engine.features.LogMelConfig that makes them from the audio): set features")
    check_fits(cfg.family, detect_kind(cfg.data) if cfg.data_kind == "auto" else cfg.data_kind, cfg.data)
    data = load_dataset(cfg.data, probe.tokens, cfg.data_kind, cfg.split, cfg.labels, cfg.val_fraction,
                        cfg.trailing_silence, features=probe.frame_features, frame_margin=probe.frame_context)
    if cfg.gain_db and not (math.isfinite(cfg.gain_db) and -120 <= cfg.gain_db < 0 and data.kind == "audio"
                            and not probe.training_stateful):
        raise TrainError(f"gain_db attenuates audio training windows: a number from -120 to 0 (0 = off) for an "
                         f"audio model trained on windows; got {cfg.gain_db} for {cfg.family} on {data.kind} data")
    if cfg.frames_codebook:
        if not data.frames:
            raise TrainError(f"frames_codebook is for a vocoder (a model conditioned on frames); this {cfg.family} "
                             "takes none")
        data.frames = decoded_frames(data.frames, cfg.frames_codebook, probe.frame_features,
                                     cfg.frames_codebook_share, cfg.seed)
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


def _build_token_lm(cfg: TrainConfig) -> tuple[Any, SequenceDataset]:
    """A token language model over an audio folder's frame tokens: its vocabulary, start and end ids come from
    the codebook and the labels (engine.frame_tokens.TokenLayout)."""
    codebook, features, _ = load_codebook(cfg.codebook)
    data = token_sequences(cfg.data, codebook, features, cfg.split, cfg.labels, cfg.val_fraction, cfg.token_shifts,
                           cfg.class_dropout, cfg.seed, tuple(cfg.token_speeds))
    layout = TokenLayout(codebook.size, data.num_labels, null_class=cfg.class_dropout > 0)
    fields = {f.name for f in dataclasses.fields(registry.config_class(cfg.family))}
    if not {"vocab_size", "start_id", "eos_id"} <= fields:
        raise TrainError(f"the {cfg.family} family cannot be a token language model (it needs vocab_size, start_id "
                         "and eos_id); use rnn or hierarchical")
    cfg.model = {**cfg.model, "vocab_size": layout.vocab_size, "start_id": layout.start_id, "eos_id": layout.end_id}
    if cfg.hold_class:
        if "held_ids" not in fields or not layout.n_classes:
            raise TrainError("hold_class needs class labels (labels=prefix or folder) and a family with held_ids "
                             f"(rnn); this is {cfg.family} with {layout.n_classes} classes")
        cfg.model["held_ids"] = [layout.class_id(c) for c in range(layout.n_classes)] + \
            ([layout.null_id] if layout.null_class else [])
    try:
        return registry.build_model(cfg.family, **cfg.model), data
    except (TypeError, ValueError) as e:
        raise TrainError(f"{cfg.family} config: {e}") from None


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
    cfg = TrainConfig.from_dict(data)
    prefix = "$PLAYGROUND_DATA/"  # a run folder that travels (a committed checkpoint) names public data this way
    if cfg.data.startswith(prefix):
        root = data_root()
        if root is None:
            raise TrainError(f"{out} trains on {cfg.data}: set PLAYGROUND_DATA to the public datasets' folder")
        cfg.data = str(root / cfg.data[len(prefix):])
    return cfg


def _config_changes(last_path: Path, model) -> list[str]:
    """The model config fields a resume changes (--set on a resumed run) against the checkpoint it resumes."""
    try:
        before = dataclasses.asdict(type(model.config)(**ckpt_meta(last_path)["config"]))
    except (KeyError, TypeError, UserError):
        return ["config"]
    now = dataclasses.asdict(model.config)
    return sorted(k for k in now if before.get(k) != now[k])


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Run (or resume) training as `cfg` says; returns a summary dict (steps, val_loss, val_bits, best path)."""
    if not cfg.out:
        raise TrainError("no output folder given (--out)")
    d = distributed.setup(cfg.device)
    try:
        # one owner per run folder (rank 0 holds it), taken before anything is written (trainers.runlock)
        with RunLock(cfg.out) if d.main else nullcontext():
            return _train(cfg, resume, progress, d)
    finally:
        distributed.teardown(d)


def _train(cfg: TrainConfig, resume: bool, progress: bool, d: distributed.Dist) -> dict:
    """restore -> (step, log, evaluate, checkpoint)* -> finish; the pieces are `_Run`'s methods."""
    run = _Run.restore(cfg, resume, d)
    run.status(state="running", step=run.step, pid=_pid(), error=None, started=time.time(), device=str(d.device),
               world_size=d.world, tokens_train=run.data.num_tokens("train"), tokens_val=run.data.num_tokens("val"))
    run.load_scaler()
    bar = _bar(cfg, run.step, progress and d.main)
    run.model.train()
    reason = run.loop(bar)
    if bar is not None:
        bar.close()
    return run.finish(reason)


@dataclasses.dataclass
class _TrainLog:
    """The training loss (and each penalty) averaged over the steps since the last `train` record."""

    loss: float = 0.0
    steps: int = 0
    penalties: dict[str, float] = dataclasses.field(default_factory=dict)

    def add(self, loss: float, penalties: dict[str, float]) -> None:
        self.loss, self.steps = self.loss + loss, self.steps + 1
        for name, value in penalties.items():
            self.penalties[name] = self.penalties.get(name, 0.0) + value

    def record(self, step: int, lr: float, now: float) -> dict:
        """The metrics.jsonl record; the log starts afresh."""
        mean = self.loss / self.steps
        penalties = {name: total / self.steps for name, total in self.penalties.items()}
        record = {"step": step, "split": "train", "loss": mean, "bits": mean / math.log(2), "lr": lr, "time": now}
        if penalties:  # the loss includes them; report each apart, and the cross-entropy alone
            record.update(penalties, ce=mean - sum(penalties.values()))
        self.loss, self.steps, self.penalties = 0.0, 0, {}
        return record


@dataclasses.dataclass
class _Run:
    """One run's state, shared by its pieces: `restore` (build, or resume from last/), `train_step` (one
    optimisation step), `evaluate` (score val, keep the best), `save_last`, `loop` and `finish`.
    Only rank 0 (`d.main`) writes: status, metrics, checkpoints."""

    cfg: TrainConfig
    d: distributed.Dist
    out: Path
    model: Any  # the engine model (AutoregressiveModel)
    data: SequenceDataset
    shard: SequenceDataset  # this rank's part of the data
    net: nn.Module  # model + loss, in DistributedDataParallel when distributed
    optimizer: torch.optim.Optimizer
    gen: torch.Generator  # the data sampler's random stream (saved in last/)
    autocast: Any
    scaler: torch.amp.GradScaler | None
    stream: StreamSampler | None  # stateful families: consecutive chunks of each row's sequence
    window: int  # training window: seq_len plus the receptive field's context
    budget: float | None  # seconds of training allowed (cfg.minutes), resumes included
    meta: dict  # what every checkpoint records about its training
    step: int = 0
    elapsed: float = 0.0  # seconds of training so far (evaluation and checkpoints excluded)
    best: float = math.inf  # best validation loss so far
    resumed: dict | None = None  # trainer_state.json of the last/ resumed from
    state: Any = None  # truncated-BPTT state carried to the next chunk
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    log: _TrainLog = dataclasses.field(default_factory=_TrainLog)
    sampler: Sampler | None = None  # rank 0 with cfg.samples: a sample at every evaluation (trainers.samples)

    @classmethod
    def restore(cls, cfg: TrainConfig, resume: bool, d: distributed.Dist) -> "_Run":
        """Build the model, data, loss and optimizer; with `resume`, load last/; write run.json."""
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
        step, elapsed, best, tstate = 0, 0.0, math.inf, None
        if last_path is not None:
            from safetensors.torch import load_file
            tstate, tensors = ckpt.load_last(last_path)
            model.load_state_dict(load_file(str(last_path / "model.safetensors")))
            ckpt.restore(optimizer, gen, tstate, tensors)
            if d.enabled:  # every rank restores rank 0's files; give the ranks their own data streams again
                gen.manual_seed(cfg.seed + d.rank + 7919 * tstate["step"])
            step, elapsed = tstate["step"], tstate["elapsed_s"]
            best = math.inf if tstate.get("best_val") is None else tstate["best_val"]
            changed = _config_changes(last_path, model)
            if changed:  # e.g. --resume --set preemphasis=0.85: the same weights now model other ids
                log.warning("the model config changed on resume (%s): held-out losses from before are not "
                            "comparable, so best/ starts anew", ", ".join(changed))
                best = math.inf
            _check_budget_left(cfg, step, elapsed)
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
        return cls(cfg, d, out, model, data, shard, net, optimizer, gen, autocast, scaler,
                   stream=StreamSampler(shard, "train", cfg.batch_size, cfg.seq_len, gen) if stateful else None,
                   window=cfg.seq_len + (rf - 1 if rf and not stateful else 0),
                   budget=cfg.minutes * 60 if cfg.minutes else None, meta=_training_meta(cfg, data, model),
                   step=step, elapsed=elapsed, best=best, resumed=tstate,
                   summary={"steps": step, "val_loss": None if math.isinf(best) else best},
                   sampler=Sampler(cfg, model, data, out, spent=(tstate or {}).get("sample_s") or 0.0)
                   if cfg.samples and d.main else None)

    def load_scaler(self) -> None:
        if self.scaler is not None and self.resumed is not None and self.resumed.get("scaler"):
            self.scaler.load_state_dict(self.resumed["scaler"])

    @property
    def best_or_none(self) -> float | None:
        return None if math.isinf(self.best) else self.best

    def status(self, **fields: Any) -> None:
        if self.d.main:
            # total and minutes are the run's whole budget, resumes included
            runfiles.update_status(self.out, total=self.cfg.max_steps, minutes=self.cfg.minutes,
                                   family=self.cfg.family, **fields)

    def set_lr(self) -> float:
        cfg = self.cfg
        frac = schedule.progress(self.step, cfg.max_steps, self.elapsed, self.budget)
        lr = schedule.learning_rate(self.step, frac, cfg.lr, cfg.warmup_steps, cfg.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def train_step(self) -> tuple[float, dict[str, float]]:
        """One optimisation step on the next batch (or chunk); returns its loss and penalties."""
        cfg = self.cfg
        batch = self.stream.next() if self.stream else self.shard.sample_batch("train", cfg.batch_size,
                                                                                self.window, self.gen)
        if cfg.gain_db:
            tokens = self.model.tokens
            batch = attenuate(batch, cfg.gain_db, tokens.vocab_size, tokens.quantization,
                              self.model.frame_features, self.gen)
        batch = batch.to(self.d.device)
        with self.autocast:
            nats_sum, count, state, penalties = self.net(batch, self.state)
        loss = nats_sum / count.clamp(min=1)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.state = detach_state(state) if self.stream is not None else None
        self.step += 1
        return float(loss.detach()), penalties

    def evaluate(self) -> None:
        """Score the val split (metrics.jsonl); a new best is written to best/."""
        cfg, step = self.cfg, self.step
        res = evaluate(self.model, self.data, "val", cfg.seq_len, cfg.eval_batch_size, cfg.eval_tokens,
                       self.d.device, self.autocast if self.d.device.type == "cuda" else None)
        runfiles.append_metric(self.out, {"step": step, "split": "val", "loss": res.nats, "bits": res.bits,
                                          "tokens": res.tokens, "time": time.time()})
        val = res.nats
        self.summary["last_val_loss"] = val
        if val < self.best:
            self.best = val
            save_model(self.model, self.out / runfiles.BEST, **self.meta, steps=step, val_loss=val,
                       val_bits=val / math.log(2), train_loss=self.summary.get("train_loss"))
            self.summary["val_loss"] = val
        log.info("step %d: val %.4f nats (%.4f bits), best %.4f", step, val, val / math.log(2), self.best)
        if self.sampler is not None:
            self.sampler.sample(step, val, self.elapsed)

    def save_last(self) -> None:
        ckpt.save_last(self.out / runfiles.LAST, self.model, self.optimizer, self.gen,
                       {"step": self.step, "elapsed_s": self.elapsed, "best_val": self.best_or_none,
                        "scaler": self.scaler.state_dict() if self.scaler else None,
                        "sample_s": self.sampler.spent if self.sampler else (self.resumed or {}).get("sample_s")},
                       **self.meta, steps=self.step)

    def loop(self, bar) -> str:
        """Train until max_steps, the time budget or SIGTERM/SIGINT; returns why it stopped."""
        cfg, d = self.cfg, self.d
        t_last = time.time()
        with _Stop() as stopper:
            while self.step < cfg.max_steps:
                if distributed.any_true(stopper.requested or (self.budget is not None and
                                                              self.elapsed >= self.budget), d):
                    return "cancelled" if stopper.requested else "minutes"
                lr = self.set_lr()
                loss, penalties = self.train_step()
                now = time.time()
                self.elapsed += now - t_last
                self.log.add(loss, penalties)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.1e}")
                if d.main and (self.step % cfg.log_every == 0 or self.step == cfg.max_steps):
                    record = self.log.record(self.step, lr, now)
                    runfiles.append_metric(self.out, record)
                    self.summary["train_loss"] = record["loss"]
                    self.status(step=self.step, eta_s=_eta(self.step, cfg.max_steps, self.elapsed, self.budget),
                                elapsed_s=self.elapsed)
                if d.main and self.step % cfg.eval_every == 0:
                    self.evaluate()
                    self.save_last()
                elif d.main and self.step % cfg.checkpoint_every == 0:
                    self.save_last()
                t_last = time.time()  # evaluation and checkpoint time do not count against the budget
        return "max_steps"

    def finish(self, reason: str) -> dict:
        """Last evaluation (unless just done or cancelled), last/, the final status; the summary."""
        cfg, step = self.cfg, self.step
        if self.d.main:
            if step > 0 and step % cfg.eval_every != 0 and reason != "cancelled":
                self.evaluate()
            self.save_last()
            best = self.best_or_none
            self.status(state="cancelled" if reason == "cancelled" else "finished", step=step, eta_s=0,
                        elapsed_s=self.elapsed, stop_reason=reason, val_loss=best,
                        val_bits=None if best is None else best / math.log(2), finished=time.time())
        distributed.barrier(self.d)
        self.summary.update(steps=step, stop_reason=reason, best=str(self.out / runfiles.BEST))
        return self.summary


def portable_data_name(path: str | Path) -> str:
    """The data as config.json records it: `$PLAYGROUND_DATA/...` for the public datasets (a checkpoint trained by a
    recipe names no folder of this machine), else the path as given."""
    root = data_root()
    if root is not None:
        try:
            return "$PLAYGROUND_DATA/" + Path(path).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


def _training_meta(cfg: TrainConfig, data: SequenceDataset, model) -> dict:
    return {"data": portable_data_name(cfg.data), "data_kind": cfg.data_kind, "split": cfg.split,
            "labels": cfg.labels, "label_names": data.label_names, "val_fraction": cfg.val_fraction,
            "trailing_silence": cfg.trailing_silence, "seq_len": cfg.seq_len, "preset": cfg.preset,
            "data_description": data.description, "data_source": cfg.data_source, "license": cfg.license,
            "batch_size": cfg.batch_size, "lr": cfg.lr,
            **({"codebook": portable_data_name(cfg.codebook), "token_shifts": cfg.token_shifts,
                "token_speeds": list(cfg.token_speeds), "class_dropout": cfg.class_dropout,
                "hold_class": cfg.hold_class} if cfg.codebook else {}),
            **({"gain_db": cfg.gain_db} if cfg.gain_db else {}),
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


__all__ = ["train", "build", "TrainConfig", "TrainError", "NothingToDo", "RunLocked", "DataError", "load_run_config"]
