"""The Generate tab's handler as plain functions: check the request, build the prompt, stream the generation.

`run(request, ...)` yields `Update`s: the status line, a new int16 audio chunk to play, the text so far, and at
the end a `Result` (wav files, what to draw the waveform + spectrogram from, samples/s).  Audio chunks are int16 so
they go to the live player (app/live_player.py) as they are; the first chunk goes out as soon as there is a little
audio, later ones once `ChunkPolicy.seconds` of audio is ready.
The model work is all `engine.generate`; this module only converts between UI values and engine calls.
"""
from __future__ import annotations

import math
import os
import random
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import engine
from engine import resynthesis
from engine.protocol import Conditioning

from . import catalog
from .errors import UserError
from .limits import Limits
from .plots import audio_figure
from .prompts import audio_prompt, text_prompt

Warn = Callable[[str], None]
OUT_ROOT = Path(tempfile.gettempdir()) / "autoregressive-playground" / "generations"
KEEP_SECONDS = 3600.0  # generated files older than this are deleted at the next run


@dataclass
class GenerateRequest:
    """Exactly the values the UI sends (numbers may arrive as None, NaN or strings through the API)."""

    model: str | None
    seed_text: str | None = ""
    prompt_audio: str | None = None
    cond_class: str | None = None
    temperature: object = 1.0
    top_k: object = 0
    top_p: object = 1.0
    seconds: object = 2.0  # length for audio models
    tokens: object = 400  # length for text models
    seed: object = None
    variations: object = 1
    beam_width: object = 1  # sequence-to-sequence models: > 1 decodes by beam search instead of sampling
    averaging: object = None  # RNN decoders: hidden-state averaging influence (None = the model's default)


@dataclass
class ChunkPolicy:
    """When to hand audio to the player: the first chunk early, then chunks of at least `seconds`."""

    seconds: float = 0.5
    first_seconds: float = 0.25  # flush the first chunk once this much audio exists...
    first_deadline: float = 0.15  # ...or once this much wall time has passed with any audio at all
    text_every: float = 0.1  # seconds between text updates
    engine_chunk: int = 128  # tokens per engine chunk: how often Stop is checked

    @classmethod
    def from_env(cls) -> ChunkPolicy:
        """Defaults; PLAYGROUND_FIRST_CHUNK_SECONDS, PLAYGROUND_FIRST_CHUNK_DEADLINE and PLAYGROUND_CHUNK_SECONDS
        tune them (for latency tests)."""
        kw = {}
        for name, var in (("first_seconds", "PLAYGROUND_FIRST_CHUNK_SECONDS"), ("seconds", "PLAYGROUND_CHUNK_SECONDS"),
                          ("first_deadline", "PLAYGROUND_FIRST_CHUNK_DEADLINE")):
            if os.environ.get(var):
                kw[name] = float(os.environ[var])
        return cls(**kw)


@dataclass
class Figure:
    """What the waveform + spectrogram image is drawn from.  The UI draws it in a follow-up event, after the
    generation's event has ended: drawing takes 150-250 ms, and Gradio flushes the live player's last audio
    frames only when that event ends, so drawing inside it made the player stall before the clip's end."""

    waves: list[np.ndarray]
    rate: int
    path: str
    title: str


def draw_figure(figure: Figure | None) -> str | None:
    """The image's path (drawn now), or None without a figure."""
    return audio_figure(figure.waves, figure.rate, figure.path, title=figure.title) if figure else None


@dataclass
class Result:
    wav_paths: list[str] = field(default_factory=list)
    audio: tuple[int, np.ndarray] | None = None  # variation 1 as (rate, int16) for the player
    figure: Figure | None = None  # the waveform + spectrogram to draw once the stream has ended (`draw_figure`)
    text: str = ""
    tokens: int = 0
    seconds: float = 0.0
    samples_per_s: float = 0.0
    stopped: bool = False
    summary: str = ""
    first_audio_s: float | None = None  # from the request to the first audio chunk handed to the player


