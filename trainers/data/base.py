"""What every dataset hands the trainer: token sequences per split, optional class labels, and batches.

A dataset is a list of id sequences per split ("train", "val"), each already framed the way generation starts
(the family's start id first), plus an optional class label per sequence (global conditioning) and an optional
source sequence per item (seq2seq).  Batching is shared: random training windows (`sample_batch`), consecutive
chunks of long sequences for stateful truncated BPTT (`StreamSampler`), and a deterministic pass over the
held-out split that scores every target exactly once (`eval_batches`).

Windows carry `fresh`: True when a row starts at the very beginning of its sequence.  A row that starts at the
start has nothing before it, which is exactly what a model sees when generation starts from an empty state, so
all its positions count; a row cut from the middle of a sequence only counts positions with a full receptive
field of real context (see trainers.losses).

An audio dataset made for a locally conditioned model (a vocoder) also holds each sequence's feature frames
(`frames`, engine.features; frame f describes the samples that positions f*hop .. (f+1)*hop - 1 predict).  A
batch then carries, per row, the frames around its window (`frame_margin` frames either side, enough for the
model's frame network and interpolation) and `first_sample`, the timeline sample its position 0 predicts, so
the model conditions every position exactly as it would on the whole clip.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from engine.errors import UserError

log = logging.getLogger("trainers.data")
SPLITS = ("train", "val")


class DataError(UserError):
    """A dataset that cannot be used; the message is one line fit to show a user."""


@dataclass
class Batch:
    """One training or evaluation batch.  `x[:, t]` is fed, `y[:, t]` (= the next token) is predicted."""

    x: torch.Tensor  # LongTensor [B, T] inputs
    y: torch.Tensor  # LongTensor [B, T] next-token targets
    mask: torch.Tensor  # BoolTensor [B, T]: targets that exist (False on right padding)
    fresh: torch.Tensor  # BoolTensor [B]: the row starts at the beginning of its sequence
    cond: torch.Tensor | None = None  # LongTensor [B] class ids (global conditioning)
    src: torch.Tensor | None = None  # LongTensor [B, S] source ids (seq2seq), right-padded
    src_mask: torch.Tensor | None = None  # BoolTensor [B, S]
    reset: torch.Tensor | None = None  # BoolTensor [B]: stateful chunks only; the row begins a new sequence
    frames: torch.Tensor | None = None  # [B, C, F] feature frames around each row's window (local conditioning)
    first_sample: torch.Tensor | None = None  # LongTensor [B]: the frames' timeline sample of position 0

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(**{f.name: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                        for f in dataclasses.fields(self) for v in [getattr(self, f.name)]})

    @property
    def size(self) -> int:
        return self.x.shape[0]


@dataclass
class SequenceDataset:
    """Id sequences per split; subclasses (text corpus, names, pairs, audio folder) only fill these in."""

    sequences: dict[str, list[torch.Tensor]]  # split -> 1-D LongTensors, each framed (start id first)
    labels: dict[str, list[int]] | None = None  # split -> class id per sequence
    sources: dict[str, list[torch.Tensor]] | None = None  # split -> source ids per sequence (seq2seq)
    label_names: list[str] = field(default_factory=list)  # class id -> name
    pad_id: int = 0
    kind: str = "text"
    weighting: str = "length"  # "length": every token equally likely; "uniform": every item equally likely
    description: str = ""
    frames: dict[str, list[torch.Tensor]] | None = None  # split -> [C, F] feature frames per sequence
    frame_hop: int = 0  # samples per frame
    frame_margin: int = 0  # frames a batch carries beyond each side of a window

    def __post_init__(self) -> None:
        for split in SPLITS:
            seqs = [s for s in self.sequences.get(split, [])]
            if not any(len(s) >= 2 for s in seqs):
                raise DataError(f"{self.description or 'dataset'}: the {split} split has no sequence of two or more "
                                "tokens; nothing to learn from" if split == "train" else
                                f"{self.description or 'dataset'}: the held-out ({split}) split is empty; "
                                "add more data or change the split")

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def num_tokens(self, split: str) -> int:
        return sum(len(s) - 1 for s in self.sequences[split])

    def shard(self, rank: int, world: int) -> "SequenceDataset":
        """This rank's share of the training split (every rank keeps the whole held-out split)."""
        if world <= 1:
            return self
        seqs, labels, sources, frames = self.sequences["train"], None, None, None
        if len(seqs) >= world:
            idx = list(range(rank, len(seqs), world))
        else:  # one long sequence (a text corpus): cut it into contiguous parts
            idx = None
        if idx is not None:
            new_train = [seqs[i] for i in idx]
            if self.labels:
                labels = {**self.labels, "train": [self.labels["train"][i] for i in idx]}
            if self.sources:
                sources = {**self.sources, "train": [self.sources["train"][i] for i in idx]}
            if self.frames:
                frames = {**self.frames, "train": [self.frames["train"][i] for i in idx]}
        else:
            new_train = []
            for s in seqs:
                n = len(s) // world
                new_train.append(s[rank * n: (rank + 1) * n + 1])
        if idx is None and self.frames:
            raise DataError("a dataset with frames shards by sequence: give it at least one file per rank")
        return dataclasses.replace(self, sequences={**self.sequences, "train": new_train},
                                   labels=labels or self.labels, sources=sources or self.sources,
                                   frames=frames or self.frames)

    # ---- batching -----------------------------------------------------------------------------------------
    def _weights(self, split: str) -> torch.Tensor:
        """Sampling weight per sequence, computed once per split (a names list has 25K items; every batch asks)."""
        cache = self.__dict__.setdefault("_weight_cache", {})
        if split not in cache:
            lens = torch.tensor([max(len(s) - 1, 0) for s in self.sequences[split]], dtype=torch.float)
            cache[split] = lens if self.weighting == "length" else (lens > 0).float()
        return cache[split]

    def sample_batch(self, split: str, batch_size: int, window: int, gen: torch.Generator) -> Batch:
        """Random windows of `window` inputs (+1 for the targets), right-padded where a sequence is shorter."""
        seqs = self.sequences[split]
        picks = torch.multinomial(self._weights(split), batch_size, replacement=True, generator=gen).tolist()
        x = torch.full((batch_size, window), self.pad_id, dtype=torch.long)
        y = torch.full((batch_size, window), self.pad_id, dtype=torch.long)
        mask = torch.zeros(batch_size, window, dtype=torch.bool)
        fresh = torch.zeros(batch_size, dtype=torch.bool)
        starts = []
        for row, i in enumerate(picks):
            s = seqs[i]
            span = len(s) - 1 - window
            start = int(torch.randint(0, span + 1, (1,), generator=gen)) if span > 0 else 0
            piece = s[start: start + window + 1]
            n = len(piece) - 1
            x[row, :n], y[row, :n], mask[row, :n] = piece[:-1], piece[1:], True
            fresh[row] = start == 0
            starts.append(start)
        return self._finish(Batch(x, y, mask, fresh), split, picks, starts)

    def _frames_around(self, split: str, picks: list[int], starts: list[int], width: int) -> tuple[torch.Tensor,
                                                                                                  torch.Tensor]:
        """Each row's frames from `frame_margin` frames before its window to as many after (zeros, silence, past
        the clip), [B, C, F], and the timeline sample of each row's position 0 in those frames, [B]."""
        hop, margin = self.frame_hop, self.frame_margin
        n = -(-width // hop) + 2 * margin + 1
        seq_frames = [self.frames[split][i] for i in picks]
        out = seq_frames[0].new_zeros(len(picks), seq_frames[0].shape[0], n)
        first = torch.zeros(len(picks), dtype=torch.long)
        for row, (f, start) in enumerate(zip(seq_frames, starts)):
            lo = max(0, start // hop - margin)
            piece = f[:, lo:lo + n]
            out[row, :, :piece.shape[1]] = piece
            first[row] = start - lo * hop
        return out, first

    def _finish(self, batch: Batch, split: str, picks: list[int], starts: list[int] | None = None) -> Batch:
        if self.labels:
            batch.cond = torch.tensor([self.labels[split][i] for i in picks], dtype=torch.long)
        if self.sources:
            srcs = [self.sources[split][i] for i in picks]
            width = max(len(s) for s in srcs)
            batch.src = torch.full((len(srcs), width), self.pad_id, dtype=torch.long)
            batch.src_mask = torch.zeros(len(srcs), width, dtype=torch.bool)
            for row, s in enumerate(srcs):
                batch.src[row, :len(s)], batch.src_mask[row, :len(s)] = s, True
        if self.frames:
            if starts is None:
                raise ValueError("frames need each row's window start")
            batch.frames, batch.first_sample = self._frames_around(split, picks, starts, batch.x.shape[1])
        return batch

    def eval_batches(self, split: str, batch_size: int, chunk: int, context: int,
                     max_tokens: int | None = None) -> Iterator[Batch]:
        """Deterministic windows scoring every target of `split` once (up to `max_tokens` targets).

        Each window holds `context` tokens of history before its `chunk` scored targets (fewer at the start of a
        sequence, where the row is fresh), so a convolutional model sees a full receptive field for each target.
        """
        rows: list[tuple[int, int, int]] = []  # (sequence, first scored target, history start)
        total = 0
        order = range(len(self.sequences[split]))
        if max_tokens is not None and len(order) > 1:  # a capped pass samples every k-th item, not the first few
            stride = max(1, -(-self.num_tokens(split) // max_tokens))
            order = [*range(0, len(order), stride)] + [i for i in order if i % stride]
        for i in order:
            s = self.sequences[split][i]
            for a in range(0, len(s) - 1, chunk):
                rows.append((i, a, max(0, a - context)))
                total += min(chunk, len(s) - 1 - a)
                if max_tokens is not None and total >= max_tokens:
                    break
            if max_tokens is not None and total >= max_tokens:
                break
        for b in range(0, len(rows), batch_size):
            group = rows[b: b + batch_size]
            width = max(min(a + chunk, len(self.sequences[split][i]) - 1) - h for i, a, h in group)
            x = torch.full((len(group), width), self.pad_id, dtype=torch.long)
            y = torch.full_like(x, self.pad_id)
            mask = torch.zeros(len(group), width, dtype=torch.bool)
            fresh = torch.zeros(len(group), dtype=torch.bool)
            for row, (i, a, h) in enumerate(group):
                s = self.sequences[split][i]
                end = min(a + chunk, len(s) - 1)
                x[row, :end - h], y[row, :end - h] = s[h:end], s[h + 1:end + 1]
                mask[row, a - h:end - h] = True
                fresh[row] = h == 0
            # scored positions are exactly the masked ones; history positions are inputs only
            yield self._finish(Batch(x, y, mask, fresh), split, [i for i, _, _ in group], [h for _, _, h in group])


class StreamSampler:
    """Consecutive chunks of long sequences, one running sequence per row (stateful truncated BPTT).

    Row r walks through its current sequence `chunk` tokens at a time; when it runs out, the row draws a new
    sequence and its `reset` flag is True for that batch, telling the family to start that row's state afresh.
    """

    def __init__(self, data: SequenceDataset, split: str, batch_size: int, chunk: int, gen: torch.Generator):
        self.data, self.split, self.chunk, self.gen = data, split, chunk, gen
        self.rows = [self._draw() for _ in range(batch_size)]  # (sequence index, position)
        self.new = [True] * batch_size

    def _draw(self) -> list[int]:
        return [int(torch.multinomial(self.data._weights(self.split), 1, generator=self.gen)), 0]

    def next(self) -> Batch:
        seqs = self.data.sequences[self.split]
        n = len(self.rows)
        x = torch.full((n, self.chunk), self.data.pad_id, dtype=torch.long)
        y = torch.full_like(x, self.data.pad_id)
        mask = torch.zeros(n, self.chunk, dtype=torch.bool)
        reset = torch.tensor(self.new, dtype=torch.bool)
        fresh = torch.zeros(n, dtype=torch.bool)
        picks = [i for i, _ in self.rows]  # labels follow the sequence each row reads in this batch
        starts = [pos for _, pos in self.rows]
        for r, (i, pos) in enumerate(self.rows):
            s = seqs[i]
            piece = s[pos: pos + self.chunk + 1]
            k = len(piece) - 1
            x[r, :k], y[r, :k], mask[r, :k] = piece[:-1], piece[1:], True
            fresh[r] = pos == 0
            self.rows[r][1] = pos + k
            self.new[r] = False
            if self.rows[r][1] >= len(s) - 1:
                self.rows[r], self.new[r] = self._draw(), True
        batch = Batch(x, y, mask, fresh, reset=reset)
        return self.data._finish(batch, self.split, picks, starts)

    def state_dict(self) -> dict:
        return {"rows": self.rows, "new": self.new}

    def load_state_dict(self, d: dict) -> None:
        self.rows, self.new = [list(r) for r in d["rows"]], list(d["new"])
