"""Command line generation: `python -m engine.generate --model PATH ... --out FILE`.

Writes a wav for audio models and prints (or writes) text for text models.  Any bad input is one line on
stderr and exit status 2, never a traceback.  (The function `engine.generate` lives in engine/generation.py;
this module is only the CLI.  Importing it would normally rebind the attribute `engine.generate` from the function
to this module, so the module is made callable: `engine.generate(...)` generates either way.)
"""
from __future__ import annotations

import argparse
import math
import sys
import types
from pathlib import Path

import torch
from tqdm import tqdm

from engine import audio, text
from engine.checkpoint import CheckpointError, load_model
from engine.generation import generate
from engine.sampling import SamplingConfig


class CLIError(Exception):
    pass


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + message; one clear line is enough
        self.exit(2, f"error: {message} (see --help)\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = _OneLineParser(prog="python -m engine.generate", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="checkpoint folder")
    prompt = p.add_mutually_exclusive_group()
    prompt.add_argument("--prompt-audio", help="audio file to continue (any rate/format libsndfile reads)")
    prompt.add_argument("--prompt-text", help="seed text to continue")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, help="audio length to generate")
    length.add_argument("--tokens", type=int, help="number of new tokens (samples or bytes)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--cond", type=int, default=None, help="class/speaker id for a conditioned model")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", help="output file (.wav for audio; text models print when omitted)")
    p.add_argument("--device", default="cpu")
    return p.parse_args(argv)


def _new_tokens(args, model) -> int:
    spec = model.tokens
    if args.seconds is not None:
        if spec.kind != "audio":
            raise CLIError("--seconds is for audio models; use --tokens for text")
        if not math.isfinite(args.seconds) or args.seconds <= 0:
            raise CLIError(f"--seconds must be a positive number, got {args.seconds}")
        return max(1, round(args.seconds * spec.sample_rate))
    n = args.tokens if args.tokens is not None else (spec.sample_rate or 200) if spec.kind == "audio" else 200
    if n <= 0:
        raise CLIError(f"--tokens must be positive, got {n}")
    return n


def _prompt(args, model) -> torch.Tensor | None:
    spec = model.tokens
    if args.prompt_audio is not None:
        if spec.kind != "audio":
            raise CLIError("--prompt-audio needs an audio model; this one is a text model")
        wave, _ = audio.read_audio(args.prompt_audio, spec.sample_rate)
        return audio.quantize(wave, spec.vocab_size, spec.quantization)
    if args.prompt_text is not None:
        if spec.kind != "text":
            raise CLIError("--prompt-text needs a text model; this one is an audio model")
        return torch.tensor(text.encode(args.prompt_text), dtype=torch.long) if args.prompt_text else None
    return None


def run(args: argparse.Namespace) -> None:
    SamplingConfig(args.temperature, args.top_k, args.top_p)  # validate before the (slow) model load
    model = load_model(args.model, device=args.device)
    spec = model.tokens
    if args.out and spec.kind == "audio" and Path(args.out).suffix.lower() != ".wav":
        raise CLIError(f"--out for an audio model must end in .wav, got {args.out}")
    n = _new_tokens(args, model)
    prompt = _prompt(args, model)
    cond = torch.tensor([args.cond]) if args.cond is not None else None
    chunks = []
    decoder = text.StreamDecoder()
    with tqdm(total=n, unit="tok", disable=None, file=sys.stderr) as bar:
        for chunk in generate(model, prompt, max_new_tokens=n, temperature=args.temperature, top_k=args.top_k,
                              top_p=args.top_p, cond=cond, seed=args.seed, chunk_size=1024 if spec.kind == "audio" else 32):
            chunks.append(chunk[0])
            bar.update(chunk.shape[1])
            if spec.kind == "text" and not args.out:
                bar.clear()
                print(decoder.feed(chunk[0].tolist()), end="", flush=True)
    ids = torch.cat(chunks)
    if spec.kind == "audio":
        out = args.out or "generated.wav"
        audio.write_wav(out, audio.dequantize(ids, spec.vocab_size, spec.quantization), spec.sample_rate)
        print(f"wrote {len(ids) / spec.sample_rate:.2f} s of audio to {out}", file=sys.stderr)
    elif args.out:
        Path(args.out).write_text(text.decode(ids.tolist()), encoding="utf-8")
        print(f"wrote {len(ids)} bytes of text to {args.out}", file=sys.stderr)
    else:
        print(decoder.flush())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except (CLIError, CheckpointError, audio.AudioError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return generate(*args, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
else:
    sys.modules[__name__].__class__ = _CallableModule