@dataclass
class Update:
    status: str
    audio: tuple[int, np.ndarray] | None = None  # (rate, int16 samples) to append to the live player
    text: str | None = None
    result: Result | None = None
    seed: int | None = None  # the seed this run uses (on the first update)
    rate: int | None = None  # an audio model's sample rate (on the first update: the player gets ready for it)


@dataclass
class Prepared:
    info: engine.ModelInfo
    model: engine.AutoregressiveModel
    prompt: torch.Tensor | None
    cond: object
    max_new_tokens: int
    sampling: engine.SamplingConfig
    seed: int
    batch: int
    seed_text: str = ""
    beam_width: int = 1
    decode_options: dict = field(default_factory=dict)


@dataclass
class Form:
    """What the Generate form shows for a model: which prompt inputs, which classes, the length slider."""

    description: str
    kind: str  # "audio", "text" or "" (no model)
    classes: list[str]
    length: catalog.LengthCap | None
    source: bool = False  # a sequence-to-sequence model: the text box is its source, not a prefix
    averaging: float | None = None  # the model's hidden-state averaging default, where it has the option


def form_for(path: str | None, limits: Limits, cache: catalog.ModelCache | None = None) -> Form:
    """The form for the picked model; an empty picker gets a hint instead of an error.  With a `cache` the
    model is loaded to read its decode-time options (e.g. hidden-state averaging)."""
    if not path:
        return Form("No models yet: train one in the **Train** tab, then pick it here.", "", [], None)
    try:
        info = catalog.resolve(path)
        options = cache.get(info).decode_options if cache is not None else {}
    except UserError as e:
        return Form(str(e), "", [], None)
    return Form(catalog.describe(info), info.kind, catalog.class_labels(info), catalog.length_cap(info, limits),
                source=bool(info.meta.get("config", {}).get("encoder")), averaging=options.get("influence"))


# ---- parsing UI values -------------------------------------------------------------------------------------
def _number(value, name: str, default: float | None = None) -> float | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return default
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise UserError(f"{name} must be a finite number, got {value!r}")
    return x


def _whole(value, name: str, default: int | None, lo: int, hi: int) -> int | None:
    x = _number(value, name, None)
    if x is None:
        return default
    if x != int(x) or not lo <= x <= hi:
        raise UserError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
    return int(x)


def sampling_config(temperature, top_k, top_p) -> engine.SamplingConfig:
    """UI sliders -> engine.SamplingConfig; top-k 0 and top-p 1 mean off."""
    t = _number(temperature, "Temperature", 1.0)
    k = _whole(top_k, "Top-k", 0, 0, 1_000_000)
    p = _number(top_p, "Top-p", 1.0)
    try:
        return engine.SamplingConfig(t, k or None, None if p == 1.0 else p)
    except UserError as e:
        raise UserError(str(e).replace("temperature", "Temperature", 1)) from None


def cond_for(info: engine.ModelInfo, cond_class: str | None):
    """The class id a conditioned model needs, from the picker's label; None for unconditioned models."""
    labels = catalog.class_labels(info)
    if not labels:
        return None
    if cond_class is None or str(cond_class) not in labels:
        raise UserError(f"{info.name} is conditioned: pick one of {', '.join(labels)} in the class picker.")
    return torch.tensor([labels.index(str(cond_class))])


