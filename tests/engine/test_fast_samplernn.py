"""SampleRNN on the fast path (engine/fast/samplernn_runner.py): same ids as the eager `step` loop, the state
shared with it in both directions, LSTM tiers left to the eager path."""
from pathlib import Path

import pytest
import torch

import engine
from engine import fast
from engine.sampling import RandomStream, SamplingConfig, sample

pytest.importorskip("numba")

MODELS = Path(__file__).resolve().parents[2] / "assets" / "models"
SAMPLING = [dict(temperature=1.0), dict(temperature=0.7, top_k=5), dict(temperature=1.3, top_p=0.8),
            dict(temperature=0.0), dict(temperature=0.9, top_k=12, top_p=0.6)]


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(frame_sizes=(4,), cond=0, cell="gru", layers=1, seed=1):
    torch.manual_seed(seed)
    model = engine.build_model("samplernn", frame_sizes=list(frame_sizes), dim=12, embed_dim=4, mlp_dim=10,
                               rnn_layers=layers, cell=cell, global_cond_classes=cond, n_classes=32)
    with torch.no_grad():  # larger weights than the default init: sharper, more varied distributions
        for p in model.parameters():
            p.mul_(2.0)
    return model.eval()


def both(model, prompt, **kw):
    a = engine.generate_all(model, prompt, backend="eager", **kw)
    b = engine.generate_all(model, prompt, backend="fast", **kw)
    return a, b


@pytest.mark.parametrize("frame_sizes,layers", [((4,), 1), ((4,), 2), ((8, 2), 1), ((8, 4, 2), 1)])
@pytest.mark.parametrize("cond", [0, 3])
@pytest.mark.parametrize("batch", [1, 3])
def test_fast_equals_eager(frame_sizes, layers, cond, batch):
    model = tiny(frame_sizes, cond, layers=layers)
    assert fast.why_not(model) is None
    torch.manual_seed(batch)
    prompt = torch.randint(0, 32, (batch, 11))  # 11 samples: the prompt ends mid-frame
    c = torch.arange(batch) % cond if cond else None
    for i, kw in enumerate(SAMPLING):
        a, b = both(model, prompt, max_new_tokens=45, seed=i, chunk_size=13, cond=c, **kw)
        assert torch.equal(a, b), kw


def test_no_prompt_and_chunk_sizes():
    model = tiny((4, 2), cond=2)
    for chunk in (1, 7, 64):
        a, b = both(model, None, max_new_tokens=40, seed=5, chunk_size=chunk, cond=1)
        assert torch.equal(a, b)


def test_state_interleaves_with_eager_step():
    """Fast chunks and eager steps take turns on one state; the result equals an all-eager run."""
    model = tiny((8, 2), cond=3)
    cfg = SamplingConfig(temperature=1.0)
    prompt = torch.randint(0, 32, (2, 5))
    with torch.inference_mode():
        rng = RandomStream(2, 7)
        state = model.init_state(2, cond=torch.tensor([0, 2]))
        logits, state = model.prime(prompt, state)
        ref = []
        for i in range(60):
            if i:
                logits, state = model.step(ref[-1], state)
            ref.append(sample(logits, cfg, rng.next()))
        ref = torch.stack(ref, 1)

        rng = RandomStream(2, 7)
        state = model.init_state(2, cond=torch.tensor([0, 2]))
        logits, state = model.prime(prompt, state)
        runner = fast.FastRunner(model, state, 2, cfg)
        got = [runner.run(13, rng.take(13), logits=logits)]
        last = got[-1][:, -1]
        for _ in range(9):  # eager steps continue from the state the runner wrote back
            logits, runner.state = model.step(last, runner.state)
            last = sample(logits, cfg, rng.next())
            got.append(last.unsqueeze(1))
        got.append(runner.run(20, rng.take(20), last=last))  # ... and the runner continues from theirs
        got.append(runner.run(18, rng.take(18)))
        got = torch.cat(got, 1)
    assert torch.equal(got, ref)


def test_logits_and_state_match_eager():
    model = tiny((4, 2), cond=0, layers=2)
    prompt = torch.randint(0, 32, (2, 6))
    with torch.inference_mode():
        state = model.init_state(2)
        logits, state = model.prime(prompt, state)
        runner = fast.FastRunner(model, state, 2, SamplingConfig())
        ids = runner.run(30, RandomStream(2, 0).take(30), logits=logits)
        ref = model.init_state(2)
        _, ref = model.prime(prompt, ref)
        for i in range(29):
            ref_logits, ref = model.step(ids[:, i], ref)
    torch.testing.assert_close(runner.logits(), ref_logits, atol=1e-5, rtol=1e-5)
    assert runner.state.t == ref.t and torch.equal(runner.state.hist, ref.hist)
    for h, g in zip(runner.state.hidden, ref.hidden):
        torch.testing.assert_close(h, g, atol=1e-5, rtol=1e-5)
    for c, d in zip(runner.state.cond[1:], ref.cond[1:]):
        torch.testing.assert_close(c, d, atol=1e-5, rtol=1e-5)


def test_lstm_falls_back():
    model = tiny((4,), cell="lstm")
    reason = fast.why_not(model)
    assert reason is not None and "LSTM" in reason
    a = engine.generate_all(model, None, max_new_tokens=20, seed=0, backend="eager")
    b = engine.generate_all(model, None, max_new_tokens=20, seed=0)  # auto: the eager path
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="LSTM"):
        engine.generate_all(model, None, max_new_tokens=20, seed=0, backend="fast")


def test_double_weights_fall_back():
    model = tiny((4,)).double()
    assert "float32" in fast.why_not(model)
    engine.generate_all(model, None, max_new_tokens=5, seed=0)


@pytest.mark.parametrize("name,cond", [("samplernn-music", None), ("samplernn-digits", 3)])
def test_shipped_models_fast_equals_eager(name, cond):
    path = MODELS / name
    if not path.exists():
        pytest.skip(f"{name} is not shipped in this checkout")
    model = engine.load_model(path)
    assert fast.why_not(model) is None
    prompt = torch.randint(0, 256, (2, 21))
    for i, kw in enumerate([dict(temperature=1.0), dict(temperature=0.8, top_k=40, top_p=0.95)]):
        a, b = both(model, prompt, max_new_tokens=120, seed=i, chunk_size=50, cond=cond, **kw)
        assert torch.equal(a, b), kw
