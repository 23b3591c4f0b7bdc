"""The fast generation path (engine.fast): same ids as the eager path, state shared with it, clean fallback."""
import pytest
import torch

import engine
from engine import fast
from engine.generation import _chunks, _fast_chunks
from engine.sampling import RandomStream, SamplingConfig, sample

pytest.importorskip("numba")


pytestmark = pytest.mark.usefixtures("one_thread")

SAMPLING = [dict(temperature=1.0), dict(temperature=0.7, top_k=5), dict(temperature=1.3, top_p=0.8),
            dict(temperature=0.0), dict(temperature=0.9, top_k=12, top_p=0.6)]


def tiny_wavenet(**kw):
    cfg = dict(layers_per_block=4, blocks=2, residual_channels=8, gate_channels=8, skip_channels=16, n_classes=32)
    cfg.update(kw)
    torch.manual_seed(1)
    model = engine.build_model("wavenet", **cfg)
    with torch.no_grad():  # larger weights than the default init: sharper, more varied distributions
        for p in model.parameters():
            p.mul_(2.0)
    return model.eval()


def both(model, prompt, **kw):
    a = engine.generate_all(model, prompt, backend="eager", **kw)
    b = engine.generate_all(model, prompt, backend="fast", **kw)
    return a, b


def _sampler_logits():
    torch.manual_seed(0)
    logits = torch.randn(8, 40) * 3
    logits[4] = torch.randn(40) * 0.01
    logits[5, 5] = logits[5, 9] = logits[5, 20] = logits[5].max() + 1  # ties at the top
    logits[6, ::2] = logits[6, 1::2]  # pairwise ties everywhere
    logits[7] = 0.5  # all tied: 1/40 each, so k/40 lands exactly on top_p for top_p = 0.05, 0.5, ...
    return logits


SAMPLER_OPTIONS = SAMPLING + [dict(temperature=1.0, top_k=1), dict(temperature=2.0, top_p=0.05),
                              dict(temperature=1.0, top_k=40), dict(temperature=1.0, top_p=1.0),
                              dict(temperature=1.0, top_p=0.5), dict(temperature=1.0, top_k=3, top_p=0.5)]


def _check_sampler(rows):
    from engine.fast.kernel import sample_row
    import numpy as np
    logits = _sampler_logits()
    probs, scratch = np.empty(40), np.empty(40)
    rng = RandomStream(8, seed=5)
    for kw in SAMPLER_OPTIONS:
        cfg = SamplingConfig(**kw)
        for _ in range(100):
            u = rng.next()
            want = sample(logits, cfg, u)
            got = [sample_row(logits[r].numpy(), float(cfg.temperature), int(cfg.top_k or 0),
                              float(cfg.top_p if cfg.top_p is not None else 1.0), float(u[r]), probs, scratch)
                   for r in rows]
            assert got == want[list(rows)].tolist(), kw


def test_compiled_sampler_matches_torch_sampler():
    """Same logits and uniform -> same id, for every sampling option, exact ties in the logits included (rows
    5 and 6, top-p too): both samplers order equal probabilities by lower id for top-p (torch.sort(stable=True)
    in engine.sampling, a stable mergesort in the kernel), so a top-p cut inside a group of ties keeps the
    same ids on both paths."""
    _check_sampler(range(7))


def test_compiled_sampler_top_p_cut_exactly_on_an_edge():
    """Every probability 1/40: the top-p cut lands exactly on k/40, and the last bit of the total decides which
    side; both samplers take the total from their running sum, so they decide alike."""
    _check_sampler([7])


@pytest.mark.parametrize("kw", SAMPLING)
@pytest.mark.parametrize("cond_classes,batch", [(0, 1), (0, 3), (5, 1), (5, 4)])
def test_wavenet_fast_equals_eager(kw, cond_classes, batch):
    model = tiny_wavenet(global_cond_classes=cond_classes)
    cond = torch.arange(batch) % cond_classes if cond_classes else None
    prompt = torch.randint(0, 32, (batch, 11), generator=torch.Generator().manual_seed(batch))
    a, b = both(model, prompt, max_new_tokens=80, seed=7, cond=cond, chunk_size=30, **kw)
    assert a.shape == (batch, 80)
    assert torch.equal(a, b)


@pytest.mark.parametrize("variant", [dict(kernel_size=3), dict(input="onehot"), dict(blocks=1, layers_per_block=1)])
def test_wavenet_variants(variant):
    model = tiny_wavenet(**variant)
    a, b = both(model, None, max_new_tokens=100, seed=3, batch_size=2, chunk_size=33)
    assert torch.equal(a, b)


