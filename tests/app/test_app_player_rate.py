"""The live player's upsampling: chunk by chunk equals the whole clip at once, so chunk boundaries never click."""
import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from app.player_rate import PlayerUpsampler, player_factor


def test_low_rates_are_raised_to_at_least_16_khz_by_a_whole_factor():
    assert [player_factor(r) for r in (8000, 11025, 16000, 22050, 4000)] == [2, 2, 1, 1, 4]


@pytest.mark.parametrize("sizes", [[4000, 128, 128, 3], [1, 2, 3, 5, 8, 13, 2000], [7000]])
def test_chunked_upsampling_equals_upsampling_the_whole_clip(sizes):
    gen = torch.Generator().manual_seed(0)
    wave = torch.rand(sum(sizes), generator=gen) * 2 - 1
    up = PlayerUpsampler(2)
    parts, at = [], 0
    for n in sizes:
        parts.append(up.feed(wave[at:at + n]))
        at += n
    parts.append(up.flush())
    chunked = torch.cat(parts)
    whole = AF.resample(wave, 1, 2)
    assert chunked.shape == whole.shape
    assert torch.allclose(chunked, whole, atol=1e-5)


def test_a_sine_keeps_its_pitch_and_factor_one_passes_chunks_through():
    t = np.arange(8000) / 8000
    up = PlayerUpsampler(2)
    out = torch.cat([up.feed(torch.from_numpy(np.sin(2 * np.pi * 440 * t[i:i + 500]))) for i in range(0, 8000, 500)]
                    + [up.flush()]).numpy()
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 16000 / len(out) - 440) < 2
    same = PlayerUpsampler(1)
    chunk = torch.rand(100)
    assert torch.equal(same.feed(chunk), chunk) and len(same.flush()) == 0
