"""Per-family presets: CPU-sized model and training defaults, "small" and "base", and named recipes.

Adding one is a single call, in this module or in the family's own trainer code:

    register_preset("bytenet", "small", model=dict(layers=8, channels=128), train=dict(seq_len=256, lr=1e-3))

`model` holds fields of the family's config dataclass; `train` holds TrainConfig fields.  A preset may also
name a `loss` (see trainers.losses) for families whose batches need special handling.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import UserError


@dataclass
class Preset:
    family: str
    name: str
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_PRESETS: dict[tuple[str, str], Preset] = {}


class PresetError(UserError):
    pass


def register_preset(family: str, name: str, model: dict | None = None, train: dict | None = None,
                    description: str = "") -> Preset:
    preset = Preset(family, name, dict(model or {}), dict(train or {}), description)
    _PRESETS[(family, name)] = preset
    return preset


def get_preset(family: str, name: str) -> Preset:
    if (family, name) not in _PRESETS:
        have = sorted(n for f, n in _PRESETS if f == family)
        raise PresetError(f"no preset {name!r} for family {family!r}"
                          + (f"; presets: {', '.join(have)}" if have else "; this family has no presets yet"))
    return _PRESETS[(family, name)]


def presets(family: str | None = None) -> list[Preset]:
    return [p for (f, _), p in sorted(_PRESETS.items()) if family is None or f == family]


# ---- WaveNet -----------------------------------------------------------------------------------------------
register_preset("wavenet", "small",
                model=dict(blocks=2, layers_per_block=8, residual_channels=32, gate_channels=64, skip_channels=64,
                           sample_rate=16000),
                train=dict(batch_size=8, seq_len=1024, lr=2e-3, warmup_steps=100, max_steps=2000),
                description="2 x 8 layers, 32 residual channels: CPU minutes")
register_preset("wavenet", "base",
                model=dict(blocks=3, layers_per_block=10, residual_channels=64, gate_channels=128,
                           skip_channels=256, sample_rate=16000),
                train=dict(batch_size=8, seq_len=4096, lr=1e-3, warmup_steps=500, max_steps=50000),
                description="3 x 10 layers, 64 residual channels: GPU hours")
register_preset("wavenet", "digits",
                model=dict(blocks=2, layers_per_block=8, residual_channels=32, gate_channels=64, skip_channels=128,
                           sample_rate=8000, n_classes=256, quantization="mulaw"),
                train=dict(labels="prefix", split="auto", trailing_silence=0.1, batch_size=8, seq_len=1024,
                           lr=2e-3, warmup_steps=200, max_steps=20000, eval_every=250, eval_tokens=100_000,
                           checkpoint_every=125,
                           license="CC BY-SA 4.0",
                           data_source="Free Spoken Digit Dataset (Zohar Jackson and contributors), "
                                       "https://github.com/Jakobovski/free-spoken-digit-dataset"),
                description="the demo model: FSDD at 8 kHz, mu-law 256, conditioned on the digit")

# Vocoders: WaveNets conditioned on log-mel frames (local conditioning).  2 x 8 layers of 32/64/64 channels, so the
# cached generator runs several times real time on one CPU thread; the frames carry what to play, so the receptive
# field (511 samples) only has to make the waveform between them.  Copy-synthesis: `python -m engine --resynth`.
_VOCODER = dict(blocks=2, layers_per_block=8, residual_channels=32, gate_channels=64, skip_channels=64,
                n_classes=256, quantization="mulaw", local_cond_hidden=64, local_cond_layers=2)


def _vocoder(sample_rate: int, hop: int, n_fft: int, n_mels: int) -> dict:
    return dict(_VOCODER, sample_rate=sample_rate, local_cond_channels=n_mels, local_cond_hop=hop,
                features=dict(sample_rate=sample_rate, hop=hop, n_fft=n_fft, n_mels=n_mels))


register_preset("wavenet", "vocoder-digits", model=_vocoder(8000, 64, 256, 40),
                train=dict(split="fsdd", batch_size=8, seq_len=1024, lr=2e-3, warmup_steps=200, max_steps=200000,
                           eval_every=500, eval_tokens=100_000, checkpoint_every=250, license="CC BY-SA 4.0",
                           data_source="Free Spoken Digit Dataset (Zohar Jackson and contributors), "
                                       "https://github.com/Jakobovski/free-spoken-digit-dataset; takes 0-4 held out"),
                description="vocoder: FSDD at 8 kHz, mu-law 256, conditioned on 40 log-mel bands every 8 ms")
register_preset("wavenet", "vocoder-music", model=_vocoder(16000, 128, 512, 64),
                train=dict(split="tail", val_fraction=0.1, gain_db=-40.0,  # four tracks hold few quiet passages
                           batch_size=8, seq_len=1024, lr=2e-3, warmup_steps=200,
                           max_steps=200000, eval_every=500, eval_tokens=131072, checkpoint_every=250,
                           license="1 public domain (PD Mark 1.0) + 3 CC BY 3.0 tracks (Kevin MacLeod x2, Karissa "
                                   "Hobbs); credits in docs/TRAINING.md, \"Public datasets\"",
                           data_source="4 tracks from librosa's example audio, https://github.com/librosa/data "
                                       "(audio/), decoded to 16 kHz mono; the last 10 % of each track held out"),
                description="vocoder: the music folder at 16 kHz, mu-law 256, conditioned on 64 log-mel bands "
                            "every 8 ms; half the training windows played up to 40 dB quieter")


# ---- Text models: ByteNet LM, RNN LM, seq2seq ----------------------------------------------------------------
register_preset("bytenet", "small",
                model=dict(d=64, sets=1, set_size=5, kernel_size=3, block="residual", norm="layer"),
                train=dict(batch_size=16, seq_len=128, lr=3e-3, warmup_steps=50, max_steps=2000, eval_every=250,
                           eval_tokens=32768),
                description="1 set of 5 residual blocks (1..16), 128-channel stream, 63-byte field: CPU minutes")
register_preset("bytenet", "base",
                model=dict(d=128, sets=6, set_size=5, kernel_size=3, block="residual", norm="layer"),
                train=dict(batch_size=32, seq_len=512, lr=1e-3, warmup_steps=500, max_steps=50000),
                description="6 sets (30 blocks, a 373-byte field), 256-channel stream: GPU hours")
register_preset("bytenet", "shakespeare",
                model=dict(d=64, sets=2, set_size=5, kernel_size=3, block="residual", norm="layer"),
                train=dict(batch_size=16, seq_len=128, lr=3e-3, warmup_steps=50, max_steps=100000,
                           eval_every=250, eval_tokens=65536, checkpoint_every=250, license="Public domain",
                           data_source="Tiny Shakespeare (char-rnn, Andrej Karpathy), "
                                       "https://github.com/karpathy/char-rnn; nanoGPT's 90/10 split"),
                description="the demo byte LM: 2 sets of 5 residual blocks, 125-byte field; train with --minutes")
register_preset("rnn", "small",
                model=dict(cell="lstm", hidden_size=128, layers=2),
                train=dict(batch_size=32, seq_len=64, lr=3e-3, warmup_steps=50, max_steps=2000, eval_every=250),
                description="2-layer LSTM, 128 units: CPU minutes")
register_preset("rnn", "base",
                model=dict(cell="lstm", hidden_size=512, layers=3, dropout=0.2),
                train=dict(batch_size=64, seq_len=256, lr=1e-3, warmup_steps=500, max_steps=50000),
                description="3-layer LSTM, 512 units: GPU hours")
register_preset("rnn", "names",
                model=dict(cell="gru", hidden_size=128, layers=1, eos_id=10),  # one name per generated row
                train=dict(data_kind="names", batch_size=32, seq_len=20, lr=5e-3, warmup_steps=50, max_steps=100000,
                           eval_every=250, eval_tokens=30000, checkpoint_every=250,
                           license="MIT (makemore repository); names from SSA 2018 baby-name data",
                           data_source="makemore names.txt (Andrej Karpathy), https://github.com/karpathy/makemore; "
                                       "makemore's 80/10/10 split"),
                description="the demo names model (set --set cell=... to compare cells); train with --minutes")
register_preset("seq2seq", "small",
                model=dict(encoder="bytenet", decoder="rnn", attention="additive", d=32, enc_sets=1,
                           cell="gru", hidden_size=96),
                train=dict(data_kind="pairs", batch_size=32, seq_len=48, lr=3e-3, warmup_steps=50,
                           max_steps=2000, eval_every=250),
                description="ByteNet source network + GRU decoder with additive attention: CPU minutes")
register_preset("seq2seq", "base",
                model=dict(encoder="bytenet", decoder="bytenet", d=128, enc_sets=3, dec_sets=3),
                train=dict(data_kind="pairs", batch_size=64, seq_len=256, lr=1e-3, warmup_steps=500,
                           max_steps=50000),
                description="ByteNet source and target networks (3 sets each): GPU hours")
register_preset("seq2seq", "dates",
                model=dict(encoder="bytenet", decoder="rnn", attention="additive", d=48, enc_sets=1,
                           cell="gru", hidden_size=128),
                train=dict(data_kind="pairs", batch_size=64, seq_len=24, lr=3e-3, warmup_steps=50, max_steps=100000,
                           eval_every=250, eval_tokens=20000, checkpoint_every=250,
                           license="generated by this project (scripts/make_dates.py) from Babel's CLDR data "
                                   "(Unicode license)",
                           data_source="dates written out in several languages -> ISO 8601, generated with Babel"),
                description="the demo translator: written-out dates in several languages -> ISO form")


# ---- SampleRNN and the hierarchical names model ---------------------------------------------------------------
_MUSIC = dict(split="tail", val_fraction=0.1,
              license="1 public domain (PD Mark 1.0) + 3 CC BY 3.0 tracks (Kevin MacLeod x2, Karissa Hobbs); "
                      "credits in docs/TRAINING.md, \"Public datasets\"",
              data_source="4 tracks from librosa's example audio, https://github.com/librosa/data (audio/), "
                          "decoded to 16 kHz mono; the last 10 % of each track held out")
_FSDD = dict(labels="prefix", split="fsdd", license="CC BY-SA 4.0",
             data_source="Free Spoken Digit Dataset (Zohar Jackson and contributors), "
                         "https://github.com/Jakobovski/free-spoken-digit-dataset; takes 0-4 held out")
_SRNN = dict(dim=256, rnn_layers=1, cell="gru", embed_dim=32, mlp_dim=128, n_classes=256, quantization="linear")
register_preset("samplernn", "small", model=dict(_SRNN, frame_sizes=[16], sample_rate=16000),
                train=dict(batch_size=8, seq_len=512, lr=2e-3, warmup_steps=50, max_steps=2000, eval_every=250,
                           eval_tokens=65536),
                description="2-tier (frame 16), GRU 256, 8-bit linear: CPU minutes; stateful TBPTT chunks")
register_preset("samplernn", "base",
                model=dict(dim=1024, rnn_layers=1, cell="gru", embed_dim=256, mlp_dim=1024, frame_sizes=[8, 2],
                           sample_rate=16000, quantization="linear"),
                train=dict(batch_size=64, seq_len=512, lr=1e-3, warmup_steps=500, max_steps=100000),
                description="the paper's 3-tier (8, 2) with 1024 units: GPU hours")
register_preset("samplernn", "music",
                model=dict(_SRNN, frame_sizes=[16], sample_rate=16000),
                train=dict(_MUSIC, batch_size=16, seq_len=512, lr=2e-3, warmup_steps=100, max_steps=100000,
                           eval_every=500, eval_tokens=131072, checkpoint_every=250),
                description="the demo: 2-tier SampleRNN on the music folder, 16 kHz, 8-bit linear; use --minutes")
register_preset("samplernn", "digits",
                model=dict(_SRNN, frame_sizes=[16], sample_rate=8000),
                train=dict(_FSDD, trailing_silence=0.1, batch_size=16, seq_len=512, lr=2e-3, warmup_steps=100,
                           max_steps=100000, eval_every=500, eval_tokens=131072, checkpoint_every=250),
                description="the demo: 2-tier SampleRNN on FSDD at 8 kHz, 8-bit linear, conditioned on the digit")
register_preset("rnn", "digit-tokens",
                model=dict(cell="gru", hidden_size=256, layers=2, embed_size=64, dropout=0.25),
                train=dict(_FSDD, token_shifts=8, class_dropout=0.15, hold_class=True, batch_size=32, seq_len=160,
                           lr=3e-3, warmup_steps=100, max_steps=20000, eval_every=250, eval_tokens=10**9,
                           checkpoint_every=250),
                description="the digits pipeline's planner: a GRU over FSDD's frame tokens, the digit as the "
                            "first token and held at every step; give --codebook (python -m trainers codebook)")
register_preset("rnn", "music-tokens",
                model=dict(cell="gru", hidden_size=256, layers=2, embed_size=64, dropout=0.25),
                train=dict(_MUSIC, token_shifts=4, batch_size=16, seq_len=256, lr=3e-3, warmup_steps=100,
                           max_steps=20000, eval_every=250, eval_tokens=10**9, checkpoint_every=250),
                description="the music pipeline's planner: a GRU over the music folder's frame tokens (no classes); "
                            "give --codebook (python -m trainers codebook --split tail)")
register_preset("hierarchical", "small", model=dict(n_embd=24, levels=3, widths=[128]),
                train=dict(batch_size=64, seq_len=64, lr=3e-3, warmup_steps=50, max_steps=2000, eval_every=250),
                description="makemore part 5's shape: 3 levels of 128 (context 8)")
register_preset("hierarchical", "names",
                model=dict(n_embd=24, levels=4, widths=[96, 112, 112, 96], norm="layernorm", dropout=0.08, eos_id=10,
                           alphabet="data"),
                train=dict(data_kind="names", batch_size=128, seq_len=8, lr=3e-3, warmup_steps=200, max_steps=100000,
                           min_lr_ratio=0.02, eval_every=1000, eval_tokens=10**9, checkpoint_every=1000,
                           weight_decay=0.01,
                           license="MIT (makemore); names from the SSA 2018 baby-name data",
                           data_source="makemore names.txt (Andrej Karpathy), https://github.com/karpathy/makemore; "
                                       "its split: random.seed(42) shuffle, 80/10/10"),
                description="4 levels (context 16), a-z + newline alphabet, 77.2K parameters; use --minutes. "
                            "The shipped model is distilled from three of these (docs/TRAINING.md)")