def randomized(model):
    """Random weights and running statistics, so that every norm's affine map and bias is exercised."""
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.3)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model.eval()


TEXT_MODELS = {
    "bytenet-residual-layer": dict(family="bytenet", d=8, sets=1, set_size=4, block="residual", norm="layer"),
    "bytenet-residual-subbatch": dict(family="bytenet", d=8, sets=2, set_size=3, block="residual", norm="subbatch"),
    "bytenet-mult-layer": dict(family="bytenet", d=8, sets=1, set_size=4, block="multiplicative", norm="layer"),
    "bytenet-mult-none": dict(family="bytenet", d=8, sets=1, set_size=3, kernel_size=2, block="multiplicative",
                              norm="none"),
    "hierarchical-layernorm": dict(family="hierarchical", levels=3, widths=[12, 16, 20], norm="layernorm"),
    "hierarchical-batchnorm": dict(family="hierarchical", levels=2, widths=[16], norm="batchnorm"),
    "hierarchical-none": dict(family="hierarchical", levels=4, widths=[10], norm="none", vocab_size=128),
    "hierarchical-alphabet": dict(family="hierarchical", levels=3, widths=[12], alphabet=[10, *range(32, 120)]),
}


def text_model(name):
    cfg = dict(TEXT_MODELS[name])
    torch.manual_seed(2)
    return randomized(engine.build_model(cfg.pop("family"), **cfg))


@pytest.mark.parametrize("name", sorted(TEXT_MODELS))
@pytest.mark.parametrize("batch", [1, 3])
def test_text_families_fast_equals_eager(name, batch):
    model = text_model(name)
    assert fast.why_not(model) is None
    prompt = torch.randint(32, 120, (batch, 6), generator=torch.Generator().manual_seed(batch))
    for kw in (SAMPLING[0], SAMPLING[1], SAMPLING[3]) if batch == 1 else (SAMPLING[2], SAMPLING[4]):
        a, b = both(model, prompt, max_new_tokens=70, seed=batch, chunk_size=25, **kw)
        assert torch.equal(a, b), kw


@pytest.mark.parametrize("name", ["bytenet-mult-layer", "hierarchical-batchnorm"])
def test_text_families_logits_and_interleaving(name):
    model = text_model(name)
    with torch.inference_mode():
        _interleave(model, cond=None, batch=2)


def test_default_wavenet_and_no_prompt():
    model = engine.build_model("wavenet").eval()
    a, b = both(model, None, max_new_tokens=60, seed=11)
    assert torch.equal(a, b)


def test_logits_match_eager_and_state_interleaves():
    """Eager prime -> fast chunk -> eager steps -> fast chunk: the same ids and logits as eager throughout."""
    model = tiny_wavenet(global_cond_classes=3)
    with torch.inference_mode():
        _interleave(model, cond=torch.tensor([0, 2]), batch=2)


def _interleave(model, cond, batch):
    cfg = SamplingConfig(1.0)
    prompt = torch.randint(0, 32, (batch, 20), generator=torch.Generator().manual_seed(0))

    ref_state = model.init_state(batch, cond)
    ref_logits, ref_state = model.prime(prompt, ref_state)
    rng = RandomStream(batch, seed=1)
    ref_ids, ref_all_logits = [], []
    for i in range(90):
        if i > 0:
            ref_logits, ref_state = model.step(ref_ids[-1], ref_state)
        ref_all_logits.append(ref_logits)
        ref_ids.append(sample(ref_logits, cfg, rng.next()))
    ref_ids = torch.stack(ref_ids, 1)

    state = model.init_state(batch, cond)
    logits, state = model.prime(prompt, state)
    rng = RandomStream(batch, seed=1)
    runner = fast.FastRunner(model, state, batch, cfg)
    ids = [runner.run(30, rng.take(30), logits=logits)]
    assert (runner.logits() - ref_all_logits[29]).abs().max() <= 1e-4
    last = ids[-1][:, -1]
    for i in range(30, 60):  # the eager path continues on the runner's queues
        logits, state = model.step(last, state)
        assert (logits - ref_all_logits[i]).abs().max() <= 1e-4
        last = sample(logits, cfg, rng.next())
        ids.append(last.unsqueeze(1))
    ids.append(runner.run(30, rng.take(30), last=last))
    assert torch.equal(torch.cat(ids, 1), ref_ids)
    assert state.t == ref_state.t


def test_eager_prime_on_a_live_runner_state_is_copied_in():
    """`prime` replaces the queue tensors; the runner copies them back into its packed queues."""
    model = tiny_wavenet()
    with torch.inference_mode():
        _prime_twice(model)


