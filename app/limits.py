"""Caps that keep one shared CPU usable: upload size, job count, generation length, prompt and seed size.

Every cap has an environment override (PLAYGROUND_<NAME>, e.g. PLAYGROUND_AUDIO_SECONDS=8) so a local user with
a fast machine can lift them; the defaults suit a hosted CPU Space.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from .errors import UserError


@dataclass(frozen=True)
class Limits:
    max_upload_mb: int = 50  # any single upload (Gradio refuses bigger files before they reach a handler)
    max_jobs: int = 1  # training jobs running at once; more are refused while one runs
    audio_seconds: float = 5.0  # longest audio generation, unless a model's own meta asks for less
    text_tokens: int = 2000  # longest text generation, in tokens (bytes)
    max_variations: int = 4  # batch of variations per Generate
    max_beam_width: int = 8  # beam search (sequence-to-sequence models)
    max_seed_chars: int = 4000  # longer seed text is cut to its last this-many characters
    max_prompt_seconds: float = 10.0  # longer audio prompts are cut to their last this-many seconds
    speed_max_layers: int = 12  # Speed tab: largest layers-per-block
    speed_tokens: int = 200  # Speed tab: samples timed per point
    train_max_minutes: float = 30.0  # a training job's time budget from the UI

    @classmethod
    def from_env(cls, env: dict | None = None) -> Limits:
        """Defaults, each overridden by PLAYGROUND_<FIELD NAME IN CAPS> when that is set to a number."""
        env = os.environ if env is None else env
        values = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"PLAYGROUND_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            try:
                number = float(raw)
            except ValueError:
                raise UserError(f"PLAYGROUND_{f.name.upper()} must be a number, got {raw!r}") from None
            if not number > 0 or number != number:
                raise UserError(f"PLAYGROUND_{f.name.upper()} must be positive, got {raw!r}")
            values[f.name] = int(number) if f.type in ("int", int) else number
        return cls(**values)
