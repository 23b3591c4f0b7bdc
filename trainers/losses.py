"""The training loss: next-token cross-entropy, computed here once for every family.

`next_token_loss(model, batch, state)` asks the model for its teacher-forced logits through the protocol's one
training hook, `model.training_forward(x, cond, state, reset) -> engine.protocol.TrainingOutput` (plain tensors,
no Batch), and scores `batch.y` with `token_nats`, the one cross-entropy of the code base (evaluation and
distillation use it too).  The trainer decides which targets count (`context_mask`): those that exist
(`batch.mask`) and have a full receptive field of real context, since a window cut from the middle of a sequence
starts with zero padding where real tokens were, and its first `receptive_field - 1` predictions would be judged
on context the model never sees at generation time.  Rows that start at a sequence's beginning (`batch.fresh`)
count in full, since generation also starts from nothing.  `cond` is `batch.cond` (class ids), or
`model.encode(batch.src, batch.src_mask)` when the batch carries a seq2seq source (`conditioning`).

What a family may say through the hook, and nothing else:
- `rows`: the rows whose targets count (ByteNet and seq2seq with sub-batch norm leave the auxiliary rows out);
- `penalties`: regularizers by name, already weighted, in nats per counted target (the RNN norm-stabilizer).
  The loss minimised is mean CE + sum(penalties); `LossOut.penalties` carries their values as floats, and the
  trainer logs each one apart in metrics.jsonl next to `ce`, the cross-entropy without them;
- `state` (families with `training_stateful = True`, SampleRNN): stateful truncated BPTT.  The trainer then feeds
  consecutive `seq_len` chunks of each row's long sequence (`trainers.data.StreamSampler`) and passes back the
  state the previous chunk returned, detached from its graph (`detach_state`), with `batch.reset` marking the rows
  that began a new sequence in this chunk (the family starts those afresh).  The state is None on the first step
  and at every evaluation window, and is not part of the resumable checkpoint: a resumed run starts every row
  afresh.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from engine.protocol import AutoregressiveModel, Conditioning, TrainingOutput

from .data import Batch


@dataclass
class LossOut:
    nats_sum: torch.Tensor  # summed loss (nats) over counted targets, penalties included; backward uses the mean
    count: torch.Tensor  # number of counted targets (a tensor so DDP ranks can sum it)
    state: Any = None  # stateful families: carried into the next chunk
    penalties: dict[str, float] = field(default_factory=dict)  # per-target terms in nats_sum beside the CE, by name

    @property
    def mean(self) -> torch.Tensor:
        return self.nats_sum / self.count.clamp(min=1)


LossFn = Callable[[AutoregressiveModel, Batch, Any], LossOut]


def token_nats(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in nats of each target, in float32: logits [..., V], targets [...] -> [...]."""
    targets = targets.to(logits.device)
    ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return ce.view(targets.shape)


def context_mask(batch: Batch, receptive_field: int | None) -> torch.Tensor:
    """Targets that exist and have a full receptive field of real context (or start their sequence)."""
    if receptive_field is None or receptive_field <= 1:
        return batch.mask
    t = torch.arange(batch.x.shape[1], device=batch.x.device)
    return batch.mask & (batch.fresh.unsqueeze(1) | (t >= receptive_field - 1).unsqueeze(0))


def conditioning(model: AutoregressiveModel, batch: Batch) -> Any:
    """What `model` is conditioned on: the encoded source (padding masked) for seq2seq batches, the frames around
    each window (and class ids) for a locally conditioned model, else class ids."""
    if batch.src is not None and hasattr(model, "encode"):
        return model.encode(batch.src, batch.src_mask)
    if batch.frames is not None:
        return Conditioning(classes=batch.cond, frames=batch.frames, first_sample=batch.first_sample)
    return batch.cond


def training_forward(model: AutoregressiveModel, batch: Batch, state: Any = None) -> TrainingOutput:
    """The model's training hook on this batch (inputs, conditioning, and for stateful families state + reset)."""
    return model.training_forward(batch.x, conditioning(model, batch), state, batch.reset)


def counted(out: TrainingOutput, batch: Batch, receptive_field: int | None) -> tuple[torch.Tensor, torch.Tensor,
                                                                                     torch.Tensor]:
    """(logits, targets, mask) of the rows and positions that count, on the logits' device."""
    device = out.logits.device
    mask = context_mask(batch, receptive_field)[out.rows].to(device)
    return out.logits[out.rows], batch.y[out.rows].to(device), mask


def with_penalties(nats_sum: torch.Tensor, count: torch.Tensor, penalties: dict[str, torch.Tensor]
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """nats_sum + sum(penalties) per counted target, and the penalties as floats for logging."""
    if penalties:
        nats_sum = nats_sum + sum(penalties.values()) * count
    return nats_sum, {k: float(v.detach()) for k, v in penalties.items()}


def next_token_loss(model: AutoregressiveModel, batch: Batch, state: Any = None,
                    regularized: bool = True) -> LossOut:
    """The trainer's loss: masked next-token cross-entropy (summed, with its count) plus the family's penalties
    (left out with regularized=False: evaluation scores the cross-entropy alone)."""
    out = training_forward(model, batch, state)
    logits, y, mask = counted(out, batch, model.receptive_field)
    count = mask.sum()
    nats_sum, penalties = with_penalties((token_nats(logits, y) * mask).sum(), count,
                                         out.penalties if regularized else {})
    return LossOut(nats_sum, count, out.state, penalties)


def detach_state(state: Any) -> Any:
    """Cut the graph between truncated-BPTT chunks, whatever the state's shape (tensors, tuples, dataclasses)."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (list, tuple)):
        return type(state)(detach_state(s) for s in state)
    if isinstance(state, dict):
        return {k: detach_state(v) for k, v in state.items()}
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return dataclasses.replace(state, **{f.name: detach_state(getattr(state, f.name))
                                             for f in dataclasses.fields(state) if f.init})
    return state
