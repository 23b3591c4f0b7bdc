"""The two-stage pipeline: a token LM plans frames, a vocoder streams them; one checkpoint; bad parts refused."""
import json

import numpy as np
import pytest
import torch

import engine
from engine.errors import UserError
from engine.frame_tokens import FrameCodebook, TokenLayout
from engine.layers.token_decoder import TokenDecoder, TokenDecoderConfig
from engine.models.pipeline import Pipeline
from engine.protocol import Conditioning
from protocol_checks import assert_prime_then_step_matches, assert_step_matches_forward

FEATURES = dict(sample_rate=8000, hop=20, n_fft=80, n_mels=6)
K, CLASSES = 16, 3


def tiny_pipeline(n_classes: int = CLASSES, null_class: bool = False, decoder: bool = False, preemphasis: float = 0.0,
                  **extra) -> Pipeline:
    torch.manual_seed(0)
    layout = TokenLayout(K, n_classes, null_class)
    lm = engine.build_model("rnn", vocab_size=layout.vocab_size, cell="gru", hidden_size=16, layers=1,
                            start_id=layout.start_id, eos_id=layout.end_id)
    vocoder = engine.build_model("wavenet", blocks=1, layers_per_block=3, residual_channels=8, gate_channels=8,
                                 skip_channels=8, n_classes=64, sample_rate=8000, local_cond_channels=6,
                                 local_cond_hop=20, local_cond_hidden=8, local_cond_layers=1, features=FEATURES,
                                 preemphasis=preemphasis)
    with torch.no_grad():  # sharper than the default init, so what the vocoder hears shows in its samples
        for p in vocoder.parameters():
            p.mul_(3.0)
        vocoder.frame_net.project.weight.normal_(0, 0.5)
        lm.head.bias[layout.end_id] = -3.0  # clips of a few dozen frames, not two
    codebook = FrameCodebook.fit(torch.rand(400, 6), K)
    if decoder:  # a token decoder that has learned something (its last layer no longer zero), context 2
        net = TokenDecoder(K, 6, TokenDecoderConfig(width=8, layers=2, kernel=3))
        with torch.no_grad():
            net.out.weight.normal_(0, 0.5)
        codebook = FrameCodebook(codebook.centroids, codebook.mean, codebook.std, net.eval())
    return Pipeline.compose(lm, vocoder, codebook, [f"c{i}" for i in range(n_classes)], **extra).eval()


def _all(model, **kw):
    return torch.cat(list(engine.generate(model, **kw)), 1)


def test_it_streams_follows_the_seed_and_ends_when_the_plan_does():
    model = tiny_pipeline()
    a = _all(model, max_new_tokens=20_000, cond=1, seed=4, chunk_size=50)
    b = _all(model, max_new_tokens=20_000, cond=1, seed=4, chunk_size=999)
    assert torch.equal(a, b) and a.shape[1] % 20 == 0 and 8 * 20 <= a.shape[1] < 20_000  # whole frames, then end
    assert not torch.equal(a[:, :160], _all(model, max_new_tokens=160, cond=1, seed=5))
    assert _all(model, max_new_tokens=100, cond=2, seed=4).shape == (1, 100)  # the length cap holds
    chunks = list(engine.generate(model, max_new_tokens=20_000, cond=0, seed=1, chunk_size=40))
    assert len(chunks) > 3 and all(c.shape[1] <= 40 for c in chunks)  # streamed, not made at once


@pytest.mark.parametrize("decoder", [False, True])
@pytest.mark.parametrize("backend", ["eager", "fast"])
def test_the_clip_is_its_vocoder_playing_the_decoded_plan(decoder, backend):
    """Streamed as the frames come (a token decoder's frames once their right context is planned), the clip is
    exactly what the vocoder makes given the whole plan at once: no sample is drawn before its frames exist."""
    model = tiny_pipeline(decoder=decoder)
    assert model.codebook.context == (2 if decoder else 0)
    codes = model.plan_codes(1, seed=4)
    frames = model.codebook.decode(torch.tensor(codes)).unsqueeze(0)
    whole = engine.generate_all(model.vocoder, None, max_new_tokens=len(codes) * 20, cond=Conditioning(frames=frames),
                                seed=5, backend=backend)
    for chunk in (7, 64):
        assert torch.equal(_all(model, max_new_tokens=20_000, cond=1, seed=4, chunk_size=chunk, backend=backend), whole)


