"""Command line generation: `python -m engine --model PATH ... [--out FILE]`.

Writes a wav for audio models and prints (or writes) text for text models; a sequence-to-sequence model
rewrites `--source TEXT` (sampled, or beam search with `--beam-width N`).  Input a user can fix (a bad flag, a
missing or corrupt file, an unusable device) is an `engine.errors.UserError`: one line on stderr and exit status
2, no traceback.  Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import math
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm import tqdm

from . import audio, resynthesis, text
from .beam import beam_search
from .checkpoint import load_model, read_meta
from .devices import parse_device
from .errors import UserError, one_line
from .generation import MAX_NEW_TOKENS, MAX_SEED, generate
from .sampling import SamplingConfig

PROG = "python -m engine"
DEFAULT_TEXT_TOKENS = 200


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + message; one clear line is enough
        self.exit(2, f"error: {message} (see --help)\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = _OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="checkpoint folder")
    prompt = p.add_mutually_exclusive_group()
    prompt.add_argument("--prompt-audio", help="audio file to continue (any rate/format libsndfile reads; its last "
                        f"{audio.PROMPT_SECONDS:g} s are used)")
    prompt.add_argument("--prompt-text", help="seed text to continue")
    prompt.add_argument("--source", help="text for a sequence-to-sequence model to rewrite (e.g. \"3 March 2021\")")
    prompt.add_argument("--resynth", metavar="CLIP",
                        help="copy-synthesis: a vocoder re-speaks this clip from the clip's own log-mel frames")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, help="audio length to generate")
    length.add_argument("--tokens", type=int, help="number of new tokens (samples or bytes); the most for seq2seq")
    p.add_argument("--temperature", type=float, default=None, help="1 by default; 0 = greedy")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--beam-width", type=int, default=1,
                   help="beam search with this many hypotheses (sequence-to-sequence models; 1 = sample)")
    p.add_argument("--cond", type=int, default=None, help="class/speaker id for a conditioned model")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", help="output file (.wav for audio; text models print when omitted)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    return p.parse_args(argv)


@contextmanager
def _user_file(what: str):
    """An OSError on a file the user named is their input (missing, unreadable, a folder): one line."""
    try:
        yield
    except OSError as e:
        if e.strerror and e.filename is not None and str(e.filename) in what:
            raise UserError(f"{what}: {e.strerror[:1].lower()}{e.strerror[1:]}") from None
        raise UserError(f"{what}: {one_line(e)}") from None


def _check_flags(args: argparse.Namespace) -> SamplingConfig:
    """Everything that needs no model, checked before the (slow) model load."""
    if args.beam_width < 1:
        raise UserError(f"--beam-width must be 1 or more, got {args.beam_width}")
    if args.beam_width > 1:
        given = [f for f, v in (("--temperature", args.temperature), ("--top-k", args.top_k),
                                ("--top-p", args.top_p), ("--seed", args.seed)) if v is not None]
        if given:
            raise UserError(f"{', '.join(given)}: beam search is deterministic and takes no sampling options")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        raise UserError(f"--seed must be a whole number from 0 to {MAX_SEED}, got {args.seed}")
    if args.out:
        out = Path(args.out)
        if out.is_dir():
            raise UserError(f"--out {out} is a folder; give a file name")
        if not out.resolve().parent.is_dir():
            raise UserError(f"--out {out}: the folder {out.parent} does not exist")
    parse_device(args.device)
    return SamplingConfig(1.0 if args.temperature is None else args.temperature, args.top_k, args.top_p)


def _new_tokens(args, model) -> int:
    spec = model.tokens
    if args.seconds is not None:
        if spec.kind != "audio":
            raise UserError("--seconds is for audio models; use --tokens for text")
        if not math.isfinite(args.seconds) or args.seconds <= 0:
            raise UserError(f"--seconds must be a positive number, got {args.seconds}")
        if args.seconds * spec.sample_rate > MAX_NEW_TOKENS:
            raise UserError(f"--seconds must be at most {MAX_NEW_TOKENS / spec.sample_rate:g} for this "
                            f"{spec.sample_rate} Hz model, got {args.seconds:g}")
        return max(1, round(args.seconds * spec.sample_rate))
    if args.tokens is None:
        return spec.sample_rate if spec.kind == "audio" else DEFAULT_TEXT_TOKENS
    if args.tokens <= 0:
        raise UserError(f"--tokens must be positive, got {args.tokens}")
    return args.tokens


def _is_seq2seq(model) -> bool:
    return hasattr(model, "encode")  # the family that reads a source (engine.models.seq2seq)


def _prompt(args, model) -> torch.Tensor | None:
    spec = model.tokens
    if _is_seq2seq(model):
        if args.prompt_text is not None or args.prompt_audio is not None:
            raise UserError(f"{Path(args.model).name} is a sequence-to-sequence model: give the text to rewrite "
                            "with --source, not a prompt")
        if not args.source:
            raise UserError(f"{Path(args.model).name} is a sequence-to-sequence model: give the text to rewrite "
                            "with --source (e.g. --source \"3 March 2021\")")
        return None
    if args.source is not None:
        raise UserError(f"--source is for sequence-to-sequence models; {Path(args.model).name} is a {spec.kind} "
                        f"model of the {model.family} family (use --prompt-{spec.kind})")
    if args.beam_width > 1:
        raise UserError(f"--beam-width is for sequence-to-sequence models; {Path(args.model).name} is a {spec.kind} "
                        f"model of the {model.family} family")
    if args.prompt_audio is not None:
        if spec.kind != "audio":
            raise UserError("--prompt-audio needs an audio model; this one is a text model")
        with _user_file(f"--prompt-audio {args.prompt_audio}"):
            wave, _ = audio.read_audio(args.prompt_audio, spec.sample_rate, keep_last_seconds=audio.PROMPT_SECONDS)
            length = audio.audio_seconds(args.prompt_audio)
        if length > audio.PROMPT_SECONDS:
            print(f"note: the audio prompt is {length:.1f} s long; only its last {audio.PROMPT_SECONDS:g} s are "
                  "used", file=sys.stderr)
        return audio.encode_audio(wave, spec)
    if args.prompt_text is not None:
        if spec.kind != "text":
            raise UserError("--prompt-text needs a text model; this one is an audio model")
        ids = text.encode(args.prompt_text)
        if ids and ids[0] != spec.start_id:  # as in training: a names model sees each name after a newline
            ids = [spec.start_id] + ids
        return torch.tensor(ids, dtype=torch.long) if ids else None
    return None


def _cond(args, model):
    """The class id tensor for a class-conditioned model, the source for seq2seq, else None."""
    if _is_seq2seq(model):
        if args.cond is not None:
            raise UserError("--cond is for class-conditioned models; a sequence-to-sequence model takes --source")
        return args.source
    classes = model.num_classes
    name = Path(args.model).name
    if not classes:
        if args.cond is not None:
            raise UserError(f"--cond: {name} is not class-conditioned; leave --cond out")
        return None
    labels = (read_meta(args.model).get("training") or {}).get("label_names") or []
    named = len(labels) == classes and any(str(label) != str(i) for i, label in enumerate(labels))
    shown = ", ".join(f"{i}={label}" for i, label in enumerate(labels)) if named else ""
    if args.cond is None:
        raise UserError(f"--cond: {name} is conditioned on {classes} classes; pick one of the class ids "
                        f"0..{classes - 1}" + (f" ({shown})" if shown else ""))
    if not 0 <= args.cond < classes:
        raise UserError(f"--cond must be one of {name}'s class ids 0..{classes - 1}, got {args.cond}")
    return torch.tensor([args.cond])


def run(args: argparse.Namespace) -> None:
    sampling = _check_flags(args)
    with _user_file(f"--model {args.model}"):
        model = load_model(args.model, device=args.device)
    spec = model.tokens
    if args.out and spec.kind == "audio" and Path(args.out).suffix.lower() != ".wav":
        raise UserError(f"--out for an audio model must end in .wav, got {args.out}")
    if args.resynth is not None or (model.frame_features is not None and not hasattr(model, "generate_stream")):
        _resynth(args, model, sampling)
        return
    n = _new_tokens(args, model)
    prompt = _prompt(args, model)
    cond = _cond(args, model)
    if args.beam_width > 1:
        best = beam_search(model, cond, beam_width=args.beam_width, max_new_tokens=n, batch_size=1)[0]
        _write_text(args, torch.tensor(best, dtype=torch.long))
        return
    chunks = []
    decoder = text.StreamDecoder()
    stream = spec.kind == "text" and not args.out
    with tqdm(total=n, unit="tok", disable=None, file=sys.stderr) as bar:
        for chunk in generate(model, prompt, max_new_tokens=n, temperature=sampling.temperature,
                              top_k=sampling.top_k, top_p=sampling.top_p, cond=cond, seed=args.seed,
                              chunk_size=1024 if spec.kind == "audio" else 32):
            chunks.append(chunk[0])
            bar.update(chunk.shape[1])
            if stream:  # special ids (a seq2seq end id) are dropped by the decoder
                bar.clear()
                print(decoder.feed(chunk[0].tolist()), end="", flush=True)
    ids = torch.cat(chunks)
    if spec.kind == "audio":
        out = args.out or "generated.wav"
        with _user_file(f"--out {out}"):
            audio.write_wav(out, audio.AudioDecoder(spec, prompt)(ids), spec.sample_rate)
        print(f"wrote {len(ids) / spec.sample_rate:.2f} s of audio to {out}", file=sys.stderr)
    elif stream:
        print(decoder.flush())
    else:
        _write_text(args, ids)


def _resynth(args, model, sampling: SamplingConfig) -> None:
    """Copy-synthesis: the vocoder renders the clip from its frames, as long as the clip."""
    name = Path(args.model).name
    if args.resynth is None:
        raise UserError(f"{name} is a vocoder (it plays frames): give it a clip to re-speak with --resynth CLIP")
    if args.seconds is not None or args.tokens is not None or args.cond is not None:
        raise UserError("--resynth renders the whole clip from its frames: leave out --seconds, --tokens and --cond")
    spec = model.tokens
    with _user_file(f"--resynth {args.resynth}"):
        wave, _ = audio.read_audio(args.resynth, spec.sample_rate)
    wave = torch.from_numpy(wave)
    resynthesis.clip_frames(model, wave)  # refuse a clip or model that does not fit before any work
    chunks = []
    with tqdm(total=len(wave), unit="sample", disable=None, file=sys.stderr) as bar:
        for chunk in resynthesis.resynthesize(model, wave, sampling.temperature, sampling.top_k, sampling.top_p,
                                              seed=args.seed):
            chunks.append(chunk[0])
            bar.update(chunk.shape[1])
    out = args.out or "resynthesized.wav"
    with _user_file(f"--out {out}"):
        audio.write_wav(out, audio.decode_audio(torch.cat(chunks), spec), spec.sample_rate)
    print(f"wrote {len(wave) / spec.sample_rate:.2f} s re-spoken from {args.resynth} to {out}", file=sys.stderr)


def _write_text(args, ids: torch.Tensor) -> None:
    """To --out (and a note on stderr), else to stdout."""
    if not args.out:
        print(text.decode(ids.tolist()))
        return
    with _user_file(f"--out {args.out}"):
        Path(args.out).write_text(text.decode(ids.tolist()), encoding="utf-8")
    print(f"wrote {len(ids)} bytes of text to {args.out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done, 2 a user error (one line on stderr), 130 interrupted; a bug raises."""
    args = parse_args(argv)
    try:
        run(args)
    except UserError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
