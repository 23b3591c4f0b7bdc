"""Streaming generation: the cached path (`generate`) and the reference recompute path (`generate_naive`).

Both share `engine.sampling`: the same seed draws the same uniforms row for row, so they produce the same ids.
`generate` runs the compiled loop of `engine.fast` where it serves the model (backend="auto", the default) and the
eager `step` loop otherwise; both give the same ids for the same seed.
`generate` primes the model's state with the prompt in one pass, then calls `step` once per token: O(1) in the
receptive field.  `generate_naive` recomputes `forward` over the last `receptive_field` tokens for every new
token, the O(2^L) method the Fast WaveNet paper starts from.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from .errors import UserError
from .protocol import AutoregressiveModel
from .sampling import RandomStream, SamplingConfig, sample

MAX_NEW_TOKENS = 10**8
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes 64-bit seeds; the app's seed box has the same range
BACKENDS = ("auto", "eager", "fast")


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Eval mode for the block, then every submodule's own train/eval flag back, however the block ends
    (finished, a generator closed early, or an exception): generating from a model mid-training leaves it
    training."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def _as_prompt(model: AutoregressiveModel, prompt, batch_size: int | None) -> torch.Tensor:
    """Prompt as LongTensor [B, T] on the model's device; no prompt means the family's start id."""
    vocab = model.tokens.vocab_size
    if prompt is None or (not isinstance(prompt, torch.Tensor) and len(prompt) == 0) or (
            isinstance(prompt, torch.Tensor) and prompt.numel() == 0):
        prompt = torch.full((batch_size or 1, 1), model.tokens.start_id, dtype=torch.long)
    prompt = torch.as_tensor(prompt, dtype=torch.long)
    if prompt.dim() == 1:
        prompt = prompt.unsqueeze(0)
    if prompt.dim() != 2:
        raise ValueError(f"prompt must be [T] or [B, T] ids, got shape {tuple(prompt.shape)}")
    if batch_size is not None and batch_size != prompt.shape[0]:
        if prompt.shape[0] != 1:
            raise ValueError(f"prompt has batch {prompt.shape[0]} but batch_size={batch_size}")
        prompt = prompt.expand(batch_size, -1)
    if prompt.min() < 0 or prompt.max() >= vocab:
        raise UserError(f"prompt ids must be in 0..{vocab - 1}")
    return prompt.to(model.device)


def _check_length(max_new_tokens: int, chunk_size: int) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or not 0 < max_new_tokens <= MAX_NEW_TOKENS:
        raise UserError(f"max_new_tokens must be a whole number in 1..{MAX_NEW_TOKENS}, got {max_new_tokens!r}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive whole number, got {chunk_size!r}")


def _check_seed(seed: int | None) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        raise UserError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")


def _chunks(next_token, max_new_tokens: int, chunk_size: int, eos_id: int | None) -> Iterator[torch.Tensor]:
    """Collect tokens into chunks; with an end-of-sequence id, rows that ended keep emitting it and the
    generation stops once every row has ended."""
    buf: list[torch.Tensor] = []
    done = None
    for i in range(max_new_tokens):
        ids = next_token(i)
        if eos_id is not None:
            done = (ids == eos_id) if done is None else done | (ids == eos_id)
            ids = torch.where(done, torch.full_like(ids, eos_id), ids)
        buf.append(ids)
        if len(buf) == chunk_size or i == max_new_tokens - 1 or (done is not None and bool(done.all())):
            yield torch.stack(buf, dim=1)
            buf = []
            if done is not None and bool(done.all()):
                return


def _fast_runner(model: AutoregressiveModel, state: Any, batch_size: int, cfg: SamplingConfig, backend: str):
    """The compiled runner (engine.fast) when `backend` allows it and it serves this model, else None."""
    if backend == "eager":
        return None
    from . import fast
    reason = fast.why_not(model)
    if reason is None:
        try:
            return fast.FastRunner(model, state, batch_size, cfg)
        except (fast.Unsupported, RuntimeError) as exc:  # e.g. a state layout the program does not expect
            reason = str(exc)
    if backend == "fast":
        raise UserError(f"backend='fast' cannot serve this model: {reason}")
    return None


def _fast_chunks(runner, logits: torch.Tensor, rng: RandomStream, max_new_tokens: int, chunk_size: int,
                 eos_id: int | None) -> Iterator[torch.Tensor]:
    """The chunks `_chunks` would yield, each made by one compiled call (end-of-sequence rules applied after)."""
    done = None
    made = 0
    while made < max_new_tokens:
        n = min(chunk_size, max_new_tokens - made)
        ids = runner.run(n, rng.take(n), logits=logits if made == 0 else None).to(logits.device)
        made += n
        if eos_id is not None:
            hit = torch.cumsum((ids == eos_id).to(torch.int32), dim=1) > 0
            if done is not None:
                hit |= done.unsqueeze(1)
            ids = torch.where(hit, torch.full_like(ids, eos_id), ids)
            done = hit[:, -1]
            finished = hit.all(dim=0)
            if bool(finished.any()):
                yield ids[:, :int(finished.nonzero()[0]) + 1]
                return
        yield ids


@torch.inference_mode()
def generate(model: AutoregressiveModel, prompt: torch.Tensor | Sequence[int] | None = None,
             max_new_tokens: int = 256, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, cond: Any = None, seed: int | None = None, chunk_size: int = 256,
             batch_size: int | None = None, backend: str = "auto",
             decode_options: dict[str, Any] | None = None) -> Iterator[torch.Tensor]:
    """Yield chunks of new ids [B, n] as they are made (cached O(1)-per-token path).

    backend: "eager" steps the model in PyTorch; "fast" runs the compiled loop of engine.fast (CPU, float32;
    an error for a model it does not serve); "auto" (default) is "fast" where it applies, else "eager".  Both
    give the same ids for the same seed.  decode_options: keywords for the family's `init_state`, those its
    `model.decode_options` lists (e.g. an RNN's hidden-state averaging `influence`)."""
    if backend not in BACKENDS:
        raise UserError(f"backend must be one of {BACKENDS}, got {backend!r}")
    cfg = SamplingConfig(temperature, top_k, top_p)
    _check_length(max_new_tokens, chunk_size)
    _check_seed(seed)
    with evaluating(model):
        if hasattr(model, "generate_stream"):  # a model that makes its own stream (a two-stage pipeline)
            yield from model.generate_stream(prompt, max_new_tokens, cfg, cond, seed, chunk_size, batch_size,
                                             backend, decode_options or {})
            return
        yield from _generate(model, prompt, max_new_tokens, cfg, cond, seed, chunk_size, batch_size, backend,
                             decode_options)


def _generate(model, prompt, max_new_tokens, cfg, cond, seed, chunk_size, batch_size, backend, decode_options):
    x = _as_prompt(model, prompt, batch_size)
    rng = RandomStream(x.shape[0], seed)
    unknown = set(decode_options or {}) - set(model.decode_options)
    if unknown:
        raise UserError(f"{model.family} takes no decode option {sorted(unknown)}; it takes "
                        f"{sorted(model.decode_options) or 'none'}")
    state = model.init_state(x.shape[0], cond, x.device, **(decode_options or {}))
    logits, state = model.prime(x, state)
    runner = _fast_runner(model, state, x.shape[0], cfg, backend)
    if runner is not None:
        yield from _fast_chunks(runner, logits, rng, max_new_tokens, chunk_size, model.tokens.eos_id)
        return
    box = {"logits": logits, "state": state}

    def next_token(i: int) -> torch.Tensor:
        if i > 0:
            box["logits"], box["state"] = model.step(box["last"], box["state"])
        box["last"] = sample(box["logits"], cfg, rng.next())
        return box["last"]

    yield from _chunks(next_token, max_new_tokens, chunk_size, model.tokens.eos_id)


class TokenStream:
    """A generation continued n tokens at a time, with the same ids as one `generate` call (same seed): a
    pipeline's vocoder waits between calls for the frames its next samples need.  Runs on the fast path where it
    serves the model (the runner keeps its last id between calls), else steps eagerly."""

    def __init__(self, model: AutoregressiveModel, prompt: torch.Tensor, cond: Any, cfg: SamplingConfig,
                 seed: int | None, backend: str = "auto"):
        self.model, self.cfg = model, cfg
        x = _as_prompt(model, prompt, None)
        self.rng = RandomStream(x.shape[0], seed)
        self.state = model.init_state(x.shape[0], cond, x.device)
        self.logits, self.state = model.prime(x, self.state)
        self.runner = _fast_runner(model, self.state, x.shape[0], cfg, backend)
        self.made = 0
        self.last: torch.Tensor | None = None

    def take(self, n: int) -> torch.Tensor:
        """The next n ids [B, n]."""
        if self.runner is not None:
            ids = self.runner.run(n, self.rng.take(n), logits=self.logits if self.made == 0 else None)
        else:
            out = []
            for _ in range(n):
                if self.last is not None:
                    self.logits, self.state = self.model.step(self.last, self.state)
                self.last = sample(self.logits, self.cfg, self.rng.next())
                out.append(self.last)
            ids = torch.stack(out, 1)
        self.made += n
        return ids.to(self.logits.device)


@torch.inference_mode()
def generate_naive(model: AutoregressiveModel, prompt: torch.Tensor | Sequence[int] | None = None,
                   max_new_tokens: int = 256, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None, cond: Any = None, seed: int | None = None, chunk_size: int = 256,
                   batch_size: int | None = None) -> Iterator[torch.Tensor]:
    """The reference: `forward` over the last `receptive_field` tokens for every new token."""
    cfg = SamplingConfig(temperature, top_k, top_p)
    _check_length(max_new_tokens, chunk_size)
    _check_seed(seed)
    with evaluating(model):
        x = _as_prompt(model, prompt, batch_size)
        rng = RandomStream(x.shape[0], seed)
        field = model.receptive_field
        box = {"context": x}

        def next_token(i: int) -> torch.Tensor:
            ctx = box["context"] if field is None else box["context"][:, -field:]
            ids = sample(model.forward(ctx, cond)[:, -1], cfg, rng.next())
            box["context"] = torch.cat([box["context"] if field is None else ctx, ids.unsqueeze(1)], dim=1)
            return ids

        yield from _chunks(next_token, max_new_tokens, chunk_size, model.tokens.eos_id)


def generate_all(model: AutoregressiveModel, *args, naive: bool = False, **kwargs) -> torch.Tensor:
    """Run a generator to the end and return all new ids [B, N] (the model's train/eval mode is restored)."""
    fn = generate_naive if naive else generate
    return torch.cat(list(fn(model, *args, **kwargs)), dim=1)
