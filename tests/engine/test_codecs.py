"""Audio and text codecs."""
import numpy as np
import pytest
import soundfile as sf
import torch

from engine import audio, text


@pytest.mark.parametrize("mode", ["mulaw", "linear"])
@pytest.mark.parametrize("n", [256, 16])
def test_quantize_round_trip(mode, n):
    ids = torch.arange(n)
    assert torch.equal(audio.quantize(audio.dequantize(ids, n, mode), n, mode), ids)
    wave = torch.linspace(-1, 1, 1001)
    err = (audio.dequantize(audio.quantize(wave, n, mode), n, mode) - wave).abs().max().item()
    assert err < (0.1 if mode == "mulaw" and n == 256 else 2.5 / n * (8 if mode == "mulaw" else 1))


def test_quantize_handles_nan_and_out_of_range():
    ids = audio.quantize(torch.tensor([float("nan"), 5.0, -5.0, float("inf")]), 256, "mulaw")
    assert ids.min() >= 0 and ids.max() <= 255
    assert ids[1] == 255 and ids[2] == 0
    silence = audio.quantize(torch.zeros(3), 256, "mulaw")
    assert audio.dequantize(silence, 256, "mulaw").abs().max() < 1e-3  # mu-law id 128 is 8.6e-5, the nearest to 0


def test_read_audio_stereo_44k_int16_resampled_to_mono(tmp_path):
    rate = 44100
    t = np.arange(rate) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, -left * 0 + left], axis=1)
    f = tmp_path / "s.wav"
    sf.write(f, (stereo * 32767).astype(np.int16), rate, subtype="PCM_16")
    wave, sr = audio.read_audio(f, 16000)
    assert sr == 16000 and wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 16000) <= 1
    assert 0.45 < np.abs(wave).max() <= 0.52


def test_read_audio_formats_and_silence(tmp_path):
    wave = np.zeros(8000, dtype=np.float32)
    for ext in ("flac", "ogg"):
        f = tmp_path / f"silence.{ext}"
        sf.write(f, wave, 8000)
        got, sr = audio.read_audio(f)
        assert sr == 8000 and np.abs(got).max() < 1e-3


@pytest.mark.parametrize("content,match", [(b"", "empty"), (b"RIFF\x00\x00garbage" * 10, "cannot read")])
def test_read_audio_bad_files(tmp_path, content, match):
    f = tmp_path / "bad.wav"
    f.write_bytes(content)
    with pytest.raises(audio.AudioError, match=match):
        audio.read_audio(f)
    with pytest.raises(audio.AudioError, match="not found"):
        audio.read_audio(tmp_path / "missing.wav")


def test_to_mono_float_int_formats():
    assert np.allclose(audio.to_mono_float(np.array([-32768, 0, 32767], dtype=np.int16)), [-1, 0, 1], atol=1e-4)
    assert audio.to_mono_float(np.array([[0.5, 1.0], [np.nan, 0.0]], dtype=np.float32)).tolist() == [0.75, 0.0]


def test_write_wav_round_trip(tmp_path):
    f = tmp_path / "out.wav"
    audio.write_wav(f, torch.linspace(-0.5, 0.5, 100), 8000)
    back, sr = audio.read_audio(f)
    assert sr == 8000 and np.allclose(back, np.linspace(-0.5, 0.5, 100), atol=1e-3)


def test_text_codec_never_raises():
    s = "héllo ✓ 🙂"
    assert text.decode(text.encode(s)) == s
    ids = text.encode("🙂")
    assert text.decode(ids[:2]) == "\ufffd"  # a partial sequence decodes, never raises
    assert text.decode([104, 300, 105]) == "hi"  # special ids are dropped
    dec = text.StreamDecoder()
    assert dec.feed(ids[:1]) + dec.feed(ids[1:3]) == "" and dec.feed(ids[3:]) == "🙂"
    assert text.encode("\ud800") == list("?".encode())  # a lone surrogate is replaced, not an error
