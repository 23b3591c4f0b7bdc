"""The one training loss (trainers.losses): for every family it equals an independently computed cross-entropy
over the positions that should count; engine knows nothing of trainers; the cross-entropy is written once."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import engine
from engine.models.rnn import norm_stabilizer_term
from engine.models.seq2seq import VOCAB, pad_sources
from trainers.data import Batch
from trainers.distill import distillation_loss
from trainers.losses import context_mask, detach_state, next_token_loss

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(vocab: int, rows: int = 4, t: int = 20, **kw) -> Batch:
    g = torch.Generator().manual_seed(3)
    seq = torch.randint(0, vocab, (rows, t + 1), generator=g)
    mask = torch.ones(rows, t, dtype=torch.bool)
    mask[1, t - 5:] = False  # right padding on one row
    fresh = torch.zeros(rows, dtype=torch.bool)
    fresh[0] = True  # one row starts its sequence: it counts in full
    return Batch(seq[:, :-1], seq[:, 1:], mask, fresh, **kw)


def _expected(logits: torch.Tensor, batch: Batch, positions: torch.Tensor) -> tuple[float, int]:
    """Summed nats over `positions` [B, T] (bool), one target at a time."""
    total = 0.0
    for b, t in positions.nonzero().tolist():
        total += F.cross_entropy(logits[b, t].float().unsqueeze(0), batch.y[b, t].unsqueeze(0)).item()
    return total, int(positions.sum())


def _field_positions(batch: Batch, field: int | None) -> torch.Tensor:
    t = torch.arange(batch.x.shape[1])
    if not field:
        return batch.mask.clone()
    return batch.mask & (batch.fresh[:, None] | (t[None, :] >= field - 1))


FAMILIES = {
    "wavenet": dict(blocks=1, layers_per_block=3, residual_channels=8, gate_channels=8, skip_channels=8),
    "hierarchical": dict(n_embd=4, levels=2, widths=[8]),
    "bytenet": dict(d=4, sets=1, set_size=3),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_default_loss_counts_targets_with_a_full_receptive_field(family):
    torch.manual_seed(0)
    model = engine.build_model(family, **FAMILIES[family]).train()
    batch = _batch(model.tokens.vocab_size)
    out = next_token_loss(model, batch)
    positions = _field_positions(batch, model.receptive_field)
    assert 0 < positions.sum() < batch.mask.sum()  # the field really cuts targets out
    want, count = _expected(model(batch.x), batch, positions)
    assert int(out.count) == count and out.penalties == {} and out.state is None
    assert out.nats_sum.item() == pytest.approx(want, rel=1e-5)


def test_bytenet_subbatch_norm_leaves_out_the_auxiliary_rows():
    torch.manual_seed(0)
    model = engine.build_model("bytenet", d=4, sets=1, set_size=3, norm="subbatch").train()
    batch = _batch(256)
    out = next_token_loss(model, batch)
    positions = _field_positions(batch, model.receptive_field)
    positions[3:] = False  # one auxiliary row of four
    want, count = _expected(model(batch.x), batch, positions)
    field = model.receptive_field - 1
    assert int(out.count) == count == 20 + (15 - field) + (20 - field)  # rows 0 (fresh), 1 (padded), 2
    assert out.nats_sum.item() == pytest.approx(want, rel=1e-5)
    out.mean.backward()


def test_rnn_norm_stabilizer_is_added_per_target_and_reported_apart():
    torch.manual_seed(0)
    model = engine.build_model("rnn", cell="gru", hidden_size=8, layers=2, norm_stabilizer_hidden=2.0,
                               norm_stabilizer_logits=0.5).train()
    batch = _batch(256)
    out = next_token_loss(model, batch)
    logits, hiddens = model.forward_with_hiddens(batch.x)
    ce, count = _expected(logits, batch, batch.mask)  # unbounded context: every real target counts
    hidden = 2.0 * torch.stack([norm_stabilizer_term(h) for h in hiddens]).mean().item()
    logit = 0.5 * norm_stabilizer_term(logits).item()
    assert int(out.count) == count
    assert out.penalties == pytest.approx({"norm_stabilizer_hidden": hidden, "norm_stabilizer_logits": logit},
                                          rel=1e-5)
    assert out.nats_sum.item() == pytest.approx(ce + (hidden + logit) * count, rel=1e-5)
    model.eval()
    plain = next_token_loss(model, batch)
    assert plain.penalties == {} and plain.nats_sum.item() == pytest.approx(ce, rel=1e-5)
    assert next_token_loss(model.train(), batch, regularized=False).nats_sum.item() == pytest.approx(ce, rel=1e-5)


@pytest.mark.parametrize("decoder", ["rnn", "bytenet"])
def test_seq2seq_is_conditioned_on_the_masked_source(decoder):
    torch.manual_seed(0)
    model = engine.build_model("seq2seq", encoder="rnn", decoder=decoder, norm="subbatch", d=4, set_size=3,
                               hidden_size=6).train()
    src, src_mask = pad_sources(["2020", "1 May 2021", "x", "yz"])
    batch = _batch(VOCAB, t=6, src=src, src_mask=src_mask)
    out = next_token_loss(model, batch)
    positions = batch.mask.clone()
    if decoder == "bytenet":
        positions[3:] = False  # sub-batch norm's auxiliary row
    want, count = _expected(model(batch.x, model.encode(src, src_mask)), batch, positions)
    assert int(out.count) == count and out.nats_sum.item() == pytest.approx(want, rel=1e-5)
    if decoder == "rnn":  # the source's padding is masked, not read as byte 0
        unmasked, _ = _expected(model(batch.x, model.encode(src)), batch, positions)
        assert unmasked != pytest.approx(want, rel=1e-6)


def test_samplernn_carries_its_state_between_chunks_and_resets_flagged_rows():
    torch.manual_seed(0)
    model = engine.build_model("samplernn", n_classes=16, frame_sizes=[4, 2], dim=8, embed_dim=4, mlp_dim=8,
                               global_cond_classes=3).eval()
    g = torch.Generator().manual_seed(1)
    a, b = torch.randint(0, 16, (1, 17), generator=g), torch.randint(0, 16, (1, 9), generator=g)
    cond, ones = torch.tensor([1, 2]), torch.ones(2, 8, dtype=torch.bool)
    no = torch.zeros(2, dtype=torch.bool)
    with torch.no_grad():
        first = next_token_loss(model, Batch(torch.cat([a[:, :8], b[:, :8]]), torch.cat([a[:, 1:9], b[:, 1:9]]),
                                             ones, no, cond, reset=torch.tensor([True, True])))
        second = next_token_loss(model, Batch(torch.cat([a[:, 8:16], b[:, :8]]), torch.cat([a[:, 9:17], b[:, 1:9]]),
                                              ones, no, cond, reset=torch.tensor([False, True])),
                                 detach_state(first.state))
        want_a = F.cross_entropy(model(a[:, :16], cond[:1])[0, 8:], a[0, 9:17], reduction="sum")
        want_b = F.cross_entropy(model(b[:, :8], cond[1:])[0], b[0, 1:9], reduction="sum")
    assert int(second.count) == 16 and second.nats_sum.item() == pytest.approx((want_a + want_b).item(), rel=1e-5)
    assert second.state is not None


def test_distillation_reads_the_same_rows_and_penalties_as_the_plain_loss():
    """Weight 0 is the plain loss for any non-stateful family: sub-batch rows and RNN penalties included."""
    torch.manual_seed(0)
    for family, cfg in [("bytenet", dict(d=4, sets=1, set_size=3, norm="subbatch")),
                        ("rnn", dict(cell="gru", hidden_size=8, layers=1, norm_stabilizer_hidden=1.0))]:
        student = engine.build_model(family, **cfg).train()
        teacher = engine.build_model(family, **cfg).eval()
        batch = _batch(256)
        plain = next_token_loss(student, batch)
        mixed = distillation_loss([teacher], weight=0.0)(student, batch)
        assert int(mixed.count) == int(plain.count)
        assert mixed.nats_sum.item() == pytest.approx(plain.nats_sum.item(), rel=1e-5)
        assert mixed.penalties["distill"] == pytest.approx(0.0, abs=1e-5)
        assert {k: v for k, v in mixed.penalties.items() if k != "distill"} == pytest.approx(plain.penalties)


def test_context_mask_is_the_trainers_rule():
    batch = _batch(256)
    assert torch.equal(context_mask(batch, 8), _field_positions(batch, 8))
    assert torch.equal(context_mask(batch, None), batch.mask)


# ---- the layering: engine does not know trainers, and the cross-entropy is written once --------------------------
BATCH_FIELDS = ("x", "y", "mask", "fresh", "cond", "src", "src_mask", "reset")


def _py_files(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (REPO / f).rglob("*.py"))


def test_engine_neither_imports_trainers_nor_reads_a_batch():
    read_batch = re.compile(r"\bbatch\.(%s)\b" % "|".join(BATCH_FIELDS))
    offenders = []
    for path in _py_files("engine"):
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            offenders += [f"{path.relative_to(REPO)} imports {n}" for n in names if n.split(".")[0] == "trainers"]
        offenders += [f"{path.relative_to(REPO)} reads {m.group(0)}" for m in read_batch.finditer(source)]
    assert not offenders


def test_the_cross_entropy_is_written_once():
    calls = []
    for path in _py_files("engine", "trainers"):
        source = path.read_text(encoding="utf-8")
        calls += [f"{path.relative_to(REPO)}:{source.count('cross_entropy(')}" for _ in [0]
                  if "cross_entropy(" in source]
    assert calls == ["trainers/losses.py:1"], calls