def prepare(req: GenerateRequest, cache: catalog.ModelCache, limits: Limits, warn: Warn) -> Prepared:
    """Check every value and build the engine call; raises UserError with a message for the UI."""
    info = catalog.resolve(req.model)
    sampling = sampling_config(req.temperature, req.top_k, req.top_p)
    batch = _whole(req.variations, "Variations", 1, 1, limits.max_variations)
    seed = _whole(req.seed, "Seed", None, 0, 2**63 - 1)
    if seed is None:
        seed = random.randrange(2**31)
    cap = catalog.length_cap(info, limits)
    length = _number(req.seconds if cap.unit == "seconds" else req.tokens, f"Length ({cap.unit})", cap.default)
    if not 0 < length <= cap.maximum + 1e-9:
        raise UserError(f"Length must be more than 0 and at most {cap.maximum:g} {cap.unit} for {info.name}, "
                        f"got {length:g}")
    model = cache.get(info)
    tokens = model.tokens
    cond = cond_for(info, req.cond_class)
    beam_width = _whole(req.beam_width, "Beam width", 1, 1, limits.max_beam_width)
    if beam_width > 1 and not hasattr(model, "encode"):
        raise UserError("Beam search is for the sequence-to-sequence models; set the beam width to 1.")
    if beam_width > 1 and batch > 1:
        warn("Beam search finds one best output, so it makes one variation.")
        batch = 1
    decode_options = {}
    averaging = _number(req.averaging, "Hidden-state averaging", None)
    if averaging is not None and "influence" in model.decode_options:
        if not 0 <= averaging <= 1:
            raise UserError(f"Hidden-state averaging must be from 0 to 1, got {averaging:g}")
        decode_options["influence"] = averaging
    seed_text = ""
    if hasattr(model, "generate_stream") and batch > 1:
        warn(f"{info.name} makes one clip at a time, so it makes one variation.")
        batch = 1
    if model.frame_features is not None and not hasattr(model, "generate_stream"):  # a vocoder: copy-synthesis
        if not req.prompt_audio:
            raise UserError(f"{info.name} is a vocoder: it re-speaks a clip from the clip's own frames. Upload or "
                            "record one as the audio prompt.")
        ids = audio_prompt(req.prompt_audio, tokens, limits, warn)
        wave = engine.audio.decode_audio(ids, tokens)
        if batch > 1 or abs(len(wave) / tokens.sample_rate - length) > 0.05:
            warn(f"{info.name} re-speaks the {len(wave) / tokens.sample_rate:.1f} s clip once (the length and "
                 "variations settings do not apply).")
        frames = resynthesis.clip_frames(model, wave)
        return Prepared(info, model, None, Conditioning(frames=frames), len(wave), sampling, seed, 1, "", 1, {})
    if tokens.kind == "audio":
        max_new = max(1, round(length * tokens.sample_rate))
        # the seed text box is hidden for audio models but keeps its value: it is ignored without a word
        prompt = audio_prompt(req.prompt_audio, tokens, limits, warn) if req.prompt_audio else None
    elif hasattr(model, "encode"):  # sequence to sequence: the text box holds the source, the output starts fresh
        max_new = int(length)
        source, _ = text_prompt(req.seed_text, tokens, limits, warn)
        if not source.strip():
            raise UserError(f"{info.name} rewrites a source text: type one in the text box (the dates model reads "
                            "a date with the day and year in digits and the month as a word, e.g. 5 March 2021 or "
                            "vendredi 5 mars 2021).")
        prompt, cond = None, source
    else:
        max_new = int(length)
        seed_text, prompt = text_prompt(req.seed_text, tokens, limits, warn)
    return Prepared(info, model, prompt, cond, max_new, sampling, seed, batch, seed_text, beam_width, decode_options)


# ---- streaming ---------------------------------------------------------------------------------------------
def _to_int16(wave: torch.Tensor | np.ndarray) -> np.ndarray:
    wave = wave.numpy() if isinstance(wave, torch.Tensor) else wave
    return np.round(np.clip(wave, -1, 1) * 32767).astype(np.int16)


def _prune(root: Path, keep_seconds: float = KEEP_SECONDS) -> None:
    if not root.is_dir():
        return
    now = time.time()
    for d in root.iterdir():
        try:
            if now - d.stat().st_mtime > keep_seconds:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


