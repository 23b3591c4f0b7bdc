"""RNN family: protocol invariant for every cell, hand-computed JZS1/2/3 and IRNN steps, the norm-stabilizer
formula, hidden-state averaging, and per-layer device placement."""
import pytest
import torch

import engine
from engine.models.rnn import norm_stabilizer_term
from engine.layers.rnn_cells import CELLS, make_cell
from protocol_checks import assert_causal, assert_prime_then_step_matches, assert_step_matches_forward

sig, tanh = torch.sigmoid, torch.tanh


def tiny(cell="lstm", **kw):
    return engine.build_model("rnn", cell=cell, hidden_size=6, layers=2, **kw).eval()


@pytest.mark.parametrize("cell", CELLS)
def test_step_matches_forward_and_prime(cell):
    model = tiny(cell, embed_size=5)
    x = torch.randint(0, 256, (2, 11))
    assert_step_matches_forward(model, x)
    assert_prime_then_step_matches(model, x, split=6)
    assert_causal(model, x, t=4)


def _fixed_cell(kind, size=3):
    cell = make_cell(kind, size, size, irnn_scale=0.5)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.7)
    return cell


def _one_step(cell, x, h):
    pre = tuple(p[:, 0] for p in cell.precompute(x.unsqueeze(1)))
    return cell.recur(pre, (h,))[0]


def _lin(layer, v):  # W v (+ b): written out, not calling the layer
    out = v @ layer.weight.T
    return out + layer.bias if layer.bias is not None else out


def test_jzs1_matches_its_equation():
    c = _fixed_cell("jzs1")
    x, h = torch.randn(2, 3), torch.randn(2, 3)
    z = sig(_lin(c.W_xz, x))
    r = sig(_lin(c.W_xr, x) + _lin(c.W_hr, h))
    expected = tanh(_lin(c.W_hh, r * h) + tanh(x) + c.b_h) * z + h * (1 - z)
    assert torch.allclose(_one_step(c, x, h), expected, atol=1e-6)


def test_jzs2_matches_its_equation():
    c = _fixed_cell("jzs2")
    x, h = torch.randn(2, 3), torch.randn(2, 3)
    z = sig(_lin(c.W_xz, x) + _lin(c.W_hz, h))
    r = sig(x + _lin(c.W_hr, h) + c.b_r)
    expected = tanh(_lin(c.W_hh, r * h) + _lin(c.W_xh, x)) * z + h * (1 - z)
    assert torch.allclose(_one_step(c, x, h), expected, atol=1e-6)


def test_jzs3_matches_its_equation():
    c = _fixed_cell("jzs3")
    x, h = torch.randn(2, 3), torch.randn(2, 3)
    z = sig(_lin(c.W_xz, x) + _lin(c.W_hz, tanh(h)))
    r = sig(_lin(c.W_xr, x) + _lin(c.W_hr, h))
    expected = tanh(_lin(c.W_hh, r * h) + _lin(c.W_xh, x)) * z + h * (1 - z)
    assert torch.allclose(_one_step(c, x, h), expected, atol=1e-6)


def test_irnn_matches_its_equation_and_init():
    fresh = make_cell("irnn", 3, 3, irnn_scale=0.5)
    assert torch.equal(fresh.W_hh.weight, 0.5 * torch.eye(3)) and not fresh.W_xh.bias.any()
    c = _fixed_cell("irnn")
    x, h = torch.randn(2, 3), torch.randn(2, 3)
    expected = torch.relu(_lin(c.W_xh, x) + _lin(c.W_hh, h))
    assert torch.allclose(_one_step(c, x, h), expected, atol=1e-6)


def test_jzs_projects_input_when_sizes_differ():
    for kind in ("jzs1", "jzs2"):
        c = make_cell(kind, 4, 3)
        assert c.x_proj.weight.shape == (3, 4)


