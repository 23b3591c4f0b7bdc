"""Per-family presets: CPU-sized model and training defaults, "small" and "base", and named recipes.

Adding one is a single call, in this module or in the family's own trainer code:

    register_preset("bytenet", "small", model=dict(layers=8, channels=128), train=dict(seq_len=256, lr=1e-3))

`model` holds fields of the family's config dataclass; `train` holds TrainConfig fields.  A preset may also
name a `loss` (see trainers.losses) for families whose batches need special handling.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Preset:
    family: str
    name: str
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_PRESETS: dict[tuple[str, str], Preset] = {}


class PresetError(ValueError):
    pass


def register_preset(family: str, name: str, model: dict | None = None, train: dict | None = None,
                    description: str = "") -> Preset:
    preset = Preset(family, name, dict(model or {}), dict(train or {}), description)
    _PRESETS[(family, name)] = preset
    return preset


def get_preset(family: str, name: str) -> Preset:
    if (family, name) not in _PRESETS:
        have = sorted(n for f, n in _PRESETS if f == family)
        raise PresetError(f"no preset {name!r} for family {family!r}"
                          + (f"; presets: {', '.join(have)}" if have else "; this family has no presets yet"))
    return _PRESETS[(family, name)]


def presets(family: str | None = None) -> list[Preset]:
    return [p for (f, _), p in sorted(_PRESETS.items()) if family is None or f == family]


# ---- WaveNet -----------------------------------------------------------------------------------------------
register_preset("wavenet", "small",
                model=dict(blocks=2, layers_per_block=8, residual_channels=32, gate_channels=64, skip_channels=64,
                           sample_rate=16000),
                train=dict(batch_size=8, seq_len=1024, lr=2e-3, warmup_steps=100, max_steps=2000),
                description="2 x 8 layers, 32 residual channels: CPU minutes")
register_preset("wavenet", "base",
                model=dict(blocks=3, layers_per_block=10, residual_channels=64, gate_channels=128,
                           skip_channels=256, sample_rate=16000),
                train=dict(batch_size=8, seq_len=4096, lr=1e-3, warmup_steps=500, max_steps=50000),
                description="3 x 10 layers, 64 residual channels: GPU hours")
register_preset("wavenet", "digits",
                model=dict(blocks=2, layers_per_block=9, residual_channels=48, gate_channels=96, skip_channels=128,
                           sample_rate=8000, n_classes=256, quantization="mulaw"),
                train=dict(labels="prefix", split="auto", trailing_silence=0.1, batch_size=8, seq_len=2048,
                           lr=2e-3, warmup_steps=200, max_steps=20000, eval_every=500, eval_tokens=200_000,
                           checkpoint_every=250,
                           license="CC BY-SA 4.0",
                           data_source="Free Spoken Digit Dataset (Zohar Jackson and contributors), "
                                       "https://github.com/Jakobovski/free-spoken-digit-dataset"),
                description="the demo model: FSDD at 8 kHz, mu-law 256, conditioned on the digit")