def test_a_token_decoder_changes_the_frames_and_travels_in_the_checkpoint(tmp_path):
    model = tiny_pipeline(decoder=True)
    codes = torch.tensor(model.plan_codes(2, seed=1))
    plain = FrameCodebook(model.codebook.centroids, model.codebook.mean, model.codebook.std)
    assert not torch.allclose(model.codebook.decode(codes), plain.decode(codes))
    engine.save_model(model, tmp_path / "p")
    again = engine.load_model(tmp_path / "p")
    assert again.config.codebook_decoder == {"width": 8, "layers": 2, "kernel": 3}
    kw = dict(max_new_tokens=800, cond=2, seed=1)
    assert torch.equal(_all(model, **kw), _all(again, **kw))
    prompt = torch.full((415,), 40)
    assert _all(again, prompt=prompt, max_new_tokens=300, cond=0, seed=2).shape == (1, 300)


def test_eager_and_fast_vocoding_make_the_same_clip():
    model = tiny_pipeline()
    kw = dict(max_new_tokens=3000, cond=2, seed=9, chunk_size=64)
    assert torch.equal(_all(model, backend="eager", **kw), _all(model, backend="fast", **kw))


def test_a_prompt_is_continued_from_its_last_sample():
    model = tiny_pipeline()
    prompt = engine.audio.quantize(torch.from_numpy(0.4 * np.sin(np.arange(415) * 0.3).astype(np.float32)), 64)
    out = _all(model, prompt=prompt, max_new_tokens=600, cond=0, seed=2)
    assert out.shape == (1, 600)
    again = _all(model, prompt=prompt, max_new_tokens=600, cond=0, seed=2)
    assert torch.equal(out, again)
    # the vocoder hears the prompt: a different prompt gives a different continuation with the same seed
    other = _all(model, prompt=torch.full((415,), 32), max_new_tokens=600, cond=0, seed=2)
    assert not torch.equal(out, other)


def test_with_a_pre_emphasis_vocoder_a_prompt_primes_the_lm_with_the_frames_of_its_own_waveform():
    """The prompt's ids are of the pre-emphasized waveform; the frames (and so the tokens that prime the LM) must
    be those of the waveform itself, as in training."""
    from engine.features import LogMel
    model = tiny_pipeline(preemphasis=0.85)
    wave = torch.from_numpy(0.4 * np.sin(np.arange(400) * 0.05).astype(np.float32))
    ids = engine.audio.encode_audio(wave, model.tokens)
    frames, codes = model._prompt_frames(ids)
    real = LogMel(model.frame_features)(wave)[..., :20]
    wrong = LogMel(model.frame_features)(engine.audio.dequantize(ids, 64))[..., :20]  # frames of e, not of x
    assert (frames - real).abs().mean() < 0.3 * (wrong - real).abs().mean()  # 64 mu-law levels: close, not equal
    assert codes == model.codebook.encode(frames)[0].tolist()
    out = _all(model, prompt=ids, max_new_tokens=300, cond=0, seed=2)
    assert out.shape == (1, 300) and torch.equal(out, _all(model, prompt=ids, max_new_tokens=300, cond=0, seed=2))


def test_given_frames_it_is_its_vocoder_and_obeys_the_protocol():
    model = tiny_pipeline()
    x = torch.randint(0, 64, (2, 45))
    cond = Conditioning(frames=torch.rand(2, 6, 4))
    assert torch.equal(model(x, cond), model.vocoder(x, cond))
    assert_step_matches_forward(model, x, cond)
    assert_prime_then_step_matches(model, x, split=17, cond=cond)


def test_one_checkpoint_round_trip(tmp_path):
    model = tiny_pipeline()
    engine.save_model(model, tmp_path / "p")
    again = engine.load_model(tmp_path / "p")
    assert torch.equal(again.codebook_centroids, model.codebook_centroids)
    kw = dict(max_new_tokens=800, cond=1, seed=3)
    assert torch.equal(_all(model, **kw), _all(again, **kw))
    assert [m.family for m in engine.list_models([tmp_path])] == ["pipeline"]