def test_norm_stabilizer_formula():
    seq = torch.tensor([[[3.0, 4.0], [0.0, 1.0], [0.0, 2.0]]])  # norms 5, 1, 2
    assert norm_stabilizer_term(seq).item() == pytest.approx(((1 - 5) ** 2 + (2 - 1) ** 2) / 2)
    model = tiny("gru", norm_stabilizer_hidden=0.5, norm_stabilizer_logits=0.25)
    x = torch.randint(0, 256, (2, 7))
    logits, hiddens = model.forward_with_hiddens(x)
    pen = model.norm_stabilizer(hiddens, logits)
    expected_h = 0.5 * sum(norm_stabilizer_term(h) for h in hiddens) / len(hiddens)
    assert torch.allclose(pen["norm_stabilizer_hidden"], expected_h)
    assert torch.allclose(pen["norm_stabilizer_logits"], 0.25 * norm_stabilizer_term(logits))
    assert tiny("gru").norm_stabilizer(hiddens, logits) == {}


@torch.no_grad()
def test_averaging_influence_zero_is_identity_and_nonzero_changes_output():
    model = tiny("lstm")
    x = torch.randint(0, 256, (2, 9))

    def run(influence):
        state = model.init_state(2, influence=influence)
        return torch.stack([model.step(x[:, t], state)[0] for t in range(9)], dim=1)

    assert torch.equal(run(0.0), run(None))
    assert torch.allclose(run(0.0), model(x), atol=1e-5)
    averaged = run(0.5)
    assert torch.allclose(averaged[:, :1], model(x)[:, :1], atol=1e-5)  # first step: mean of one state
    assert not torch.allclose(averaged, model(x), atol=1e-3)
    model.averaging_influence = 0.5  # the decode-time option generate() picks up through init_state
    assert torch.allclose(run(None), averaged)


@torch.no_grad()
def test_averaging_by_hand_single_layer_irnn():
    model = engine.build_model("rnn", cell="irnn", hidden_size=4, layers=1).eval()
    x = torch.randint(0, 256, (1, 3))
    a = 0.3
    cell = model.rnn.cells[0]
    h, outs, hs = torch.zeros(1, 4), [], []
    for t in range(3):
        new = torch.relu(cell.W_xh(model.embed(x[:, t])) + cell.W_hh(h))
        hs.append(new)
        outs.append(model.head(new))
        h = a * torch.stack(hs).mean(0) + (1 - a) * new
    state = model.init_state(1, influence=a)
    got = [model.step(x[:, t], state)[0] for t in range(3)]
    assert torch.allclose(torch.stack(got), torch.stack(outs), atol=1e-6)


@pytest.mark.parametrize("held", [None, [3, 4]])
def test_devices_placement_gives_same_output(held):
    torch.manual_seed(3)
    plain = engine.build_model("rnn", cell="gru", hidden_size=5, layers=4, held_ids=held).eval()
    torch.manual_seed(3)
    placed = engine.build_model("rnn", cell="gru", hidden_size=5, layers=4, devices=["cpu", "cpu"],
                                held_ids=held).eval()
    assert [str(d) for d in placed.rnn.devices] == ["cpu"] * 4
    x = torch.randint(0, 256, (2, 8))
    x[:, 1] = 3
    with torch.no_grad():
        assert torch.equal(plain(x), placed(x))
    assert_step_matches_forward(placed, x)


def test_consecutive_layers_share_a_device():
    from engine.layers.rnn_stack import layer_devices
    assert [str(d) for d in layer_devices(["cpu", "meta"], 4)] == ["cpu", "cpu", "meta", "meta"]
    assert [str(d) for d in layer_devices(["cpu", "meta"], 3)] == ["cpu", "cpu", "meta"]


def test_checkpoint_round_trip(tmp_path):
    model = tiny("jzs2")
    engine.save_model(model, tmp_path / "m")
    loaded = engine.load_model(tmp_path / "m")
    x = torch.randint(0, 256, (1, 6))
    assert torch.allclose(model(x), loaded(x))
    ids = engine.generate_all(loaded, engine.text.encode("em"), max_new_tokens=12, seed=1)
    assert ids.shape == (1, 12)


