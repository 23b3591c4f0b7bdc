"""Hierarchical pair-fusion model: protocol invariant for 1-5 levels, exact context 2^levels, makemore equivalence."""
import pytest
import torch

import engine
from protocol_checks import assert_causal, assert_prime_then_step_matches, assert_step_matches_forward


@pytest.mark.parametrize("levels", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("norm", ["layernorm", "batchnorm"])
def test_step_equals_forward_and_prime(levels, norm):
    widths = [5 + 2 * i for i in range(levels)]  # per-level widths differ
    model = engine.build_model("hierarchical", vocab_size=32, n_embd=6, levels=levels, widths=widths, norm=norm,
                               start_id=3)
    if norm == "batchnorm":  # give the running stats something other than the identity
        model.train()
        with torch.no_grad():
            model(torch.randint(0, 32, (4, 40)))
    x = torch.randint(0, 32, (3, 45))
    assert_step_matches_forward(model, x)
    assert_prime_then_step_matches(model, x, split=levels * 7 + 1)
    assert_causal(model, x, t=20)


@pytest.mark.parametrize("levels", [1, 3, 5])
def test_context_is_exactly_two_to_the_levels(levels):
    model = engine.build_model("hierarchical", vocab_size=16, n_embd=4, levels=levels, widths=[6]).eval()
    n = 2 ** levels
    assert model.receptive_field == n
    x = torch.randint(0, 16, (1, n + 8))
    with torch.no_grad():
        base = model(x)[0, -1]
        y = x.clone()
        y[0, -n] = (y[0, -n] + 1) % 16  # oldest id inside the context: must matter
        assert (model(y)[0, -1] - base).abs().max() > 1e-6
        y = x.clone()
        y[0, : -n] = (y[0, : -n] + 1) % 16  # everything older: must not
        assert (model(y)[0, -1] - base).abs().max() == 0


def test_matches_makemore_non_overlapping_fusion():
    """At the last position, the conv stack computes makemore's FlattenConsecutive(2) + Linear tree."""
    torch.manual_seed(1)
    model = engine.build_model("hierarchical", vocab_size=27, n_embd=5, levels=3, widths=[7, 8, 9]).eval()
    x = torch.randint(0, 27, (2, 8))
    with torch.no_grad():
        want = model(x)[:, -1]
        h = model.embed(x)  # [B, 8, E]
        for level in model.levels:
            B, T, C = h.shape
            pairs = h.reshape(B, T // 2, 2 * C)  # makemore's FlattenConsecutive(2): (older, newer) concatenated
            w = level.conv.weight  # [out, in, 2]: tap 0 sees t - d (older), tap 1 sees t
            lin = torch.cat([w[:, :, 0], w[:, :, 1]], dim=1)
            h = torch.tanh(level.norm(pairs @ lin.T + level.conv.bias))
        got = model.head(h[:, -1])
    assert (got - want).abs().max() < 1e-5


def test_naive_and_cached_generation_agree():
    model = engine.build_model("hierarchical", vocab_size=32, n_embd=6, levels=3, widths=[8], start_id=10)
    a = engine.generate_all(model, [10, 5, 7], max_new_tokens=30, seed=3)
    b = engine.generate_all(model, [10, 5, 7], max_new_tokens=30, seed=3, naive=True)
    assert torch.equal(a, b)


def test_bad_config_and_ids_are_rejected():
    with pytest.raises(ValueError):
        engine.build_model("hierarchical", levels=3, widths=[8, 8])
    with pytest.raises(ValueError):
        engine.build_model("hierarchical", norm="groupnorm")
    model = engine.build_model("hierarchical", vocab_size=128, levels=2, widths=[8])
    with pytest.raises(ValueError):
        model(torch.tensor([[200]]))


def test_start_is_a_context_of_newlines():
    """makemore's scoring: a name is read with the context full of padding ('.' there, the start id here)."""
    model = engine.build_model("hierarchical", vocab_size=32, n_embd=6, levels=3, widths=[8], start_id=10).eval()
    x = torch.randint(0, 32, (2, 9))
    padded = torch.cat([torch.full((2, 7), 10), x], dim=1)
    with torch.no_grad():
        assert (model(x) - model(padded)[:, 7:]).abs().max() < 1e-5


def test_eos_id_ends_each_row():
    model = engine.build_model("hierarchical", vocab_size=32, n_embd=6, levels=2, widths=[8], start_id=10, eos_id=10)
    assert model.tokens.eos_id == 10
    ids = engine.generate_all(model, [10], max_new_tokens=200, seed=0, batch_size=4)
    for row in ids.tolist():  # once a row emits the end id it keeps emitting it
        if 10 in row:
            assert all(i == 10 for i in row[row.index(10):])


def test_alphabet_keeps_rows_only_for_its_bytes():
    """A names model over newline + a-z: 27 rows and outputs instead of 256; ids in and logits out stay bytes."""
    names = [10, *range(97, 123)]
    small = engine.build_model("hierarchical", n_embd=6, levels=3, widths=[8], alphabet=names, eos_id=10)
    full = engine.build_model("hierarchical", n_embd=6, levels=3, widths=[8], eos_id=10)
    assert full.num_parameters() - small.num_parameters() == (256 - 27) * (6 + 8 + 1)
    assert small.tokens.vocab_size == 256 and small.tokens.symbols == names
    x = torch.tensor([names])[:, torch.randint(0, 27, (40,), generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        logits = small(x)
    outside = torch.ones(256, dtype=torch.bool)
    outside[names] = False
    assert torch.isinf(logits[..., outside]).all() and torch.isfinite(logits[..., ~outside]).all()
    assert_step_matches_forward(small.eval(), x)
    assert_prime_then_step_matches(small, x, split=13)
    ids = engine.generate_all(small, [10], max_new_tokens=50, seed=1, batch_size=3)
    assert set(ids.flatten().tolist()) <= set(names)


def test_alphabet_names_what_it_cannot_read():
    model = engine.build_model("hierarchical", n_embd=6, levels=2, widths=[8], alphabet=[10, *range(97, 123)])
    with pytest.raises(ValueError, match=r"'A' \(byte 65\): outside this model's alphabet \(newline, a-z\)"):
        model(torch.tensor([[97, 65, 98]]))
    with pytest.raises(ValueError, match="start/end"):
        engine.build_model("hierarchical", alphabet=[97, 98])  # no newline: it could not start
    with pytest.raises(ValueError, match="filled in by the trainer"):
        engine.build_model("hierarchical", alphabet="data")
