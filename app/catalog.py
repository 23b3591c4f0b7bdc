"""The model picker: which checkpoints exist, how to label and describe them, and a small cache of loaded ones.

Only folders that `engine.list_models()` finds under `engine.paths.model_roots()` can be loaded: a path sent by
a client is looked up in that list, never opened directly, so the picker cannot be used to read arbitrary files.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import engine
from engine.paths import playground_home
from trainers import runfiles

from .errors import UserError
from .limits import Limits


def _is_resume_state(info: engine.ModelInfo) -> bool:
    """A training run's `last/` folder: a resumable copy beside `best/`, not a model to offer in the picker."""
    folder = Path(info.path)
    return folder.name == runfiles.LAST and (folder.parent / runfiles.RUN_FILE).is_file()


def list_infos() -> list[engine.ModelInfo]:
    """Shipped models first (audio before text, class-conditioned audio such as the digits demo first of all,
    so the default pick says a digit on the first click), then the user's own, each group in name order."""
    infos = [i for i in engine.list_models() if not _is_resume_state(i)]
    return sorted(infos, key=lambda i: (not i.shipped, i.kind != "audio", not class_labels(i), i.name))


def label(info: engine.ModelInfo) -> str:
    """One line for the dropdown: name, family, kind, held-out loss, and whose it is."""
    parts = [info.family, info.kind]
    loss = info.val_loss
    if isinstance(loss, (int, float)):
        parts.append(f"val loss {loss:.3f}")
    owner = "shipped" if info.shipped else "yours"
    name = info.name[: -len("/" + runfiles.BEST)] if info.name.endswith("/" + runfiles.BEST) else info.name
    return f"{name} ({', '.join(parts)}; {owner})"


def value_of(info: engine.ModelInfo) -> str:
    """The picker's value for a model: its name, no server path (the API page lists these): a shipped model's
    folder name, or the folder relative to PLAYGROUND_HOME for the user's own ("models/mine", "runs/ID/best")."""
    try:
        return Path(info.path).resolve().relative_to(playground_home().resolve()).as_posix()
    except ValueError:
        return info.name


def choices() -> list[tuple[str, str]]:
    """(label, value) pairs for gr.Dropdown; the value is the model's name (value_of)."""
    return [(label(i), value_of(i)) for i in list_infos()]


DEFAULT_MODEL = "digits-pipeline"  # the best-sounding audio demo (docs/BENCHMARKS.md): a new user hears it first


def default_choice(values: list[tuple[str, str]]) -> str | None:
    """PLAYGROUND_DEFAULT_MODEL (a folder name; the digits pipeline unless set) if it is listed, else the
    first in the list (see list_infos for the order), so a new user hears something with one click."""
    want = os.environ.get("PLAYGROUND_DEFAULT_MODEL", DEFAULT_MODEL)
    for _, value in values:
        if value == want or Path(value).name == want:
            return value
    return values[0][1] if values else None


def resolve(path: str | None) -> engine.ModelInfo:
    """The ModelInfo for a picker value; anything not in the current model list is refused."""
    if path is not None and not isinstance(path, (str, os.PathLike)):  # e.g. a list sent through the API
        raise UserError(f"The model must be one name from the model list (a string), got a "
                        f"{type(path).__name__}.")
    if not path:
        raise UserError("Pick a model first (the list is empty? train one in the Train tab).")
    infos = list_infos()
    for info in infos:  # a picker value (value_of)
        if value_of(info) == str(path):
            return info
    want = Path(path).resolve()  # or the folder itself, as older clients send it
    for info in infos:
        if Path(info.path).resolve() == want:
            return info
    raise UserError("That model is not in the model list any more; press the refresh button next to the picker.")


def class_labels(info: engine.ModelInfo) -> list[str]:
    """Names of the classes a class-conditioned model takes (digits for the digits demo; a pipeline's class is its
    LM's first token); [] if none."""
    config = info.meta.get("config", {}) or {}
    n = int((config.get("n_classes") if info.family == "pipeline" else config.get("global_cond_classes")) or 0)
    if n <= 0:
        return []
    training = info.meta.get("training", {}) or {}
    for key in ("label_names", "classes", "class_names", "cond_labels"):
        names = training.get(key) or (config.get(key) if key == "class_names" else None)
        if isinstance(names, (list, tuple)) and len(names) == n:
            return [str(x) for x in names]
    return [str(i) for i in range(n)]


@dataclass(frozen=True)
class LengthCap:
    """How generation length is asked for: seconds for audio, tokens for text, with a per-model maximum."""

    unit: str  # "seconds" or "tokens"
    maximum: float
    default: float
    step: float


