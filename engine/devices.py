"""A device name a user typed (`--device`, a training config) -> torch.device, or a UserError saying why not."""
from __future__ import annotations

import torch

from .errors import UserError

CHOICES = "auto, cpu, cuda or cuda:N"


def parse_device(name: str | torch.device, local_rank: int = 0) -> torch.device:
    """"auto" is the GPU of this process (cuda:`local_rank`) when there is one, else the CPU."""
    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str):
        raise UserError(f"device must be {CHOICES}, got {name!r}")
    if name.strip().lower() == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name.strip().lower())
    except (RuntimeError, ValueError):
        raise UserError(f"unknown device {name!r}; use {CHOICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name} was asked for but no CUDA GPU is available (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                            f"numbered from 0")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise UserError(f"device {name} was asked for but MPS is not available here")
    elif device.type != "cpu":
        raise UserError(f"unsupported device {name!r}; use {CHOICES}")
    return device
