"""Reusable checks of the protocol invariant (docs/DESIGN.md), for any family's tests to call."""
from __future__ import annotations

import torch

TOL = 1e-4


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest |a - b|; -inf logits (bytes outside a model's alphabet) must sit in the same places in both."""
    assert a.shape == b.shape
    inf = torch.isinf(a)
    assert torch.equal(inf, torch.isinf(b)) and torch.equal(a[inf], b[inf]), "-inf logits differ"
    return (a[~inf] - b[~inf]).abs().max().item() if (~inf).any() else 0.0


@torch.no_grad()
def stepped_logits(model, x: torch.Tensor, cond=None) -> torch.Tensor:
    state = model.init_state(x.shape[0], cond)
    out = []
    for t in range(x.shape[1]):
        logits, state = model.step(x[:, t], state)
        out.append(logits)
    return torch.stack(out, dim=1)


@torch.no_grad()
def assert_step_matches_forward(model, x: torch.Tensor, cond=None) -> None:
    model.eval()
    ref = model(x, cond)
    got = stepped_logits(model, x, cond)
    err = max_diff(got, ref)
    assert err <= TOL, f"step-by-step logits differ from forward by {err}"


@torch.no_grad()
def assert_prime_then_step_matches(model, x: torch.Tensor, split: int, cond=None) -> None:
    """prime on x[:, :split], then step through the rest == stepping through all of x."""
    model.eval()
    ref = stepped_logits(model, x, cond)
    state = model.init_state(x.shape[0], cond)
    logits, state = model.prime(x[:, :split], state)
    err = max_diff(logits, ref[:, split - 1])
    assert err <= TOL, f"prime's last logits differ from stepping by {err}"
    for t in range(split, x.shape[1]):
        logits, state = model.step(x[:, t], state)
        err = max_diff(logits, ref[:, t])
        assert err <= TOL, f"step after prime differs at t={t} by {err}"


@torch.no_grad()
def assert_causal(model, x: torch.Tensor, t: int, cond=None, vocab: int | None = None) -> None:
    """Changing inputs after position t never changes logits at positions <= t."""
    model.eval()
    vocab = vocab or model.tokens.vocab_size
    y = x.clone()
    y[:, t + 1:] = torch.randint(0, vocab, y[:, t + 1:].shape)
    a, b = model(x, cond), model(y, cond)
    assert torch.allclose(a[:, :t + 1], b[:, :t + 1], atol=1e-6)
