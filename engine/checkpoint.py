"""Checkpoints: a folder with `config.json` and `model.safetensors`, never pickle.

config.json = {"format": "autoregressive-playground", "format_version": 1, "family", "config" (the family's
dataclass), "tokens" (audio rate and quantization, or bytes), "training" (data, steps, loss, license, ...)}.
`save_model` writes into a temp folder and renames it over the target, so a reader never sees half a checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import registry
from .devices import parse_device
from .errors import UserError
from .paths import SHIPPED_MODELS, model_roots
from .protocol import AutoregressiveModel

FORMAT = "autoregressive-playground"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".npy", ".npz", ".joblib")


class CheckpointError(UserError):
    """A folder that is not a loadable checkpoint; the message says why in one line."""


def stored_tensors(model: AutoregressiveModel, half_precision: bool = False) -> dict[str, torch.Tensor]:
    """The weights as the checkpoint stores them.  With `half_precision`, float32 tensors under the model's
    `half_precision_prefixes` are stored as float16 (half the size, for shipping a demo; its figures must be
    measured from the stored file); loading copies them back into the model's float32 parameters."""
    half = tuple(getattr(model, "half_precision_prefixes", ())) if half_precision else ()
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu").contiguous()
        out[k] = v.half() if half and k.startswith(half) and v.dtype == torch.float32 else v
    return out


def save_model(model: AutoregressiveModel, path: str | os.PathLike, half_precision: bool = False,
               **training: Any) -> Path:
    """Write `model` to folder `path` atomically; `training` (data, steps, val_loss, license...) goes in config.json;
    `half_precision`: see stored_tensors."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": model.family,
        "config": dataclasses.asdict(model.config),
        "tokens": dataclasses.asdict(model.tokens),
        "receptive_field": model.receptive_field,
        "parameters": model.num_parameters(),
        "training": training,
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tensors = stored_tensors(model, half_precision)
        save_file(tensors, str(tmp / WEIGHTS_FILE))
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, default=str))
        for f in (tmp / WEIGHTS_FILE, tmp / CONFIG_FILE):
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def read_meta(path: str | os.PathLike) -> dict:
    """config.json of a checkpoint folder, checked to be ours."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if not path.is_dir():
        raise CheckpointError(f"{path} is a file; a checkpoint is a folder with {CONFIG_FILE} and {WEIGHTS_FILE}")
    cfg_file = path / CONFIG_FILE
    if not cfg_file.is_file():
        inside = [sub for sub in ("best", "last") if (path / sub / CONFIG_FILE).is_file()]  # a training run
        hint = f"; did you mean {path / inside[0]}?" if inside else ""
        raise CheckpointError(f"{path} is not a checkpoint: {CONFIG_FILE} is missing{hint}")
    try:
        meta = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not a checkpoint: {CONFIG_FILE} is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an Autoregressive Playground checkpoint (its {CONFIG_FILE} is from "
                              "another program)")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {meta.get('format_version')}, newer than this version "
                              f"reads ({FORMAT_VERSION})")
    if meta.get("family") not in registry.families():
        raise CheckpointError(f"{path}: unknown model family {meta.get('family')!r} "
                              f"(known: {', '.join(registry.families())})")
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path}: {CONFIG_FILE} has no model config")
    return meta


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu",
               family: str | None = None) -> AutoregressiveModel:
    """Read a checkpoint folder (safetensors + JSON only) into a model in eval mode."""
    path = Path(path)
    device = parse_device(device)  # a bad device is one clear line before any file is read
    meta = read_meta(path)
    if family is not None and meta["family"] != family:
        raise CheckpointError(f"{path} holds a {meta['family']} model, not {family}")
    pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(f"{path} contains pickle-style files ({', '.join(pickles)}); refusing to load a "
                              "folder that may run code. Checkpoints hold only config.json and model.safetensors")
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{path} is not a complete checkpoint: {WEIGHTS_FILE} is missing")
    try:
        model = registry.build_model(meta["family"], **meta["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: its model config is invalid ({e})") from None
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: {WEIGHTS_FILE} is not a readable safetensors file ({e})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: weights do not match the {meta['family']} config "
                              f"(missing: {', '.join(missing[:5]) or 'none'}; unexpected: {', '.join(extra[:5]) or 'none'})")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"{path}: shape mismatch for {name}: checkpoint has {tuple(tensor.shape)}, "
                                  f"the config expects {tuple(expected[name].shape)}")
    model.load_state_dict(tensors)
    return model.to(device).eval()


@dataclass
class ModelInfo:
    name: str
    path: Path
    family: str
    kind: str  # "audio" or "text"
    shipped: bool
    meta: dict

    @property
    def val_loss(self) -> float | None:
        return self.meta.get("training", {}).get("val_loss")


def list_models(roots: list[str | os.PathLike] | None = None, max_depth: int = 3) -> list[ModelInfo]:
    """Every valid checkpoint under the model roots (shipped first), skipping folders that do not load."""
    roots = [Path(r) for r in (roots if roots is not None else model_roots())]
    found: list[ModelInfo] = []
    seen: set[Path] = set()
    for root in roots:
        if not root.is_dir():
            continue
        for cfg in sorted(root.rglob(CONFIG_FILE)):
            folder = cfg.parent
            if len(folder.relative_to(root).parts) > max_depth or folder.resolve() in seen:
                continue
            if any(part.startswith(".") for part in folder.relative_to(root).parts):
                continue  # temp folders of an atomic save in progress
            try:
                meta = read_meta(folder)
            except CheckpointError:
                continue
            if not (folder / WEIGHTS_FILE).is_file():
                continue
            seen.add(folder.resolve())
            name = str(folder.relative_to(root)) if folder != root else folder.name
            found.append(ModelInfo(name, folder, meta["family"], meta.get("tokens", {}).get("kind", "?"),
                                   root.resolve() == SHIPPED_MODELS.resolve(), meta))
    return found