def test_training_forward_gives_penalties_in_training_only():
    model = tiny("jzs3", norm_stabilizer_hidden=1.0, norm_stabilizer_logits=0.5).train()
    x = torch.randint(0, 256, (2, 6))
    out = model.training_forward(x)
    logits, hiddens = model.forward_with_hiddens(x)
    assert torch.allclose(out.logits, logits)
    assert set(out.penalties) == {"norm_stabilizer_hidden", "norm_stabilizer_logits"}
    want = torch.stack([norm_stabilizer_term(h) for h in hiddens]).mean()
    assert out.penalties["norm_stabilizer_hidden"].item() == pytest.approx(want.item(), rel=1e-5)
    assert out.penalties["norm_stabilizer_logits"].item() == pytest.approx(0.5 * norm_stabilizer_term(logits).item(),
                                                                           rel=1e-5)
    assert out.rows == slice(None) and out.state is None
    assert model.eval().training_forward(x).penalties == {}
    assert not hasattr(model, "last_penalties")  # nothing is written onto the model


def test_names_model_stops_at_newline():
    model = tiny("gru", eos_id=10)
    assert model.tokens.eos_id == 10
    ids = engine.generate_all(model, None, max_new_tokens=40, seed=0, batch_size=3)
    for row in ids.tolist():
        if 10 in row:
            assert all(i == 10 for i in row[row.index(10):])


def test_shipped_names_model():
    from engine.paths import SHIPPED_MODELS
    path = SHIPPED_MODELS / "rnn-names"
    if not path.is_dir():
        pytest.skip("demo model not shipped")
    model = engine.load_model(path)
    ids = engine.generate_all(model, None, max_new_tokens=30, seed=1, batch_size=8)
    names = [engine.text.decode(r).strip() for r in ids.tolist()]
    assert all(n.isalpha() and n.islower() and 2 <= len(n) <= 20 for n in names), names


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_held_ids_keep_the_protocol(cell):
    """Held ids (a class prefix held at every step): step == forward, prime + step == step, causal, with held
    ids at the start, in the middle (a second one replaces the first) and in no row at all."""
    model = tiny(cell, embed_size=5, vocab_size=20, held_ids=[15, 16, 19])
    with torch.no_grad():
        model.held_embed.weight.normal_()  # untrained it is small; make its effect visible
    x = torch.randint(0, 15, (3, 12))
    x[0, 1], x[1, 0], x[1, 6] = 16, 19, 15  # row 2 holds nothing
    assert_step_matches_forward(model, x)
    assert_prime_then_step_matches(model, x, split=4)
    assert_causal(model, x, t=5)


def test_a_held_id_reaches_later_steps_beyond_the_recurrence():
    """With the recurrence's memory cut (the hidden-to-hidden weights zero), the held vector still changes a
    late step's logits; an unheld model forgets its first token."""
    def late_logits(model, first):
        x = torch.tensor([[first] + [3] * 9])
        return model(x)[0, -1]

    for held, differs in ((None, False), ([15, 16], True)):
        torch.manual_seed(0)
        model = engine.build_model("rnn", cell="irnn", hidden_size=6, layers=1, vocab_size=20, held_ids=held).eval()
        with torch.no_grad():
            model.rnn.cells[0].W_hh.weight.zero_()
            if held:
                model.held_embed.weight.normal_()
        assert (not torch.allclose(late_logits(model, 15), late_logits(model, 16))) == differs


@pytest.mark.parametrize("bad", [[], [3, 3], [20], [-1]])
def test_bad_held_ids_are_refused(bad):
    with pytest.raises(engine.UserError, match="held_ids"):
        engine.build_model("rnn", vocab_size=20, held_ids=bad)
