"""Knowledge distillation: train a small model on its data *and* on the averaged predictions of bigger or more models.

On a small corpus a small model is limited by overfitting, not by capacity: makemore's names list has 25.6K
training names, and five 77K-parameter hierarchical models that each score about 1.96 nats/char on the held-out
names score 1.93 together (their probabilities averaged).  Training one 77K model to match that ensemble's full
next-character distribution (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network") hands
it what the ensemble learned about every continuation, not just the one that happened, which the one-hot
targets cannot.  Teachers are read from the training split only, like the student: nothing held out leaks in.

The loss per scored target is

    (1 - weight) * CE(student, next token) + weight * T^2 * H(teacher_T, student_T)

where H is the cross-entropy from the teachers' averaged distribution to the student's, both at temperature T
(T^2 keeps the soft term's gradient scale independent of T).  The trainer logs the hard cross-entropy as `ce`
and the difference as `distill` (a penalty of the `LossOut`, like a family's regularizers, which are added as
in the plain loss), and evaluation always scores the plain next-token cross-entropy, so held-out numbers stay
comparable with models trained without teachers.

Distillation reads the student through the same training hook and counts the same targets as the plain loss
(trainers.losses: `training_forward`, `counted`, `token_nats`), so any family can be distilled except a stateful
one (SampleRNN's truncated-BPTT chunks), which is refused with a message rather than silently trained another way.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from engine.checkpoint import CheckpointError, load_model
from engine.errors import UserError
from engine.protocol import AutoregressiveModel

from .data import Batch
from .losses import LossFn, LossOut, conditioning, counted, token_nats, training_forward, with_penalties


class DistillError(UserError):
    """Teachers that cannot teach this student; one line for the user."""


def load_teachers(paths: Sequence[str], student: AutoregressiveModel,
                  device: torch.device | str = "cpu") -> list[AutoregressiveModel]:
    """Frozen teacher models in eval mode, checked to predict the same tokens the student does."""
    teachers = []
    for path in paths:
        try:
            teacher = load_model(path, device=device)
        except (CheckpointError, OSError, ValueError) as e:
            raise DistillError(f"teacher {path}: {e}") from None
        _check_compatible(path, teacher, student)
        teacher.requires_grad_(False)
        teachers.append(teacher.eval())
    return teachers


def _check_compatible(path: str, teacher: AutoregressiveModel, student: AutoregressiveModel) -> None:
    t, s = teacher.tokens, student.tokens
    if (t.kind, t.vocab_size) != (s.kind, s.vocab_size):
        raise DistillError(f"teacher {path} predicts {t.vocab_size} {t.kind} ids, the student "
                           f"{s.vocab_size} {s.kind} ids")
    if s.symbols is not None and not set(t.symbols or range(t.vocab_size)) <= set(s.symbols):
        raise DistillError(f"teacher {path} can predict ids outside the student's alphabet; give the student "
                           "an alphabet that covers the teacher's")
    for name in ("global_cond_classes",):
        if getattr(teacher.config, name, 0) != getattr(student.config, name, 0):
            raise DistillError(f"teacher {path} has {name}={getattr(teacher.config, name, 0)}, the student "
                               f"{getattr(student.config, name, 0)}")


@torch.no_grad()
def teacher_log_probs(teachers: Sequence[AutoregressiveModel], batch: Batch, temperature: float) -> torch.Tensor:
    """log of the teachers' averaged next-token distribution at `temperature`, [B, T, V]."""
    logps = [F.log_softmax(t(_readable(t, batch), conditioning(t, batch)).float() / temperature, dim=-1)
             for t in teachers]
    return torch.logsumexp(torch.stack(logps), dim=0) - math.log(len(logps))


def _readable(teacher: AutoregressiveModel, batch: Batch) -> torch.Tensor:
    """The batch's inputs as the teacher can read them.

    The student's padding id (right of each row's end) may lie outside a teacher's alphabet; padding only
    feeds positions that are not scored, so it becomes the teacher's start id.  A real input the teacher cannot
    read is an error: its soft targets there would be made up.
    """
    symbols = batch.x.new_tensor(teacher.tokens.symbols) if teacher.tokens.symbols is not None else None
    if symbols is None:
        return batch.x
    unknown = ~torch.isin(batch.x, symbols)
    if bool((unknown & batch.mask).any()):
        raise DistillError("the data has characters a teacher's alphabet does not hold; pick teachers trained on "
                           "this data")
    return batch.x.masked_fill(unknown, teacher.tokens.start_id)


def distillation_loss(teachers: Sequence[AutoregressiveModel], weight: float, temperature: float = 1.0) -> LossFn:
    """A loss function for the trainer: the next-token loss mixed with the teachers' soft targets."""
    if not teachers:
        raise DistillError("distillation needs at least one teacher")
    if not (0.0 <= weight <= 1.0 and temperature > 0 and math.isfinite(temperature)):
        raise DistillError(f"distill_weight must be in [0, 1] and distill_temperature positive, got {weight}, "
                           f"{temperature}")

    def loss(model: AutoregressiveModel, batch: Batch, state=None) -> LossOut:
        out = training_forward(model, batch)
        logits, y, mask = counted(out, batch, model.receptive_field)
        logits = logits.float()
        ce = token_nats(logits, y)
        target = teacher_log_probs(teachers, batch, temperature)[out.rows].to(logits.device).exp()
        student = F.log_softmax(logits / temperature, dim=-1)
        # ids outside an alphabet have -inf logits in both; 0 * -inf must count as 0, not NaN
        soft = -(target * student.masked_fill(target == 0, 0.0)).sum(-1) * temperature ** 2
        per_target = (1.0 - weight) * ce + weight * soft
        count = mask.sum()
        nats_sum = (per_target * mask).sum()
        ce_mean = float((ce.detach() * mask).sum()) / max(int(count), 1)
        distill = float(nats_sum.detach()) / max(int(count), 1) - ce_mean
        nats_sum, penalties = with_penalties(nats_sum, count, out.penalties)
        return LossOut(nats_sum, count, None, {"distill": distill, **penalties})

    return loss


def check_distillable(model: AutoregressiveModel) -> None:
    if model.training_stateful:
        raise DistillError(f"the {model.family} family trains statefully (truncated BPTT over consecutive chunks); "
                           "distillation supports families whose training windows stand alone")