def length_cap(info: engine.ModelInfo, limits: Limits) -> LengthCap:
    """Per-model cap: the global one, lowered by `max_generate_seconds`/`max_generate_tokens` in the model's meta."""
    training = info.meta.get("training", {}) or {}
    if info.kind == "audio":
        cap = min(limits.audio_seconds, float(training.get("max_generate_seconds", limits.audio_seconds)))
        return LengthCap("seconds", cap, min(2.0, cap), 0.1)
    cap = int(min(limits.text_tokens, int(training.get("max_generate_tokens", limits.text_tokens))))
    return LengthCap("tokens", cap, min(400, cap), 1)


def describe(info: engine.ModelInfo) -> str:
    """Markdown about a model: what it is, what it was trained on, how well, under which license."""
    meta, tokens = info.meta, info.meta.get("tokens", {}) or {}
    training = meta.get("training", {}) or {}
    lines = [f"**{info.name}**: a `{info.family}` {info.kind} model"
             + (" that ships with the app" if info.shipped else " you trained")]
    config = meta.get("config", {}) or {}
    if info.family == "pipeline":
        decoder = config.get("codebook_decoder")
        lines.append(f"two stages: a {config.get('lm_family')} LM plans {config.get('codebook_size')} kinds of frame "
                     f"token, " + ("a learned token decoder turns them into frames, " if decoder else "")
                     + f"a {config.get('vocoder_family')} vocoder plays them; an audio prompt is continued")
        if float(config.get("guidance", 1.0)) != 1.0:
            lines.append(f"its LM plans with classifier-free guidance {config['guidance']:g} (the class said more "
                         "clearly than the plain conditional LM would; temperature, top-k and top-p apply as usual)")
    elif config.get("local_cond_channels"):
        lines.append("a vocoder: it re-speaks an uploaded or recorded clip from the clip's own log-mel frames")
    if info.kind == "audio" and tokens.get("sample_rate"):
        lines.append(f"audio at {tokens['sample_rate']} Hz, {tokens.get('quantization', '?')} "
                     f"{tokens.get('vocab_size', '?')} levels"
                     + (f" of the pre-emphasized waveform ({tokens['preemphasis']:g}: less hiss)"
                        if tokens.get("preemphasis") else ""))
    elif info.kind == "text":
        lines.append(f"text as UTF-8 bytes (vocabulary {tokens.get('vocab_size', '?')})")
    labels = class_labels(info)
    if labels:
        more = "…" if len(labels) > 10 else ""
        lines.append(f"conditioned on {len(labels)} classes ({', '.join(labels[:10])}{more})")
    data = training.get("data_source") or training.get("data")
    if data:
        url = training.get("data_url")
        lines.append(f"trained on: {data}" + (f" ({url})" if url and url not in data else ""))
    loss = training.get("val_loss")
    if isinstance(loss, (int, float)):
        bits = training.get("val_bits")
        in_bits = f" ({bits:.3f} bits)" if isinstance(bits, (int, float)) else ""
        lines.append(f"held-out loss {loss:.3f} nats/token{in_bits}")
    if training.get("steps"):
        lines.append(f"{training['steps']} training steps")
    if training.get("license"):
        lines.append(f"data license: {training['license']}")
    if meta.get("parameters"):
        lines.append(f"{meta['parameters'] / 1e6:.2f} M parameters")
    rf = meta.get("receptive_field")
    if rf:
        extra = f" ({rf / tokens['sample_rate']:.3f} s)" if info.kind == "audio" and tokens.get("sample_rate") else ""
        lines.append(f"receptive field {rf} tokens{extra}")
    return lines[0] + "  \n" + " · ".join(lines[1:])


class ModelCache:
    """The last few loaded models, keyed by folder and weights mtime (a retrained model is reloaded)."""

    def __init__(self, size: int = 3):
        self.size = size
        self._models: OrderedDict[tuple[str, float], engine.AutoregressiveModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, info: engine.ModelInfo) -> engine.AutoregressiveModel:
        folder = Path(info.path)
        try:
            mtime = (folder / "model.safetensors").stat().st_mtime
        except OSError:
            mtime = 0.0
        key = (str(folder.resolve()), mtime)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        try:
            model = engine.load_model(folder)
        except UserError as e:  # CheckpointError, or a config a family refuses
            raise UserError(f"Cannot load {info.name}: {e}") from None
        with self._lock:
            self._models[key] = model
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return model
