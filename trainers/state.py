"""The resumable `last/` checkpoint: model (engine format), optimizer tensors, trainer state; no pickle.

last/ = config.json + model.safetensors (exactly what `engine.save_model` writes, so `engine.load_model` reads it)
      + optimizer.safetensors (every tensor of the optimizer's state dict, keyed "state.<param>.<name>", plus the
        RNG states as uint8 tensors "rng.<name>")
      + trainer_state.json (step, elapsed time, best loss, the optimizer's param groups and scalar state, the
        grad-scaler state, the sampler state).
The folder is assembled under a temp name and renamed into place; the previous `last/` is moved aside first
and removed after, so at every instant either the old or the new complete checkpoint exists (`find_last`
falls back to the moved-aside copy if a crash lands between the two renames).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from engine.checkpoint import save_model
from engine.protocol import AutoregressiveModel

OPTIM_FILE, STATE_FILE = "optimizer.safetensors", "trainer_state.json"


def flatten_optimizer(sd: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for pid, pstate in sd["state"].items():
        for name, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{name}"] = value.detach().to("cpu").contiguous()
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for key, value in meta.get("scalars", {}).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_tensors(gen: torch.Generator) -> dict[str, torch.Tensor]:
    out = {"rng.torch": torch.get_rng_state(), "rng.data": gen.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["rng.cuda"] = torch.cuda.get_rng_state()
    return out


def save_last(path: str | os.PathLike, model: AutoregressiveModel, optimizer: torch.optim.Optimizer,
              gen: torch.Generator, trainer_state: dict, **training: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.build-", dir=path.parent))
    try:
        folder = save_model(model, work / "ckpt", **training)
        tensors, meta = flatten_optimizer(optimizer.state_dict())
        tensors.update(rng_tensors(gen))
        save_file(tensors, str(folder / OPTIM_FILE))
        with open(folder / STATE_FILE, "w", encoding="utf-8") as fh:
            json.dump({**trainer_state, "optimizer": meta}, fh, indent=2, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        with open(folder / OPTIM_FILE, "rb") as fh:
            os.fsync(fh.fileno())
        old = path.with_name(f".{path.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            os.replace(path, old)
        os.replace(folder, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def find_last(path: str | os.PathLike) -> Path | None:
    """The complete last checkpoint: `last/`, or its moved-aside copy if a save was interrupted mid-swap."""
    path = Path(path)
    for candidate in (path, path.with_name(f".{path.name}.old")):
        if (candidate / STATE_FILE).is_file() and (candidate / OPTIM_FILE).is_file():
            return candidate
    return None


def load_last(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """(trainer_state incl. optimizer meta, tensors incl. optimizer state and RNG) of a last checkpoint."""
    path = Path(path)
    state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    return state, load_file(str(path / OPTIM_FILE))


def restore(optimizer: torch.optim.Optimizer, gen: torch.Generator, state: dict, tensors: dict) -> None:
    optimizer.load_state_dict(unflatten_optimizer(tensors, state["optimizer"]))
    torch.set_rng_state(tensors["rng.torch"])
    gen.set_state(tensors["rng.data"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
