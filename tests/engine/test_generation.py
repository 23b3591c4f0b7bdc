"""The sampler and the two generation paths."""
import math

import pytest
import torch

import engine
from engine.sampling import RandomStream, SamplingConfig, filtered_probs, sample


def tiny_wavenet(cond_classes=0, kernel_size=2):
    return engine.build_model("wavenet", layers_per_block=4, blocks=2, kernel_size=kernel_size, residual_channels=8,
                              gate_channels=8, skip_channels=8, n_classes=32, global_cond_classes=cond_classes)


@pytest.mark.parametrize("kwargs", [
    dict(temperature=1.0), dict(temperature=0.7, top_k=5), dict(temperature=1.3, top_p=0.8), dict(temperature=0.0),
])
@pytest.mark.parametrize("cond_classes,batch", [(0, 1), (0, 3), (4, 2)])
def test_cached_and_naive_give_identical_ids(kwargs, cond_classes, batch):
    model = tiny_wavenet(cond_classes)
    cond = torch.arange(batch) % 4 if cond_classes else None
    prompt = torch.randint(0, 32, (batch, 9))
    a = engine.generate_all(model, prompt, max_new_tokens=80, seed=7, cond=cond, chunk_size=13, **kwargs)
    b = engine.generate_all(model, prompt, max_new_tokens=80, seed=7, cond=cond, naive=True, **kwargs)
    assert a.shape == (batch, 80)
    assert torch.equal(a, b)


def test_same_seed_same_ids_and_chunks_stream():
    model = tiny_wavenet()
    chunks = list(engine.generate(model, None, max_new_tokens=50, seed=3, chunk_size=16))
    assert [c.shape[1] for c in chunks] == [16, 16, 16, 2]
    again = engine.generate_all(model, None, max_new_tokens=50, seed=3, chunk_size=50)
    assert torch.equal(torch.cat(chunks, 1), again)
    other = engine.generate_all(model, None, max_new_tokens=50, seed=4)
    assert not torch.equal(again, other)


def test_temperature_one_leaves_softmax_unchanged_and_zero_is_argmax():
    logits = torch.randn(4, 50)
    p = filtered_probs(logits, SamplingConfig(1.0))
    assert torch.allclose(p, torch.softmax(logits.double(), -1))
    ids = sample(logits, SamplingConfig(0.0), torch.rand(4, dtype=torch.float64))
    assert torch.equal(ids, logits.argmax(-1))


def test_top_k_and_top_p_never_emit_masked_ids():
    torch.manual_seed(1)
    logits = torch.randn(2, 40)
    top5 = set(torch.topk(logits, 5).indices.flatten().tolist())
    rng = RandomStream(2, seed=0)
    for _ in range(300):
        ids = sample(logits, SamplingConfig(2.0, top_k=5), rng.next())
        for row, i in enumerate(ids.tolist()):
            assert i in torch.topk(logits[row], 5).indices.tolist()
    probs = torch.softmax(logits.double(), -1)
    for p_cut in (0.3, 0.9):
        sorted_p, order = probs.sort(-1, descending=True)
        nucleus = [set(order[r, :int((sorted_p[r].cumsum(0) < p_cut).sum()) + 1].tolist()) for r in range(2)]
        for _ in range(300):
            ids = sample(logits, SamplingConfig(1.0, top_p=p_cut), rng.next())
            assert all(i in nucleus[r] for r, i in enumerate(ids.tolist()))
    assert top5  # the fixture is not degenerate


def test_extreme_uniforms_stay_in_the_allowed_set():
    logits = torch.tensor([[0.0, 5.0, -1e9, 4.0, -1e9]])
    for u in (0.0, 0.5, 1.0 - 1e-16):
        i = sample(logits, SamplingConfig(1.0, top_k=2), torch.tensor([u], dtype=torch.float64)).item()
        assert i in (1, 3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(temperature=math.nan), "temperature"), (dict(temperature=-1.0), "temperature"),
    (dict(temperature=1e9), "temperature"), (dict(top_k=-2), "top_k"), (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.5), "top_p"), (dict(max_new_tokens=0), "max_new_tokens"), (dict(max_new_tokens=-5), "max_new_tokens"),
    (dict(max_new_tokens=10**9), "max_new_tokens"), (dict(top_k=10**20), "top_k"), (dict(seed=10**23), "seed"),
    (dict(seed=-1), "seed"), (dict(backend="turbo"), "backend"),
])
def test_bad_generation_arguments_are_refused_clearly(kwargs, match):
    with pytest.raises(engine.UserError, match=match):  # a ValueError a user can fix: one line in the CLIs
        next(engine.generate(tiny_wavenet(), None, **kwargs))


