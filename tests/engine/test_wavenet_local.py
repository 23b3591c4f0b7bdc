"""WaveNet with local conditioning (frames -> every gate): the protocol invariant, lookahead, chunking, bad input."""
import random

import pytest
import torch

import engine
from engine.errors import UserError
from engine.protocol import Conditioning
from protocol_checks import assert_causal, assert_prime_then_step_matches, assert_step_matches_forward


def random_configs(n: int = 16):
    rng = random.Random(77)
    for i in range(n):
        yield dict(
            n_classes=rng.choice([16, 32]), layers_per_block=rng.randint(1, 4), blocks=rng.randint(1, 2),
            kernel_size=[2, 3][i % 2], residual_channels=rng.choice([4, 8]), gate_channels=rng.choice([6, 8]),
            skip_channels=rng.choice([5, 8]), global_cond_classes=[0, 3][(i // 2) % 2],
            local_cond_channels=rng.choice([3, 5]), local_cond_hop=rng.choice([1, 4, 5]),
            local_cond_hidden=rng.choice([4, 6]), local_cond_layers=rng.randint(1, 3),
        ), [1, 3][(i // 4) % 2]


CONFIGS = list(random_configs())


def listening(model):
    """A new vocoder's projection starts at zero (it begins as its unconditioned twin); give it weights, so every
    check below sees frames that matter."""
    with torch.no_grad():
        model.frame_net.project.weight.normal_(0, 0.5)
        model.frame_net.project.bias.normal_(0, 0.5)
    return model


def _inputs(cfg, batch, length, first=0):
    x = torch.randint(0, cfg["n_classes"], (batch, length))
    frames = torch.randn(batch, cfg["local_cond_channels"], -(-length // cfg["local_cond_hop"]) + 2)
    classes = torch.randint(0, 3, (batch,)) if cfg["global_cond_classes"] else None
    return x, Conditioning(classes=classes, frames=frames, first_sample=first)


@pytest.mark.parametrize("cfg,batch", CONFIGS)
def test_step_equals_forward_and_prime_with_frames(cfg, batch):
    model = listening(engine.build_model("wavenet", **cfg))
    x, cond = _inputs(cfg, batch, 41, first=random.Random(str(cfg)).randint(0, 9))
    assert_step_matches_forward(model, x, cond)
    assert_prime_then_step_matches(model, x, split=random.Random(len(str(cfg))).randint(1, 35), cond=cond)
    assert_causal(model, x, t=20, cond=cond)


def test_a_sample_hears_its_frames_and_no_frame_past_the_stated_lookahead():
    cfg = dict(layers_per_block=2, blocks=1, residual_channels=4, gate_channels=6, skip_channels=4, n_classes=16,
               local_cond_channels=3, local_cond_hop=4, local_cond_hidden=4, local_cond_layers=2)
    model = listening(engine.build_model("wavenet", **cfg)).eval()
    x = torch.randint(0, 16, (1, 40))
    frames = torch.randn(1, 3, 10)
    base = model(x, Conditioning(frames=frames))
    look = model.frame_net.lookahead
    assert look == 1 + 2
    for f in range(10):
        changed = frames.clone()
        changed[:, :, f] += 5.0
        diff = (model(x, Conditioning(frames=changed)) - base).abs().amax(-1)[0]  # [T]
        moved = (diff > 1e-6).nonzero().flatten().tolist()
        assert moved, f"frame {f} changes nothing"
        assert min(moved) // 4 >= f - look, (f, moved)  # no sample earlier than its lookahead reads frame f
        assert any(t // 4 == f for t in moved)  # and frame f's own samples hear it


def test_a_window_cut_from_a_clip_sees_the_conditioning_the_whole_clip_sees():
    """Training cuts windows (first_sample = their offset): past the receptive field they match the full clip."""
    model = listening(engine.build_model("wavenet", layers_per_block=3, blocks=1, residual_channels=8, gate_channels=8,
                                         skip_channels=8, n_classes=16, local_cond_channels=4, local_cond_hop=5)).eval()
    x = torch.randint(0, 16, (2, 90))
    frames = torch.randn(2, 4, 18)
    full = model(x, Conditioning(frames=frames))
    rf = model.receptive_field
    for start in (7, 30, 55):
        window = model(x[:, start:], Conditioning(frames=frames, first_sample=start))
        assert (window[:, rf:] - full[:, start + rf:]).abs().max() < 1e-5


def test_chunked_generation_equals_one_pass_and_the_block_stays_bounded():
    model = listening(engine.build_model("wavenet", layers_per_block=3, blocks=2, residual_channels=8, gate_channels=8,
                                         skip_channels=8, n_classes=32, local_cond_channels=4, local_cond_hop=3)).eval()
    frames = torch.randn(2, 4, 200)
    cond = Conditioning(frames=frames)
    one = engine.generate_all(model, max_new_tokens=600, cond=cond, seed=5, backend="eager", chunk_size=600,
                              batch_size=2)
    chunks = list(engine.generate(model, max_new_tokens=600, cond=cond, seed=5, backend="eager", chunk_size=37,
                                  batch_size=2))
    assert torch.equal(torch.cat(chunks, 1), one)
    with torch.inference_mode():
        state = model.init_state(2, cond)
        for t in range(600):
            _, state = model.step(one[:, t], state)
    assert state.frames.block.shape[-1] <= 64  # the cached frame biases: a block, whatever the length


def test_frames_that_do_not_fit_get_one_clear_message():
    model = engine.build_model("wavenet", layers_per_block=2, blocks=1, residual_channels=4, gate_channels=6,
                               skip_channels=4, n_classes=16, local_cond_channels=3, local_cond_hop=4)
    x = torch.randint(0, 16, (2, 8))
    with pytest.raises(UserError, match=r"frames must be \[2, 3, F\]"):
        model(x, Conditioning(frames=torch.zeros(2, 5, 4)))
    with pytest.raises(UserError, match="NaN"):
        model(x, Conditioning(frames=torch.full((2, 3, 4), float("nan"))))
    with pytest.raises(UserError, match="conditioned on frames"):
        model(x)
    plain = engine.build_model("wavenet", layers_per_block=2, blocks=1, n_classes=16)
    with pytest.raises(UserError, match="takes no conditioning frames"):
        plain(x, Conditioning(frames=torch.zeros(2, 3, 4)))
    with pytest.raises(UserError, match="do not match"):
        engine.build_model("wavenet", local_cond_channels=3, local_cond_hop=4, sample_rate=8000,
                           features=dict(sample_rate=8000, hop=80, n_fft=320, n_mels=3))


@pytest.mark.parametrize("kernel,classes,batch", [(2, 0, 1), (3, 0, 3), (2, 4, 3), (3, 4, 1)])
def test_the_fast_path_serves_local_conditioning_with_the_same_ids(kernel, classes, batch):
    from engine import fast
    torch.manual_seed(2)
    model = engine.build_model("wavenet", layers_per_block=4, blocks=2, kernel_size=kernel, residual_channels=8,
                               gate_channels=8, skip_channels=16, n_classes=32, global_cond_classes=classes,
                               local_cond_channels=5, local_cond_hop=7, local_cond_hidden=8).eval()
    listening(model)
    with torch.no_grad():  # sharper distributions than the default init, so a wrong bias changes ids
        for p in model.parameters():
            p.mul_(2.0)
    assert fast.why_not(model) is None
    frames = torch.randn(batch, 5, 40) * 2
    cond = Conditioning(classes=torch.arange(batch) % classes if classes else None, frames=frames, first_sample=3)
    prompt = torch.randint(0, 32, (batch, 9), generator=torch.Generator().manual_seed(batch))
    kw = dict(max_new_tokens=250, seed=11, cond=cond, chunk_size=45, temperature=0.9)
    eager = engine.generate_all(model, prompt, backend="eager", **kw)
    fast_ids = engine.generate_all(model, prompt, backend="fast", **kw)
    assert torch.equal(eager, fast_ids)
    shuffled = Conditioning(classes=cond.classes, frames=frames.flip(-1), first_sample=3)
    assert not torch.equal(fast_ids, engine.generate_all(model, prompt, backend="fast", **{**kw, "cond": shuffled}))


def test_a_new_vocoder_starts_as_its_unconditioned_twin():
    """The zero-initialised projection: before training, frames change nothing (they are learned, not noise)."""
    model = engine.build_model("wavenet", layers_per_block=2, blocks=1, residual_channels=4, gate_channels=6,
                               skip_channels=4, n_classes=16, local_cond_channels=3, local_cond_hop=4).eval()
    x = torch.randint(0, 16, (1, 30))
    a = model(x, Conditioning(frames=torch.randn(1, 3, 8)))
    b = model(x, Conditioning(frames=torch.randn(1, 3, 8)))
    assert torch.equal(a, b)
