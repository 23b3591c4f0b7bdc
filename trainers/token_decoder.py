"""Train a codebook's token decoder (engine/layers/token_decoder.py) on an audio folder's frames.

    python -m trainers token-decoder --codebook CODEBOOK/ --data CLIPS/ --out CODEBOOK_WITH_DECODER/

The decoder learns, from the training split's frames, each frame given the tokens around it (squared error in the
codebook's standardised units), so a pipeline's planned tokens decode to frames closer to real ones than their
centroids.  Like the token LM's data (trainers/data/tokens.py) it also reads every clip at `shifts` frame phases.
The held-out split scores it: mean squared error of its frames against the centroids' own, both printed and
written into codebook.json, so whether it helps is measured, not assumed.  A few minutes on one thread.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch

from engine.errors import UserError
from engine.frame_tokens import FrameCodebook, load_codebook, save_codebook
from engine.layers.token_decoder import TokenDecoder, TokenDecoderConfig

from .data.audio import audio_folder
from .train import portable_data_name


@dataclass
class TokenDecoderTraining:
    steps: int = 3000
    batch_size: int = 32
    window: int = 64  # frames per training window
    lr: float = 2e-3
    weight_decay: float = 1e-4
    shifts: int = 4  # frame phases each training clip is read at
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.window, self.shifts) < 1 or not self.lr > 0:
            raise UserError("token decoder training needs steps, batch size, window and shifts >= 1 and lr > 0")


def _standardised(codebook: FrameCodebook, frames: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(ids [F], z [C, F]) per clip."""
    return [(codebook.encode(f), (f - codebook.mean[:, None]) / codebook.std[:, None]) for f in frames if f.shape[-1]]


def heldout_error(codebook: FrameCodebook, clips: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean squared error, in standardised units, of the codebook's decoded frames against the real ones."""
    err = count = 0.0
    for ids, z in clips:
        decoded = (codebook.decode(ids) - codebook.mean[:, None]) / codebook.std[:, None]
        err += float(((decoded - z) ** 2).sum())
        count += z.numel()
    return err / max(count, 1.0)


def train_decoder(codebook: FrameCodebook, train: list[tuple[torch.Tensor, torch.Tensor]], config: TokenDecoderConfig,
                  run: TokenDecoderTraining, log=print) -> TokenDecoder:
    if not train:
        raise UserError("no training frames to learn a token decoder from")
    gen = torch.Generator().manual_seed(run.seed)
    torch.manual_seed(run.seed)
    net = TokenDecoder(codebook.size, codebook.channels, config)
    opt = torch.optim.AdamW(net.parameters(), lr=run.lr, weight_decay=run.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, run.lr, total_steps=run.steps)
    r, n = config.context, run.window
    t0 = time.time()
    for step in range(run.steps):
        ids_b, z_b, mask_b = [], [], []
        for i in torch.randint(len(train), (run.batch_size,), generator=gen).tolist():
            ids, z = train[i]
            lo = int(torch.randint(max(1, ids.shape[0] - n + 1), (1,), generator=gen))
            hi = min(ids.shape[0], lo + n)
            pad = n - (hi - lo)
            window = net.window(ids.unsqueeze(0), lo, hi)[0]
            ids_b.append(torch.nn.functional.pad(window, (0, pad), value=net.pad_id))
            z_b.append(torch.nn.functional.pad(z[:, lo:hi] - codebook.centroids[ids[lo:hi]].T, (0, pad)))
            mask_b.append(torch.nn.functional.pad(torch.ones(hi - lo), (0, pad)))
        ids_t, target, mask = torch.stack(ids_b), torch.stack(z_b), torch.stack(mask_b)
        loss = (((net(ids_t) - target) ** 2).mean(1) * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0 or step == run.steps - 1:
            log(f"step {step}: train loss {loss.item():.4f} (window {n} frames, context {r})  [{time.time() - t0:.0f} s]")
    return net.eval()


def token_decoder_command(codebook: str, data: str, out: str, config: TokenDecoderConfig,
                          run: TokenDecoderTraining, split: str | None = None) -> str:
    """The CLI's `token-decoder`: train one for `codebook` on `data`, write the codebook plus decoder to `out`."""
    book, features, info = load_codebook(codebook)
    if not math.isfinite(run.lr):
        raise UserError("lr must be a finite number")
    split = split or info.get("split") or "auto"
    parts = {"train": [], "val": []}
    for k in range(run.shifts):
        clips = audio_folder(data, features.sample_rate, split=split, features=features,
                             offset=k * features.hop // run.shifts)
        parts["train"] += _standardised(book, clips.frames["train"])
        if k == 0:
            parts["val"] = _standardised(book, clips.frames["val"])
    plain = FrameCodebook(book.centroids, book.mean, book.std)
    net = train_decoder(plain, parts["train"], config, run)
    trained = FrameCodebook(book.centroids, book.mean, book.std, net)
    before, after = heldout_error(plain, parts["val"]), heldout_error(trained, parts["val"])
    meta = {k: v for k, v in info.items() if k not in ("format", "size", "channels", "features", "decoder")}
    save_codebook(trained, features, out, **meta,
                  decoder_training={**asdict(run), "data": portable_data_name(data), "split": split,
                                    "heldout_mse_centroids": before, "heldout_mse_decoder": after})
    return (f"token decoder ({config.layers} x kernel {config.kernel}, width {config.width}, context "
            f"{config.context} tokens each side) trained on {data}: held-out squared error {before:.4f} (centroids) "
            f"-> {after:.4f} (decoder) -> {out}")
