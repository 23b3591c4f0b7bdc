"""seq2seq family and beam search: protocol invariant for every encoder/decoder pairing, decoder causality
(sub-batch norm in train and eval mode), dynamic unfolding, the EOS length cap, padding, beam search."""

import pytest
import torch

import engine
from engine.beam import beam_search, reorder_state
from engine.layers.bytenet import SubBatchNorm
from engine.models.seq2seq import BOS_ID, EOS_ID, VOCAB, pad_sources
from protocol_checks import assert_prime_then_step_matches, assert_step_matches_forward

PAIRINGS = [("bytenet", "bytenet", "additive"), ("bytenet", "rnn", "additive"), ("bytenet", "rnn", "dot"),
            ("rnn", "bytenet", "additive"), ("rnn", "rnn", "additive"), ("rnn", "rnn", "dot")]


def tiny(encoder="bytenet", decoder="rnn", attention="additive", **kw):
    kw = {"d": 4, "set_size": 3, "hidden_size": 6, "cell": "gru", **kw}
    model = engine.build_model("seq2seq", encoder=encoder, decoder=decoder, attention=attention, **kw)
    for m in model.modules():
        if isinstance(m, SubBatchNorm):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("encoder,decoder,attention", PAIRINGS)
def test_step_matches_forward_and_prime(encoder, decoder, attention):
    model = tiny(encoder, decoder, attention)
    cond = model.encode(["a source", "xy"])
    x = torch.randint(0, VOCAB, (2, 9))
    assert_step_matches_forward(model, x, cond)
    assert_prime_then_step_matches(model, x, split=4, cond=cond)


@pytest.mark.parametrize("block", ["residual", "multiplicative"])
@pytest.mark.parametrize("norm", ["layer", "subbatch", "none"])
def test_bytenet_decoder_blocks_and_norms(block, norm):
    model = tiny("rnn", "bytenet", block=block, norm=norm)
    cond = model.encode(["hello there", "abc"])
    x = torch.randint(0, VOCAB, (2, 8))
    assert_step_matches_forward(model, x, cond)
    assert_prime_then_step_matches(model, x, split=5, cond=cond)


@pytest.mark.parametrize("norm", ["layer", "subbatch"])
@pytest.mark.parametrize("train", [False, True])
def test_bytenet_decoder_causal(norm, train):
    model = tiny("bytenet", "bytenet", norm=norm).train(train)
    cond = model.encode(["one", "two", "three", "four"])
    rows = model.loss_rows(4)
    x = torch.randint(0, VOCAB, (4, 10))
    y = x.clone()
    y[rows, 6:] = torch.randint(0, VOCAB, y[rows, 6:].shape)
    with torch.no_grad():
        a, b = model(x, cond)[rows], model(y, cond)[rows]
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-6)


def test_dynamic_unfolding_columns():
    model = tiny("bytenet", "bytenet", unfold_a=0.5, unfold_b=1.0)
    enc = model.encode(["abcdefgh", "ab"])  # |t̂| = ceil(0.5*8+1) = 5 and ceil(0.5*2+1) = 2
    assert model.unfolded_length(enc.lengths).tolist() == [5, 2]
    cols = model.decoder.context(enc, model.unfolded_length(enc.lengths))["columns"]
    nonzero = cols.abs().sum(-1) > 0
    assert nonzero[0].tolist() == [True] * 5 + [False] * 3  # cut at |t̂| < |s|
    assert nonzero[1].tolist() == [True, True] + [False] * 6  # |t̂| = |s|: padding stays zero


@pytest.mark.parametrize("encoder", ["bytenet", "rnn"])
def test_padding_does_not_change_a_row(encoder):
    model = tiny(encoder, "rnn")
    x = torch.randint(0, VOCAB, (1, 5))
    with torch.no_grad():
        alone = model(x, model.encode(["hi"]))
        padded = model(x.expand(2, -1), model.encode(["hi", "a much longer source"]))[:1]
    assert torch.allclose(alone, padded, atol=1e-5)


def test_eos_is_forced_after_cap_and_generation_stops():
    model = tiny("rnn", "rnn", unfold_a=1.0, length_margin=2)
    enc = model.encode(["abc"])  # |t̂| = 3, forced EOS from position 5
    ids = engine.generate_all(model, None, max_new_tokens=50, cond=enc, seed=0)
    assert ids.shape[1] <= 6 and ids[0, -1].item() == EOS_ID
    with torch.no_grad():
        logits = model(torch.randint(0, VOCAB, (1, 8)), enc)
    assert torch.isinf(logits[0, 5:, :EOS_ID]).all() and torch.isfinite(logits[0, 5:, EOS_ID]).all()
    assert torch.isfinite(logits[0, :5]).all()
    assert model.tokens.eos_id == EOS_ID and model.tokens.start_id == BOS_ID


@pytest.mark.parametrize("decoder", ["bytenet", "rnn"])
def test_beam_width_one_is_greedy(decoder):
    model = tiny("bytenet", decoder)
    enc = model.encode(["hello"])
    greedy = engine.generate_all(model, None, max_new_tokens=12, temperature=0, cond=enc)[0].tolist()
    greedy = greedy[:greedy.index(EOS_ID)] if EOS_ID in greedy else greedy
    assert beam_search(model, enc, beam_width=1, max_new_tokens=12) == [greedy]


def _logprob(model, enc, ids):
    x = torch.tensor([[BOS_ID, *ids]])
    y = torch.tensor([[*ids, EOS_ID]])
    with torch.no_grad():
        return torch.log_softmax(model(x, enc), -1).gather(-1, y.unsqueeze(-1)).sum().item()


def test_wider_beam_scores_at_least_greedy():
    torch.manual_seed(5)
    model = tiny("rnn", "rnn", unfold_a=1.0, length_margin=1)
    enc = model.encode(["abcd"])
    g = beam_search(model, enc, beam_width=1, max_new_tokens=8, length_penalty=0.0)[0]
    b = beam_search(model, enc, beam_width=6, max_new_tokens=8, length_penalty=0.0)[0]
    assert _logprob(model, enc, b) >= _logprob(model, enc, g) - 1e-4


def test_beam_search_batches_rows_independently():
    model = tiny("bytenet", "rnn")
    both = beam_search(model, model.encode(["one", "second"]), beam_width=3, max_new_tokens=6)
    first = beam_search(model, model.encode(["one"]), beam_width=3, max_new_tokens=6)
    assert both[0] == first[0]


def test_reorder_state_selects_batch_rows():
    state = {"a": torch.arange(6).reshape(3, 2), "t": 4, "other": torch.zeros(5)}
    out = reorder_state(state, torch.tensor([2, 2, 0]), 3)
    assert out["a"].tolist() == [[4, 5], [4, 5], [0, 1]] and out["t"] == 4 and out["other"].shape == (5,)


def test_training_forward_leaves_out_aux_rows_and_round_trip(tmp_path):
    model = tiny("rnn", "bytenet", norm="subbatch").train()
    src, src_mask = pad_sources(["2020", "1 May 2021", "x", "yz"])
    x = torch.randint(0, 256, (4, 6))
    out = model.training_forward(x, model.encode(src, src_mask))
    assert out.rows == slice(0, 3) and out.logits.shape == (4, 6, VOCAB)  # one auxiliary row of four
    out.logits[out.rows].sum().backward()
    model.eval()
    engine.save_model(model, tmp_path / "m")
    loaded = engine.load_model(tmp_path / "m")
    assert loaded.translate(["abc"], beam_width=2, max_len=5) == model.translate(["abc"], beam_width=2, max_len=5)
