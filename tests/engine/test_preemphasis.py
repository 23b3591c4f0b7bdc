"""Pre-emphasis in the audio codec (engine.audio.encode_audio / decode_audio / AudioDecoder) and in the models and
data that use it: the round trip, chunked decoding, a continued prompt, the noise shaping it exists for, training
data, the fast path and checkpoints."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

import engine
from engine.audio import (AudioDecoder, decode_audio, deemphasize, dequantize, emphasize, encode_audio, quantize)
from engine.errors import UserError
from engine.protocol import TokenSpec
from trainers.data.audio import audio_folder

RATE = 16000
SPEC = TokenSpec("audio", 256, RATE, "mulaw", start_id=128, preemphasis=0.85)
PLAIN = TokenSpec("audio", 256, RATE, "mulaw", start_id=128)


def music(n: int = RATE, seed: int = 0) -> torch.Tensor:
    """Low partials, as music has: most power under 1 kHz."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / RATE
    f = 110 * (1 + torch.randint(0, 6, (4,), generator=g))
    return sum(0.12 * torch.sin(2 * torch.pi * fi * t + i) for i, fi in enumerate(f.tolist()))


def test_deemphasize_inverts_emphasize_and_zero_is_the_plain_codec():
    x = music()
    assert torch.allclose(deemphasize(emphasize(x, 0.85), 0.85), x, atol=1e-6)
    ids = encode_audio(x, SPEC)
    assert (decode_audio(ids, SPEC) - x).abs().max() < 0.02  # quantization error only
    assert torch.equal(encode_audio(x, PLAIN), quantize(x))
    assert torch.equal(decode_audio(quantize(x), PLAIN), dequantize(quantize(x)))


def test_chunked_decoding_equals_whole_and_a_continuation_joins_its_prompt():
    ids = encode_audio(music(), SPEC)
    whole = decode_audio(ids, SPEC)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        cuts = sorted(torch.randint(0, len(ids), (6,), generator=g).tolist())
        d = AudioDecoder(SPEC)
        pieces = [d(ids[a:b]) for a, b in zip([0] + cuts, cuts + [len(ids)])]
        assert torch.equal(torch.cat(pieces), whole)  # sample for sample
    prompt, rest = ids[:5000], ids[5000:]  # what the app and CLI decode: the continuation, after the prompt
    assert torch.equal(AudioDecoder(SPEC, prompt)(rest), whole[5000:])
    short = ids[4000:4005]  # a batch's prompt [B, T]: one row's waveform, not the rows run together (a short
    batch = short.unsqueeze(0).expand(3, -1)  # prompt, so the rows before would still be heard in the state)
    assert torch.equal(AudioDecoder(SPEC, batch)(ids[4005:4100]), decode_audio(ids[4000:4100], SPEC)[5:])
    jump = (decode_audio(rest, SPEC)[0] - whole[4999]).abs()  # decoded from rest alone: starts from 0, a click
    assert jump > 2 * (whole[5000] - whole[4999]).abs()


def test_pre_emphasis_moves_a_models_sampling_noise_under_the_music():
    """The reason for the option: the same error in ids (a model a few quantization steps off) costs less noise
    above 2 kHz, where music has little power, with pre-emphasis than without."""
    x = music()
    g = torch.Generator().manual_seed(2)
    off = torch.randint(-3, 4, x.shape, generator=g)

    def high_noise(spec):
        y = decode_audio((encode_audio(x, spec) + off).clamp(0, 255), spec)
        noise = np.abs(np.fft.rfft((y - x).numpy())) ** 2
        return noise[int(len(noise) * 2000 / (RATE / 2)):].sum()
    assert high_noise(SPEC) < 0.25 * high_noise(PLAIN)


def test_wavenet_config_checks_and_stores_pre_emphasis(tmp_path):
    with pytest.raises(UserError, match="preemphasis"):
        engine.build_model("wavenet", preemphasis=1.0)
    with pytest.raises(UserError, match="preemphasis"):
        engine.build_model("wavenet", preemphasis=-0.1)
    wn = engine.build_model("wavenet", layers_per_block=2, blocks=1, residual_channels=4, gate_channels=4,
                            skip_channels=4, sample_rate=RATE, preemphasis=0.85)
    assert wn.tokens.preemphasis == 0.85
    back = engine.load_model(engine.save_model(wn, tmp_path / "pe", data="test"))
    assert back.tokens == wn.tokens


def test_fast_path_serves_a_pre_emphasis_wavenet_with_the_eager_ids():
    torch.manual_seed(0)
    wn = engine.build_model("wavenet", layers_per_block=3, blocks=1, residual_channels=8, gate_channels=8,
                            skip_channels=8, sample_rate=RATE, preemphasis=0.85).eval()
    eager = engine.generate_all(wn, None, max_new_tokens=300, seed=3, backend="eager")
    fast = engine.generate_all(wn, None, max_new_tokens=300, seed=3, backend="fast")
    assert torch.equal(eager, fast)


def test_training_data_holds_the_pre_emphasized_ids_and_the_real_frames(tmp_path):
    from engine.features import LogMelConfig
    wave = music(4000).numpy()
    sf.write(tmp_path / "a.wav", wave, RATE, subtype="FLOAT")
    sf.write(tmp_path / "b.wav", wave[::-1].copy(), RATE, subtype="FLOAT")
    features = LogMelConfig(sample_rate=RATE, hop=128, n_fft=512, n_mels=16)
    plain = audio_folder(tmp_path, RATE, split="fraction", features=features)
    pe = audio_folder(tmp_path, RATE, split="fraction", features=features, preemphasis=0.85)
    for part in ("train", "val"):
        for a, b in zip(plain.frames[part], pe.frames[part]):
            assert torch.equal(a, b)  # the frames describe the waveform itself
        for seq in pe.sequences[part]:
            assert seq[0] == 128
    first = pe.sequences["train"][0][1:] if pe.sequences["train"] else pe.sequences["val"][0][1:]
    clip = torch.from_numpy(wave if torch.equal(first, encode_audio(torch.from_numpy(wave), SPEC)) else
                            wave[::-1].copy())
    assert torch.equal(first, encode_audio(clip, SPEC))
