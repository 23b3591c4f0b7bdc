"""WaveNet: the protocol invariant over random configs, causality, and an exact receptive field."""
import random

import pytest
import torch

import engine
from protocol_checks import assert_causal, assert_prime_then_step_matches, assert_step_matches_forward


def random_configs(n: int = 24):
    rng = random.Random(1234)
    for i in range(n):
        yield dict(
            n_classes=rng.choice([16, 32]),
            layers_per_block=rng.randint(1, 4),
            blocks=rng.randint(1, 3),
            kernel_size=[2, 3][i % 2],
            residual_channels=rng.choice([4, 8]),
            gate_channels=rng.choice([6, 8, 12]),
            skip_channels=rng.choice([5, 8]),
            global_cond_classes=[0, 3][(i // 2) % 2],
            input=rng.choice(["embedding", "onehot"]),
        ), [1, 3][(i // 4) % 2]


CONFIGS = list(random_configs())


def _inputs(cfg, batch, length):
    x = torch.randint(0, cfg["n_classes"], (batch, length))
    cond = torch.randint(0, cfg["global_cond_classes"], (batch,)) if cfg["global_cond_classes"] else None
    return x, cond


@pytest.mark.parametrize("cfg,batch", CONFIGS)
def test_step_equals_forward_and_prime(cfg, batch):
    model = engine.build_model("wavenet", **cfg)
    x, cond = _inputs(cfg, batch, 37)
    assert_step_matches_forward(model, x, cond)
    assert_prime_then_step_matches(model, x, split=random.Random(len(str(cfg))).randint(1, 30), cond=cond)
    assert_causal(model, x, t=18, cond=cond)


def test_prime_twice_equals_prime_once():
    model = engine.build_model("wavenet", layers_per_block=3, blocks=2, kernel_size=3, residual_channels=8,
                               gate_channels=8, skip_channels=8, n_classes=16).eval()
    x = torch.randint(0, 16, (2, 50))
    with torch.no_grad():
        once, _ = model.prime(x, model.init_state(2))
        s = model.init_state(2)
        _, s = model.prime(x[:, :7], s)
        twice, s = model.prime(x[:, 7:], s)
    assert (once - twice).abs().max() <= 1e-4


@pytest.mark.parametrize("kernel_size,layers,blocks", [(2, 3, 2), (3, 2, 2), (4, 3, 1)])
def test_receptive_field_is_exact(kernel_size, layers, blocks):
    model = engine.build_model("wavenet", layers_per_block=layers, blocks=blocks, kernel_size=kernel_size,
                               residual_channels=8, gate_channels=8, skip_channels=8, n_classes=16).eval()
    model.double()  # the far edge's influence is a product of every layer's weights: ~1e-10, below float32 noise
    rf = model.receptive_field
    assert rf == 1 + (kernel_size - 1) * blocks * (2 ** layers - 1)
    length = rf + 5
    x = torch.randint(1, 16, (1, length))
    last = length - 1
    with torch.no_grad():
        base = model(x)[0, last]
        outside, inside = x.clone(), x.clone()
        outside[0, last - rf] = 0  # first input outside the field: no effect
        inside[0, last - rf + 1] = 0  # last input inside it: an effect
        assert torch.equal(model(outside)[0, last], base)
        assert (model(inside)[0, last] - base).abs().max() > 0


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="kernel_size"):
        engine.build_model("wavenet", kernel_size=1)
    with pytest.raises(engine.UserError, match="no field"):
        engine.build_model("wavenet", layers=3)
    with pytest.raises(ValueError, match="unknown model family"):
        engine.build_model("nope")
    cond_model = engine.build_model("wavenet", layers_per_block=1, blocks=1, global_cond_classes=3)
    with pytest.raises(ValueError, match="conditioned"):
        cond_model(torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="class ids"):
        cond_model(torch.zeros(1, 4, dtype=torch.long), torch.tensor([5]))
