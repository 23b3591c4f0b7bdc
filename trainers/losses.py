"""Training losses, and the hooks a family uses when "forward + next-token cross-entropy" is not enough.

The default, `next_token_loss`, runs `model(batch.x, cond)` and scores `batch.y` with cross-entropy, counting
only positions with a full receptive field of real context (`context_mask`): a window cut from the middle of a
sequence starts with zero padding where real tokens were, so its first `receptive_field - 1` predictions would
be judged on context the model will never see at generation time.  Rows that start at a sequence's beginning
(`batch.fresh`) count in full, since generation also starts from nothing.  `cond` is `batch.cond` (class ids),
or `model.encode(batch.src)` when the batch carries a seq2seq source.

A family changes the loss in one of two ways (the first found wins):
1. the model defines `training_loss(batch, state=None)` returning `(nats_sum, count)` or
   `(nats_sum, count, new_state)`: summed cross-entropy in nats over the counted targets, and their number;
2. the family registers a function: `register_loss("samplernn", fn, stateful=True)`, with
   `fn(model, batch, state) -> LossOut`.

A model that adds regularizers to its loss (the RNN family's norm-stabilizer) keeps their values of the last call
in `model.last_penalties` ({name: float}); the trainer logs each one apart in metrics.jsonl, next to `ce`, the
cross-entropy without them.

Stateful truncated BPTT (`stateful=True`, or a model attribute `training_stateful = True`): the trainer then
feeds consecutive `seq_len` chunks of each row's long sequence (`trainers.data.StreamSampler`) and passes back
the `state` the loss returned for the previous chunk, detached from its graph (`detach_state`).  `batch.reset`
marks rows that began a new sequence in this chunk: the loss must start those rows' state afresh (state is None
on the first step and at every evaluation window).  That state is not part of the resumable checkpoint: a resumed
run starts every row afresh.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from engine.protocol import AutoregressiveModel

from .data import Batch


@dataclass
class LossOut:
    nats_sum: torch.Tensor  # summed cross-entropy (nats) over counted targets; backward uses nats_sum / count
    count: torch.Tensor  # number of counted targets (a tensor so DDP ranks can sum it)
    state: Any = None  # stateful families: carried into the next chunk

    @property
    def mean(self) -> torch.Tensor:
        return self.nats_sum / self.count.clamp(min=1)


LossFn = Callable[[AutoregressiveModel, Batch, Any], LossOut]
_LOSSES: dict[str, tuple[LossFn, bool]] = {}


def register_loss(family: str, fn: LossFn, stateful: bool = False) -> None:
    _LOSSES[family] = (fn, stateful)


def context_mask(batch: Batch, receptive_field: int | None) -> torch.Tensor:
    """Targets that exist and have a full receptive field of real context (or start their sequence)."""
    if receptive_field is None or receptive_field <= 1:
        return batch.mask
    t = torch.arange(batch.x.shape[1], device=batch.x.device)
    return batch.mask & (batch.fresh.unsqueeze(1) | (t >= receptive_field - 1).unsqueeze(0))


def conditioning(model: AutoregressiveModel, batch: Batch) -> Any:
    if batch.src is not None and hasattr(model, "encode"):
        return model.encode(batch.src)
    return batch.cond


def next_token_loss(model: AutoregressiveModel, batch: Batch, state: Any = None) -> LossOut:
    logits = model(batch.x, conditioning(model, batch))
    mask = context_mask(batch, model.receptive_field)
    ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch.y.reshape(-1), reduction="none")
    return LossOut((ce * mask.reshape(-1)).sum(), mask.sum())


def _from_model(model: AutoregressiveModel, batch: Batch, state: Any = None) -> LossOut:
    out = model.training_loss(batch, state)
    if isinstance(out, LossOut):
        return out
    nats, count, *rest = out
    return LossOut(nats, torch.as_tensor(count, device=nats.device), rest[0] if rest else None)


def resolve_loss(model: AutoregressiveModel) -> tuple[LossFn, bool]:
    """(loss function, stateful) for this model: its own `training_loss`, its family's, or the default."""
    stateful = bool(getattr(model, "training_stateful", False))
    if hasattr(model, "training_loss"):
        return _from_model, stateful
    fn, registered_stateful = _LOSSES.get(model.family, (next_token_loss, False))
    return fn, stateful or registered_stateful


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