def test_bad_requests_and_broken_folders_get_one_clear_message(tmp_path):
    model = tiny_pipeline()
    with pytest.raises(UserError, match="pick what to generate"):
        _all(model, max_new_tokens=10)
    with pytest.raises(UserError, match="0..2"):
        _all(model, max_new_tokens=10, cond=7)
    with pytest.raises(UserError, match="one clip at a time"):
        _all(model, max_new_tokens=10, cond=1, batch_size=2)
    engine.save_model(model, tmp_path / "p")
    meta = json.loads((tmp_path / "p" / "config.json").read_text())
    del meta["config"]["vocoder"]
    (tmp_path / "p" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(engine.CheckpointError, match="vocoder"):
        engine.load_model(tmp_path / "p")


def test_plan_codes_are_the_tokens_behind_a_generation():
    model = tiny_pipeline()
    codes = model.plan_codes(1, seed=4)
    clip = _all(model, max_new_tokens=20_000, cond=1, seed=4)
    assert clip.shape[1] == len(codes) * 20  # every planned frame played, no more
    assert codes != model.plan_codes(1, seed=5)


def test_the_cli_says_the_class_and_refuses_none(tmp_path, capsys):
    import soundfile as sf
    from engine import cli
    engine.save_model(tiny_pipeline(), tmp_path / "p")
    out = tmp_path / "o.wav"
    assert cli.main(["--model", str(tmp_path / "p"), "--cond", "2", "--seed", "1", "--seconds", "1",
                     "--out", str(out)]) == 0
    wave, rate = sf.read(str(out))
    assert rate == 8000 and 0 < len(wave) <= 8000
    capsys.readouterr()
    assert cli.main(["--model", str(tmp_path / "p"), "--seconds", "1"]) == 2
    assert "pick one of the class ids 0..2" in capsys.readouterr().err


def test_guidance_mixes_the_class_and_null_rows_and_is_refused_without_a_null_class():
    model = tiny_pipeline(null_class=True)
    assert model.config.null_class and model.decode_options["guidance"] == 1.0
    plain = model.plan_codes(1, seed=3)
    assert model.plan_codes(1, seed=3, guidance=1.0) == plain  # guidance 1 is the conditional LM itself
    guided = model.plan_codes(1, seed=3, guidance=3.0)
    assert guided == model.plan_codes(1, seed=3, guidance=3.0) and guided != plain
    # guidance 0 samples the null row alone: the same tokens whatever the class
    assert model.plan_codes(0, seed=5, guidance=0.0) == model.plan_codes(2, seed=5, guidance=0.0)
    # the mix by hand: log p(null) + g * (log p(class) - log p(null)), after [start, class] / [start, null]
    layout = model.layout
    x = torch.tensor([[layout.start_id, layout.class_id(1)], [layout.start_id, layout.null_id]])
    logits, _ = model.lm.prime(x, model.lm.init_state(2))
    plan = model._start_plan(1, [], engine.sampling.SamplingConfig(), 0, guidance=2.5)
    lp = torch.log_softmax(logits, -1)
    assert torch.allclose(model._guided(plan), (lp[1] + 2.5 * (lp[0] - lp[1]))[None], atol=1e-6)
    audio = _all(model, max_new_tokens=400, cond=1, seed=3, decode_options={"guidance": 3.0})
    assert torch.equal(audio, _all(model, max_new_tokens=400, cond=1, seed=3, decode_options={"guidance": 3.0}))
    for bad in (float("nan"), -1.0, "loud"):
        with pytest.raises(UserError, match="guidance must be"):
            _all(model, max_new_tokens=10, cond=1, seed=3, decode_options={"guidance": bad})
    with pytest.raises(UserError, match="guidance needs a class-conditioned LM"):
        tiny_pipeline().plan_codes(1, seed=3, guidance=2.0)


def test_half_precision_storage_halves_the_weights_and_loads_as_float32(tmp_path):
    model = tiny_pipeline(decoder=True)
    engine.save_model(model, tmp_path / "full")
    engine.save_model(model, tmp_path / "half", half_precision=True)
    full, half = ((tmp_path / d / "model.safetensors").stat().st_size for d in ("full", "half"))
    assert half < 0.6 * full
    again = engine.load_model(tmp_path / "half")
    assert again.token_decoder.out.weight.dtype == torch.float32
    assert torch.equal(again.codebook_centroids, model.codebook_centroids)  # buffers stay float32
    w, w0 = again.vocoder.frame_net.project.weight, model.vocoder.frame_net.project.weight
    assert torch.allclose(w, w0, rtol=1e-3, atol=1e-4) and torch.equal(w, w0.half().float())
    assert _all(again, max_new_tokens=300, cond=1, seed=3).shape == (1, 300)
