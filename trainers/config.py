"""TrainConfig: everything one training run needs besides the model's own config, as one dataclass.

It is stored in the run folder (`run.json`) so `--resume` and background jobs rebuild the same run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from engine.errors import UserError


@dataclass
class TrainConfig:
    # what to train, on what, where
    family: str = "wavenet"
    data: str = ""
    out: str = ""
    preset: str = "small"
    model: dict[str, Any] = field(default_factory=dict)  # the family's config fields (preset + overrides)
    # data
    data_kind: str = "auto"  # auto | text | names | pairs | audio
    split: str = "auto"  # audio held-out rule: auto | fsdd | fraction
    labels: str = "none"  # audio global-conditioning labels: none | prefix | folder
    val_fraction: float = 0.1
    trailing_silence: float = 0.0  # seconds of silence appended to every audio clip (teaches the model to stop)
    codebook: str | None = None  # a frame-token codebook folder (trainers codebook): the audio folder's clips
    # become token sequences [start, class, tokens..., end] for a token language model (trainers/data/tokens.py)
    token_shifts: int = 1  # with codebook: each training clip also tokenized at this many - 1 other frame phases
    token_speeds: tuple[float, ...] = ()  # with codebook: each training clip also at these speeds (e.g. 0.9, 1.1)
    class_dropout: float = 0.0  # with codebook and labels: share of training clips given the null class instead
    # of theirs, so the LM also models unconditioned clips (classifier-free guidance, engine/models/pipeline.py)
    hold_class: bool = False  # with codebook and labels: the LM holds its class prefix (and the null class) at
    # every step (the model's held_ids), instead of carrying it only through the recurrence
    gain_db: float = 0.0  # audio: half the training windows played quieter, by up to this many dB (e.g. -40;
    # trainers/augment.py; samples and frames alike); 0 = off
    frames_codebook: str | None = None  # a vocoder trains on the frames a pipeline will give it: each real frame
    # replaced by its token's decoded frame in this codebook folder (trainers/data/tokens.decoded_frames)
    frames_codebook_share: float = 1.0  # with frames_codebook: the share of clips so replaced (the rest stay real)
    # optimization
    batch_size: int = 16
    seq_len: int = 256  # scored positions per window; windows add receptive_field - 1 tokens of context
    max_steps: int = 2000  # total steps, resumes included
    minutes: float | None = None  # total training time, resumes included; the schedule follows whichever ends first
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    teachers: list[str] = field(default_factory=list)  # checkpoint folders to distill from (trainers.distill)
    distill_weight: float = 0.5  # share of the loss that is the teachers' soft targets (0 = plain training)
    distill_temperature: float = 1.0
    amp: bool = True  # autocast on CUDA (bf16 where supported, else fp16 with a GradScaler); ignored on CPU
    # bookkeeping
    eval_every: int = 200
    eval_tokens: int = 65536  # held-out targets scored per periodic evaluation (the final one too)
    eval_batch_size: int = 16
    log_every: int = 10
    checkpoint_every: int = 200  # steps between resumable `last/` checkpoints (also written at every eval)
    # samples of the model at every evaluation (trainers.samples), RUN_DIR/samples/
    samples: bool = True  # off: --no-samples or --set samples=false
    sample_budget: float = 0.05  # share of the training time that generating samples may use (resumes included)
    sample_seconds: float = 1.0  # audio models: seconds per sample (one per class for a conditioned model)
    sample_chars: int = 300  # text models: bytes per sample
    sample_text: str = ""  # text models: seed text to continue ("" = from the model's start)
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int | None = None  # torch.set_num_threads for CPU runs
    license: str | None = None  # of the data, copied into the checkpoint's config.json
    data_source: str | None = None  # where the data came from, copied into config.json

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def coerce(value: str, like: Any) -> Any:
    """A command-line string as the type of `like` (the field's current value)."""
    if isinstance(like, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise UserError(f"expected true/false, got {value!r}")
    if isinstance(like, int):
        try:
            return int(value)
        except ValueError:
            raise UserError(f"expected a whole number, got {value!r}") from None
    if isinstance(like, float):
        try:
            return float(value)
        except ValueError:
            raise UserError(f"expected a number, got {value!r}") from None
    if isinstance(like, tuple):  # numbers, comma-separated ("0.9,1.1"; "" = none)
        try:
            return tuple(float(v) for v in value.split(",") if v.strip())
        except ValueError:
            raise UserError(f"expected comma-separated numbers, got {value!r}") from None
    if like is None:
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        return None if value.lower() == "none" else value
    return value