def stream(p: Prepared, stop: threading.Event | None = None, policy: ChunkPolicy | None = None,
           out_root: Path = OUT_ROOT, started: float | None = None) -> Iterator[Update]:
    """Run the generation, yielding live updates and finally the Result (`started`: when the request came)."""
    policy = policy or ChunkPolicy()
    first_audio = None
    tokens = p.model.tokens
    audio = tokens.kind == "audio"
    rate = tokens.sample_rate or 1
    n_rows = p.batch
    rows: list[list[torch.Tensor]] = [[] for _ in range(n_rows)]
    decoders = [engine.text.StreamDecoder() for _ in range(n_rows)]
    texts = [p.seed_text for _ in range(n_rows)]
    ended = [False] * n_rows
    pending: list[torch.Tensor] = []  # audio of variation 1 not yet sent
    live = engine.audio.AudioDecoder(tokens, p.prompt) if audio else None  # variation 1's waveform, chunk by chunk
    sent_chunks = 0
    made = 0
    what = f"{p.info.name}, seed {p.seed}"
    total = f"{p.max_new_tokens / rate:.1f} s" if audio else f"{p.max_new_tokens} tokens"
    yield Update(f"Generating with {what}…", text="" if audio else _join(texts), seed=p.seed,
                 rate=rate if audio else None)
    t0 = last_text = time.perf_counter()
    stopped = stop is not None and stop.is_set()  # Stop pressed while the request waited in the queue
    if p.beam_width > 1:
        gen = _beam(p)
    else:
        gen = engine.generate(p.model, p.prompt, max_new_tokens=p.max_new_tokens,
                              temperature=p.sampling.temperature, top_k=p.sampling.top_k, top_p=p.sampling.top_p,
                              cond=p.cond, seed=p.seed, chunk_size=policy.engine_chunk, batch_size=n_rows,
                              decode_options=p.decode_options)
    try:
        for chunk in () if stopped else gen:
            chunk = chunk.cpu()
            made += chunk.shape[1]
            for r in range(n_rows):
                rows[r].append(chunk[r])
            now = time.perf_counter()
            progress = f"{made / rate:.1f} of {total}" if audio else f"{made} of {total}"
            if audio:
                pending.append(live(chunk[0]))
                have = sum(len(x) for x in pending) / rate
                first = sent_chunks == 0 and (have >= policy.first_seconds or now - t0 >= policy.first_deadline)
                if first or (sent_chunks > 0 and have >= policy.seconds):
                    sent_chunks += 1
                    if first_audio is None:
                        first_audio = time.perf_counter()
                    yield Update(f"Generating with {what}: {progress} ({made * n_rows / (now - t0):,.0f} samples/s)",
                                 audio=(rate, _to_int16(torch.cat(pending))))
                    pending = []
            else:
                for r in range(n_rows):
                    ids = chunk[r].tolist()
                    if tokens.eos_id is not None and not ended[r] and tokens.eos_id in ids:
                        ids = ids[:ids.index(tokens.eos_id) + 1]
                        ended[r] = True
                    elif ended[r]:
                        continue
                    texts[r] += decoders[r].feed(ids)
                if now - last_text >= policy.text_every:
                    last_text = now
                    yield Update(f"Generating with {what}: {progress}", text=_join(texts))
            if stop is not None and stop.is_set():
                stopped = True
                break
    finally:
        gen.close()
    elapsed = max(time.perf_counter() - t0, 1e-9)
    if audio and pending:
        if first_audio is None:  # the whole clip was made before the first chunk was due: it goes out now
            first_audio = time.perf_counter()
        yield Update(f"Generating with {what}: finishing", audio=(rate, _to_int16(torch.cat(pending))))
    if not audio:
        texts = [t + d.flush() for t, d in zip(texts, decoders)]
    yield Update("Writing the results…", text=None if audio else _join(texts))
    result = _finish(p, rows, texts, made, elapsed, stopped, out_root)
    if first_audio is not None:
        result.first_audio_s = first_audio - (started if started is not None else t0)
        result.summary += f"; first audio after {result.first_audio_s:.2f} s"
    yield Update(result.summary, text=None if audio else result.text, result=result)


