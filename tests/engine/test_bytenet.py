"""ByteNet LM: protocol invariant for both block types and every norm, causality (sub-batch norm in train and
eval mode), receptive field, checkpoint round trip, and cached == naive generation."""
import pytest
import torch

import engine
from engine.layers.bytenet import SubBatchNorm
from protocol_checks import assert_causal, assert_prime_then_step_matches, assert_step_matches_forward

BLOCKS = ["residual", "multiplicative"]
NORMS = ["layer", "subbatch", "none"]


def tiny(block="residual", norm="layer", **kw):
    model = engine.build_model("bytenet", d=4, sets=1, set_size=3, block=block, norm=norm, **kw)
    for m in model.modules():  # non-trivial running statistics, so eval-mode sub-batch norm is really tested
        if isinstance(m, SubBatchNorm):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("norm", NORMS)
def test_step_matches_forward_and_prime(block, norm):
    model = tiny(block, norm)
    x = torch.randint(0, 256, (2, 17))
    assert_step_matches_forward(model, x)
    assert_prime_then_step_matches(model, x, split=9)
    assert_prime_then_step_matches(model, x, split=1)


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("norm", NORMS)
def test_causal_in_eval(block, norm):
    assert_causal(tiny(block, norm), torch.randint(0, 256, (3, 16)), t=7)


@pytest.mark.parametrize("block", BLOCKS)
def test_subbatch_norm_causal_in_train_mode(block):
    """Training mode: statistics come from the auxiliary rows; the main rows' past never sees their future."""
    model = tiny(block, "subbatch").train()
    x = torch.randint(0, 256, (4, 16))
    rows = model.loss_rows(4)
    assert rows == slice(0, 3)  # one auxiliary row out of 4
    y = x.clone()
    y[rows, 8:] = torch.randint(0, 256, y[rows, 8:].shape)  # change the main rows' future only
    with torch.no_grad():
        a, b = model(x)[rows], model(y)[rows]
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_subbatch_statistics_come_from_aux_rows_only():
    norm = SubBatchNorm(3, aux_fraction=0.5).train()
    x = torch.randn(4, 3, 5)
    out = norm(x)
    aux = x[2:]
    mean, var = aux.mean(dim=(0, 2)), aux.var(dim=(0, 2), unbiased=False)
    assert torch.allclose(out, (x - mean[:, None]) / torch.sqrt(var[:, None] + 1e-5), atol=1e-5)


@pytest.mark.parametrize("block,expected", [("residual", 1 + 2 * 7), ("multiplicative", 1 + 4 * 7)])
def test_receptive_field_is_exact(block, expected):
    model = tiny(block)
    assert model.receptive_field == expected
    x = torch.randint(0, 256, (1, expected + 4))
    y = x.clone()
    y[0, 4 - 1] = (y[0, 4 - 1] + 1) % 256  # just outside the field of the last position
    with torch.no_grad():
        assert torch.allclose(model(x)[0, -1], model(y)[0, -1], atol=1e-6)
        y[0, 4] = (y[0, 4] + 1) % 256  # just inside
        assert not torch.equal(model(x)[0, -1], model(y)[0, -1])  # small through deep MU paths, but nonzero


def test_373_byte_field_of_six_sets():
    assert engine.build_model("bytenet", d=4, sets=6).receptive_field == 373


def test_checkpoint_round_trip_and_cached_equals_naive(tmp_path):
    model = tiny("multiplicative", "layer")
    engine.save_model(model, tmp_path / "m", data="test")
    loaded = engine.load_model(tmp_path / "m")
    x = torch.randint(0, 256, (1, 10))
    assert torch.allclose(model(x), loaded(x))
    a = engine.generate_all(loaded, engine.text.encode("ab"), max_new_tokens=30, seed=3)
    b = engine.generate_all(loaded, engine.text.encode("ab"), max_new_tokens=30, seed=3, naive=True)
    assert torch.equal(a, b)


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="norm"):
        engine.build_model("bytenet", norm="batch")
    with pytest.raises(ValueError, match="block"):
        engine.build_model("bytenet", block="gated")


def test_training_forward_leaves_out_the_aux_rows_of_subbatch_norm_only():
    """The trainer's hook: the logits of forward, and with sub-batch norm in training only the main rows count."""
    x = torch.randint(0, 256, (4, 20))
    plain = tiny("residual", "layer").train()
    out = plain.training_forward(x)
    assert out.rows == slice(None) and out.penalties == {} and out.state is None
    torch.manual_seed(0)
    model = tiny("residual", "subbatch").train()
    out = model.training_forward(x)
    assert out.rows == slice(0, 3)  # one auxiliary row of four
    assert torch.allclose(out.logits, model(x), atol=1e-6)
    out.logits[out.rows].sum().backward()
    assert model.eval().training_forward(x).rows == slice(None)


def test_shipped_shakespeare_model_loads_and_keeps_the_invariant():
    from engine.paths import SHIPPED_MODELS
    path = SHIPPED_MODELS / "bytenet-shakespeare"
    if not path.is_dir():
        pytest.skip("demo model not shipped")
    model = engine.load_model(path)
    assert model.receptive_field == 125 and model.tokens.kind == "text"
    x = torch.tensor([engine.text.encode("ROMEO:\nWhat light")])
    assert_step_matches_forward(model, x)