def test_out_of_range_prompt_is_refused():
    with pytest.raises(ValueError, match="prompt ids"):
        next(engine.generate(tiny_wavenet(), [1, 2, 99]))


def test_prompt_longer_than_the_field_and_batch_expansion():
    model = tiny_wavenet(kernel_size=3)
    prompt = torch.randint(0, 32, (1, model.receptive_field * 2 + 3))
    a = engine.generate_all(model, prompt, max_new_tokens=20, seed=1, batch_size=3)
    b = engine.generate_all(model, prompt, max_new_tokens=20, seed=1, batch_size=3, naive=True)
    assert a.shape == (3, 20) and torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # each row draws its own randomness


def test_a_model_built_under_inference_mode_generates():
    with torch.inference_mode():
        model = tiny_wavenet()
    ids = engine.generate_all(model, None, max_new_tokens=10, seed=0, backend="eager")
    assert ids.shape == (1, 10)


def test_top_p_ties_keep_the_lower_id():
    logits = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    probs = filtered_probs(logits, SamplingConfig(1.0, top_p=0.5))
    assert probs[0].tolist() == [0.25, 0.25, 0.0, 0.0]


def _modes(model):
    return [m.training for m in model.modules()]


def _half_training(model):
    """Train mode with one submodule in eval: the restore must bring back each module's own flag."""
    model.train()
    next(m for m in model.modules() if m is not model).eval()
    return _modes(model)


@pytest.mark.parametrize("path", ["eager", "auto", "naive"])  # auto: the compiled loop of engine.fast
def test_generation_restores_train_mode_when_finished_closed_or_failed(path, monkeypatch):
    model = tiny_wavenet()
    before = _half_training(model)
    naive = path == "naive"
    kw = {} if naive else {"backend": path}

    def fn(**more):
        return (engine.generate_naive if naive else engine.generate)(model, None, seed=0, **kw, **more)

    seen = []
    for name in ("forward", "step", "prime"):
        original = getattr(model, name)
        monkeypatch.setattr(model, name, lambda *a, _f=original, **k: seen.append(model.training) or _f(*a, **k))
    # finished
    assert sum(c.shape[1] for c in fn(max_new_tokens=20, chunk_size=4)) == 20
    assert seen and not any(seen) and _modes(model) == before  # generated in eval mode, then back
    assert engine.generate_all(model, None, max_new_tokens=5, seed=0, naive=naive, **kw).shape == (1, 5)
    assert _modes(model) == before
    # closed early
    gen = fn(max_new_tokens=50, chunk_size=4)
    next(gen)
    assert not model.training
    gen.close()
    assert _modes(model) == before
    # raised mid-way
    for name in ("forward", "step", "prime"):
        monkeypatch.setattr(model, name, lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        list(fn(max_new_tokens=50, chunk_size=4))
    assert _modes(model) == before


def test_an_eval_model_stays_in_eval_and_bad_arguments_leave_the_mode_alone():
    model = tiny_wavenet().eval()
    engine.generate_all(model, None, max_new_tokens=5, seed=0)
    assert not any(_modes(model))
    model.train()
    with pytest.raises(engine.UserError, match="seed"):
        engine.generate_all(model, None, max_new_tokens=5, seed=-1)
    assert all(_modes(model))


def test_beam_search_and_translate_restore_train_mode(monkeypatch):
    model = engine.build_model("seq2seq", d=8, enc_sets=1, dec_sets=1, set_size=2, hidden_size=8)
    before = _half_training(model)
    assert len(engine.beam_search(model, model.encode(["3 March"]), beam_width=2, max_new_tokens=5)) == 1
    assert _modes(model) == before
    assert len(model.translate(["3 March", "4 May"], beam_width=2, max_len=5)) == 2
    assert _modes(model) == before
    monkeypatch.setattr(model, "step", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        engine.beam_search(model, model.encode(["3 March"]), beam_width=2, max_new_tokens=5)
    assert _modes(model) == before