def _beam(p: Prepared) -> Iterator[torch.Tensor]:
    """Beam search as one chunk of ids (the best output, then the end id); every variation gets the same."""
    best = engine.beam_search(p.model, p.cond, beam_width=p.beam_width, max_new_tokens=p.max_new_tokens,
                              batch_size=1)[0]  # one source text (len(p.cond) would count its characters)
    ids = torch.tensor(best + [p.model.tokens.eos_id], dtype=torch.long)
    yield ids.unsqueeze(0).expand(p.batch, -1)


def _join(texts: list[str]) -> str:
    if len(texts) == 1:
        return texts[0]
    return "\n\n".join(f"── variation {i + 1} ──\n{t}" for i, t in enumerate(texts))


def _finish(p: Prepared, rows: list[list[torch.Tensor]], texts: list[str], made: int, elapsed: float,
            stopped: bool, out_root: Path) -> Result:
    tokens = p.model.tokens
    res = Result(tokens=made * p.batch, seconds=elapsed, samples_per_s=made * p.batch / elapsed, stopped=stopped)
    unit = "samples" if tokens.kind == "audio" else "tokens"
    head = "Stopped" if stopped else "Done"
    summary = (f"{head}: {made:,} {unit} × {p.batch} variation{'s' if p.batch > 1 else ''} in {elapsed:.2f} s = "
               f"**{res.samples_per_s:,.0f} {unit}/s**")
    if made == 0:
        res.summary = f"{head} before anything was generated."
        return res
    if tokens.kind == "audio":
        rate = tokens.sample_rate
        summary += f" ({res.samples_per_s / p.batch / rate:.2f}× real time per variation; seed {p.seed})"
        _prune(out_root)
        out = Path(tempfile.mkdtemp(prefix="gen-", dir=_mkdir(out_root)))
        waves = []
        for r, parts in enumerate(rows):
            wave = engine.audio.AudioDecoder(tokens, p.prompt)(torch.cat(parts)).numpy()
            waves.append(wave)
            path = out / f"{_safe_name(p.info.name)}-seed{p.seed}-v{r + 1}.wav"
            engine.audio.write_wav(path, wave, rate)
            res.wav_paths.append(str(path))
        res.audio = (rate, _to_int16(torch.from_numpy(waves[0])))
        res.figure = Figure(waves, rate, str(out / "waveform-spectrogram.png"), p.info.name)
    else:
        res.text = _join(texts)
        summary += f" (beam width {p.beam_width})" if p.beam_width > 1 else f" (seed {p.seed})"
    res.summary = summary
    return res


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def warm_up(cache: catalog.ModelCache, limit: int = 3) -> list[str]:
    """Load the first few models and generate a few tokens with each, so the first click does not pay for
    loading weights and compiling the fast path (seconds with numba).  Returns the names warmed; never raises."""
    from engine import fast  # compile both fast loops even when the first models do not need them
    fast.warmup()
    warmed = []
    for info in catalog.list_infos()[:limit]:
        try:
            model = cache.get(info)
            labels = catalog.class_labels(info)
            cond = cond_for(info, labels[0]) if labels else None
            for _ in engine.generate(model, None, max_new_tokens=8, cond=cond, seed=0, chunk_size=8):
                pass
            warmed.append(info.name)
        except Exception:  # a model that cannot warm up reports its problem when it is used
            continue
    return warmed


def run(req: GenerateRequest, cache: catalog.ModelCache, limits: Limits, warn: Warn = lambda _m: None,
        stop: threading.Event | None = None, policy: ChunkPolicy | None = None,
        out_root: Path = OUT_ROOT) -> Iterator[Update]:
    """prepare + stream: the whole Generate click."""
    started = time.perf_counter()
    prepared = prepare(req, cache, limits, warn)
    yield from stream(prepared, stop, policy, out_root, started)