def _prime_twice(model):
    cfg = SamplingConfig(0.8)
    x = torch.randint(0, 32, (1, 30), generator=torch.Generator().manual_seed(2))
    state = model.init_state(1)
    _, state = model.prime(x[:, :10], state)
    runner = fast.FastRunner(model, state, 1, cfg)
    logits, state = model.prime(x[:, 10:], state)
    got = runner.run(40, RandomStream(1, 4).take(40), logits=logits)
    ref = engine.generate_all(model, x, max_new_tokens=40, temperature=0.8, seed=4, backend="eager")
    assert torch.equal(got, ref)


def test_threads_split_rows_without_changing_ids():
    model = tiny_wavenet()
    cfg = SamplingConfig(1.0)
    outs = []
    with torch.inference_mode():
        for threads in (1, 2):
            state = model.init_state(5)
            logits, state = model.prime(torch.full((5, 1), 16), state)
            runner = fast.FastRunner(model, state, 5, cfg, threads=threads)
            outs.append(runner.run(64, RandomStream(5, 9).take(64), logits=logits))
    assert torch.equal(outs[0], outs[1])


def test_program_is_rebuilt_when_weights_change():
    model = tiny_wavenet()
    first = fast.lowered(model)
    assert fast.lowered(model) is first
    with torch.no_grad():
        model.head2.bias[3] += 5.0
    assert fast.lowered(model) is not first
    a, b = both(model, None, max_new_tokens=40, seed=2)
    assert torch.equal(a, b)


def test_backend_choice_and_fallback():
    model = tiny_wavenet()
    with pytest.raises(ValueError, match="backend"):
        engine.generate_all(model, None, max_new_tokens=5, backend="turbo")
    auto = engine.generate_all(model, None, max_new_tokens=30, seed=1)
    assert torch.equal(auto, engine.generate_all(model, None, max_new_tokens=30, seed=1, backend="eager"))
    double = tiny_wavenet().double()
    assert fast.why_not(double) is not None
    ids = engine.generate_all(double, None, max_new_tokens=10, seed=1)  # auto falls back to eager
    assert ids.shape == (1, 10)
    with pytest.raises(ValueError, match="fast"):
        engine.generate_all(double, None, max_new_tokens=10, backend="fast")


def test_end_of_sequence_chunks_match_eager_rules():
    """_fast_chunks applies the eager path's end-of-sequence rules to whole chunks."""
    eos, n, chunk = 3, 23, 5
    rows = torch.randint(0, 6, (3, n), generator=torch.Generator().manual_seed(0))
    rows[:, 17] = eos  # every row has ended by position 17

    class Replay:
        def __init__(self):
            self.pos = 0

        def run(self, k, uniforms, logits=None, last=None):
            self.pos += k
            return rows[:, self.pos - k:self.pos]

    want = list(_chunks(lambda i: rows[:, i], n, chunk, eos))
    got = list(_fast_chunks(Replay(), torch.zeros(3, 6), RandomStream(3, 0), n, chunk, eos))
    assert [c.shape for c in got] == [c.shape for c in want]
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_warmup_compiles_and_reports():
    from engine.fast import samplernn_runner
    assert fast.warmup() is True
    assert fast._KERNEL["error"] is None and samplernn_runner._KERNEL["error"] is None  # both loops compiled


def test_shipped_models_fast_equals_eager():
    """Trained weights give sharper distributions than random ones: the shipped models, where present."""
    served = 0
    for info in engine.list_models():
        if not info.shipped:
            continue
        model = engine.load_model(info.path)
        if fast.why_not(model) is not None:
            continue
        classes = getattr(model.config, "global_cond_classes", 0)
        cond = torch.tensor([0, classes - 1]) if classes else None
        a, b = both(model, None, max_new_tokens=200, seed=4, batch_size=2, cond=cond, chunk_size=64,
                    temperature=0.9, top_p=0.95)
        assert torch.equal(a, b), info.name
        served += 1
    if not served:
        pytest.skip("no shipped model that the fast path serves")


def test_a_kernel_that_does_not_run_turns_the_fast_path_off(monkeypatch):
    monkeypatch.setattr(fast, "_KERNEL", {"error": "the fast kernel does not run here (test)"})
    model = tiny_wavenet()
    assert "does not run" in fast.why_not(model)
    assert engine.generate_all(model, None, max_new_tokens=10, seed=1).shape == (1, 10)  # auto -> eager
    with pytest.raises(ValueError, match="does not run"):
        engine.generate_all(model, None, max_new_tokens=10, backend="fast")
