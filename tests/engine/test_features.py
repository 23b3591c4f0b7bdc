"""The log-mel front end and the frame-token codebook (engine/features.py, engine/frame_tokens.py)."""
import librosa
import numpy as np
import pytest
import torch

from engine.errors import UserError
from engine.features import FeatureError, LogMel, LogMelConfig
from engine.frame_tokens import CodebookError, FrameCodebook

CFG = LogMelConfig(sample_rate=8000, hop=80, n_fft=320, n_mels=32)


@pytest.mark.parametrize("n", [1, 79, 80, 81, 8000])
def test_one_frame_per_hop_of_samples(n):
    assert LogMel(CFG)(torch.zeros(n)).shape == (1, 32, -(-n // 80))


def test_frames_match_librosa_and_are_centred_on_their_hop():
    wave = torch.randn(2, 4000, generator=torch.Generator().manual_seed(0)) * 0.1
    ours = LogMel(CFG)(wave)
    for b in range(2):  # frame f's window starts at f * hop + hop/2 - n_fft/2: pad librosa's input the same way
        ref = librosa.feature.melspectrogram(y=np.pad(wave[b].numpy(), (320 // 2 - 40, 0)), sr=8000, n_fft=320,
                                             hop_length=80, n_mels=32, center=False, power=2.0)
        n = min(ref.shape[1], 45)
        expect = np.log(np.maximum(ref[:, :n], CFG.floor) / CFG.floor) / np.log(1 / CFG.floor)
        assert np.abs(expect - ours[b, :, :n].numpy()).max() < 1e-5


def test_a_frame_hears_its_own_samples():
    """A click at sample s shows up most in frame s // hop."""
    for s in (400, 1234, 2999):
        wave = torch.zeros(4000)
        wave[s] = 1.0
        energy = (LogMel(CFG)(wave)[0] * np.log(1 / CFG.floor)).exp().sum(0)  # back to mel power / floor
        assert int(energy.argmax()) == s // 80


def test_silence_is_zero_and_bad_input_is_a_user_error():
    assert torch.equal(LogMel(CFG)(torch.zeros(800)), torch.zeros(1, 32, 10))  # silence is 0: what padding is
    for bad in (torch.zeros(0), torch.zeros(2, 3, 4)):
        with pytest.raises(FeatureError, match="waveform"):
            LogMel(CFG)(bad)
    with pytest.raises(UserError, match="n_fft"):
        LogMelConfig(hop=512, n_fft=256)


def _frames(n=600, c=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(8, c, generator=g) * 3
    return centres[torch.randint(0, 8, (n,), generator=g)] + 0.1 * torch.randn(n, c, generator=g)


def test_codebook_is_deterministic_and_round_trips():
    frames = _frames()
    a, b = FrameCodebook.fit(frames, 8, seed=3), FrameCodebook.fit(frames, 8, seed=3)
    assert torch.equal(a.centroids, b.centroids)
    ids = a.encode(frames.T.unsqueeze(0))
    assert ids.shape == (1, 600) and torch.equal(ids, b.encode(frames.T.unsqueeze(0)))
    assert torch.equal(a.encode(a.decode(ids)), ids)  # a centroid is its own nearest centroid
    assert (a.decode(ids)[0].T - frames).abs().mean() < 0.2  # 8 clusters, 8 centroids: decoding is close
    again = FrameCodebook.from_tensors(a.to_tensors())
    assert torch.equal(again.encode(frames.T), ids[0])


def test_codebook_refuses_what_does_not_fit():
    cb = FrameCodebook.fit(_frames(), 8)
    with pytest.raises(CodebookError, match="6 channels"):
        cb.encode(torch.zeros(1, 5, 3))
    with pytest.raises(CodebookError, match="0..7"):
        cb.decode(torch.tensor([0, 8]))
    with pytest.raises(CodebookError, match="at least 8 frames"):
        FrameCodebook.fit(torch.zeros(3, 6), 8)
    with pytest.raises(CodebookError, match="no codebook tensor"):
        FrameCodebook.from_tensors({})
