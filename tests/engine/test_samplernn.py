"""SampleRNN: the protocol invariant (2 and 3 tiers, GRU and LSTM, with and without conditioning, batch > 1,
prompts ending mid-frame), causality, stateful truncated BPTT, and a checkpoint round trip."""
import itertools

import pytest
import torch
import torch.nn.functional as F

import engine
from protocol_checks import assert_causal, assert_prime_then_step_matches, assert_step_matches_forward

FRAMES = {"2-tier": [4], "3-tier": [4, 2], "4-tier": [8, 4, 2], "rnn": [1]}


def _model(frame_sizes, cell="gru", gc=0, layers=1, **kw):
    torch.manual_seed(len(frame_sizes) * 7 + gc + layers)
    m = engine.build_model("samplernn", n_classes=16, frame_sizes=frame_sizes, dim=8, embed_dim=4, mlp_dim=8,
                           cell=cell, global_cond_classes=gc, rnn_layers=layers, **kw)
    with torch.no_grad():  # learned initial states are zeros at init: make them matter
        for t in m.tiers:
            t.h0.normal_()
    return m


def _cond(gc, batch):
    return torch.randint(0, gc, (batch,)) if gc else None


@pytest.mark.parametrize("tiers,cell,gc", list(itertools.product(["2-tier", "3-tier"], ["gru", "lstm"], [0, 3])))
def test_step_equals_forward_and_prime_mid_frame(tiers, cell, gc):
    model = _model(FRAMES[tiers], cell, gc, layers=2 if cell == "lstm" else 1)
    x, cond = torch.randint(0, 16, (3, 29)), _cond(gc, 3)  # 29: the sequence ends mid-frame
    assert_step_matches_forward(model, x, cond)
    for split in (1, 3, 4, 6, 9):  # prompts that end mid-frame and on a boundary of each tier
        assert_prime_then_step_matches(model, x, split=split, cond=cond)


@pytest.mark.parametrize("tiers", ["4-tier", "rnn"])
def test_other_depths_keep_the_invariant(tiers):
    model = _model(FRAMES[tiers], "gru", 2)
    x, cond = torch.randint(0, 16, (2, 21)), _cond(2, 2)
    assert_step_matches_forward(model, x, cond)
    assert_prime_then_step_matches(model, x, split=5, cond=cond)


@pytest.mark.parametrize("tiers,t", [("2-tier", 0), ("2-tier", 7), ("3-tier", 8), ("3-tier", 13)])
def test_causal(tiers, t):
    model = _model(FRAMES[tiers], "lstm", 3)
    x = torch.randint(0, 16, (2, 24))
    assert_causal(model, x, t=t, cond=_cond(3, 2))


def test_start_is_silence_and_prime_in_pieces_equals_forward():
    """The model's start (documented in the module docstring): a history of P = F_1 samples of the quantized 0.0,
    over which init_state has already run every tier once; priming in two pieces lands on forward's last logits."""
    model = _model([4, 2], "gru").eval()
    P, s = model.history, model.tokens.start_id
    assert P == 4 and s == engine.audio.quantize(torch.tensor(0.0), 16, "linear").item()
    st = model.init_state(2)
    assert st.t == 0 and torch.equal(st.hist, torch.full((2, P), s))
    x = torch.randint(0, 16, (2, 12))
    with torch.no_grad():
        a = model(x)
        _, st = model.prime(x[:, :5], st)
        b, _ = model.prime(x[:, 5:], st)
    assert (a[:, -1] - b).abs().max() < 1e-5


@pytest.mark.parametrize("tiers,cell", [("2-tier", "gru"), ("3-tier", "lstm")])
def test_stateful_tbptt_chunks_equal_one_pass(tiers, cell):
    model = _model(FRAMES[tiers], cell, gc=3)
    x, cond = torch.randint(0, 16, (2, 41)), _cond(3, 2)
    inp, tgt = x[:, :-1], x[:, 1:]
    whole = F.cross_entropy(model(inp, cond).transpose(1, 2), tgt)
    state, parts = None, []
    for lo, hi in [(0, 8), (8, 19), (19, 40)]:  # chunk ends on and off frame boundaries
        logits, state = model.forward_chunk(inp[:, lo:hi], state, cond)
        parts.append(F.cross_entropy(logits.transpose(1, 2), tgt[:, lo:hi], reduction="sum"))
        state = state.detach()
    chunked = sum(parts) / tgt.numel()
    assert abs(whole.item() - chunked.item()) < 1e-5
    chunked.backward()  # the graph is cut between chunks but each chunk still trains, h0 included
    assert model.tiers[0].h0.grad is not None and model.tiers[0].h0.grad.abs().sum() > 0


def test_cached_and_naive_generation_agree_and_checkpoint_round_trips(tmp_path):
    model = _model([4, 2], "gru").eval()
    prompt = torch.randint(0, 16, (2, 7))
    a = engine.generate_all(model, prompt, max_new_tokens=20, seed=5)
    b = engine.generate_all(model, prompt, max_new_tokens=20, seed=5, naive=True)
    assert torch.equal(a, b)
    engine.save_model(model, tmp_path / "m", data="test")
    loaded = engine.load_model(tmp_path / "m")
    assert torch.equal(engine.generate_all(loaded, prompt, max_new_tokens=20, seed=5), a)


def test_config_validation():
    with pytest.raises(ValueError):
        engine.build_model("samplernn", frame_sizes=[8, 3])
    with pytest.raises(ValueError):
        engine.build_model("samplernn", frame_sizes=[2, 4])
    with pytest.raises(ValueError):
        engine.build_model("samplernn", cell="rnn")
    model = _model([4])
    with pytest.raises(ValueError):
        model(torch.zeros(1, 4, dtype=torch.long), cond=torch.tensor([0]))


def test_training_forward_resets_rows_and_matches_separate_runs():
    """The trainer hook: a row flagged `reset` starts afresh while the other row carries its state on."""
    model = _model([4, 2], "lstm", gc=3).eval()
    a, b = torch.randint(0, 16, (1, 17)), torch.randint(0, 16, (1, 9))
    cond = torch.tensor([1, 2])
    with torch.no_grad():
        first = model.training_forward(torch.cat([a[:, :8], b[:, :8]]), cond, None, torch.tensor([True, True]))
        second = model.training_forward(torch.cat([a[:, 8:16], b[:, :8]]), cond, first.state,
                                        torch.tensor([False, True]))
        assert torch.allclose(second.logits[0], model(a[:, :16], cond[:1])[0, 8:], atol=1e-5)
        assert torch.allclose(second.logits[1], model(b[:, :8], cond[1:])[0], atol=1e-5)
    assert second.rows == slice(None) and second.penalties == {}

