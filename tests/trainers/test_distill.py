"""Distillation (trainers.distill): the loss is right at its ends, a teacher pulls a student, bad teachers refused."""
from __future__ import annotations

import copy
import random

import pytest
import torch
import torch.nn.functional as F

from engine import registry
from engine.checkpoint import read_meta
from trainers import cli, runfiles
from trainers.config import TrainConfig
from trainers.data import fit_alphabet, names_list
from trainers.distill import DistillError, check_distillable, distillation_loss, load_teachers, teacher_log_probs
from trainers.losses import next_token_loss
from trainers.train import TrainError, train

SMALL = dict(n_embd=8, levels=2, widths=[24], eos_id=10, alphabet="data")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def names(tmp_path):
    rng = random.Random(0)
    syllables = ["ka", "lo", "mi", "ra", "ne", "to", "sa", "vi", "el", "an"]
    words = {"".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(600)}
    p = tmp_path / "names.txt"
    p.write_text("\n".join(sorted(words)) + "\n")
    return p


def _cfg(tmp_path, data, out, **kw) -> TrainConfig:
    base = dict(family="hierarchical", data=str(data), out=str(tmp_path / out), model=dict(SMALL),
                data_kind="names", batch_size=32, seq_len=8, max_steps=120, lr=1e-2, warmup_steps=5, eval_every=60,
                eval_tokens=10**6, log_every=10, checkpoint_every=60, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _batch_and_models(names):
    model = registry.build_model("hierarchical", **{**SMALL, "alphabet": sorted(set(b"\nacegiklmnorstv"))})
    data = fit_alphabet(names_list(names), model.tokens)
    batch = data.sample_batch("train", 16, 8 + model.receptive_field - 1, torch.Generator().manual_seed(0))
    return batch, model


def test_weight_zero_is_the_plain_next_token_loss(names):
    batch, student = _batch_and_models(names)
    teacher = registry.build_model("hierarchical", **student.config.__dict__).eval()
    plain = next_token_loss(student, batch)
    mixed = distillation_loss([teacher], weight=0.0)(student, batch)
    assert mixed.count == plain.count
    assert float(mixed.nats_sum.detach()) == pytest.approx(float(plain.nats_sum.detach()), rel=1e-6)


def test_soft_term_is_stationary_when_the_student_already_predicts_like_its_teacher(names):
    """d/dlogits H(p_teacher, p_student) = p_student - p_teacher: zero gradient, finite loss despite -inf logits."""
    batch, student = _batch_and_models(names)
    teacher = copy.deepcopy(student).eval()
    student.eval()  # no dropout here anyway; the same function as the teacher
    out = distillation_loss([teacher], weight=1.0)(student, batch)
    assert torch.isfinite(out.nats_sum)
    out.nats_sum.backward()
    grads = [p.grad.abs().max() for p in student.parameters() if p.grad is not None]
    assert grads and max(grads) < 1e-5
    # ...and not stationary for a student that differs
    other = registry.build_model("hierarchical", **student.config.__dict__)
    distillation_loss([teacher], weight=1.0)(other, batch).nats_sum.backward()
    assert max(p.grad.abs().max() for p in other.parameters() if p.grad is not None) > 1e-3


def test_ensemble_target_is_the_average_of_the_teachers_distributions(names):
    batch, a = _batch_and_models(names)
    torch.manual_seed(1)
    b = registry.build_model("hierarchical", **a.config.__dict__)
    a.eval(), b.eval()
    got = teacher_log_probs([a, b], batch, 1.0).exp()
    want = (F.softmax(a(batch.x), -1) + F.softmax(b(batch.x), -1)) / 2
    assert torch.allclose(got, want, atol=1e-6)


def test_a_teacher_pulls_the_student_towards_its_predictions(tmp_path, names):
    train(_cfg(tmp_path, names, "teacher", max_steps=200), progress=False)
    teacher_path = tmp_path / "teacher" / "best"
    train(_cfg(tmp_path, names, "plain", model=dict(SMALL, widths=[8])), progress=False)
    train(_cfg(tmp_path, names, "taught", model=dict(SMALL, widths=[8]), teachers=[str(teacher_path)],
               distill_weight=1.0), progress=False)

    from engine.checkpoint import load_model
    teacher, plain, taught = (load_model(tmp_path / r / "best") for r in ("teacher", "plain", "taught"))
    data = fit_alphabet(names_list(names), teacher.tokens)
    batches = list(data.eval_batches("val", 64, 32, teacher.receptive_field - 1))

    def kl_to_teacher(student) -> float:
        total, n = 0.0, 0
        with torch.no_grad():
            for b in batches:
                p = F.log_softmax(teacher(b.x), -1)
                q = F.log_softmax(student(b.x), -1)
                kl = (p.exp() * (p - q).masked_fill(p == -torch.inf, 0)).sum(-1)
                total, n = total + float((kl * b.mask).sum()), n + int(b.mask.sum())
        return total / n

    assert kl_to_teacher(taught) < 0.9 * kl_to_teacher(plain)  # measured: 0.16 vs 0.21 nats
    records = [m for m in runfiles.read_metrics(tmp_path / "taught") if m["split"] == "train"]
    assert all(m["ce"] == pytest.approx(m["loss"] - m["distill"]) for m in records)
    training = read_meta(tmp_path / "taught" / "best")["training"]
    assert training["distilled_from"] == [str(teacher_path)] and training["distill_weight"] == 1.0


def test_teachers_that_cannot_teach_are_refused(tmp_path, names):
    train(_cfg(tmp_path, names, "teacher", max_steps=5, eval_every=5), progress=False)
    teacher = str(tmp_path / "teacher" / "best")
    student = registry.build_model("hierarchical", **dict(SMALL, alphabet=sorted(set(b"\nak"))))
    with pytest.raises(DistillError, match="outside the student's alphabet"):
        load_teachers([teacher], student)
    wavenet = registry.build_model("wavenet", blocks=1, layers_per_block=2, residual_channels=8, gate_channels=8,
                                   skip_channels=8)
    with pytest.raises(DistillError, match="predicts"):
        load_teachers([teacher], wavenet)
    srnn = registry.build_model("samplernn", frame_sizes=[4], dim=8, embed_dim=4, mlp_dim=8)
    with pytest.raises(DistillError, match="trains statefully"):
        check_distillable(srnn)
    with pytest.raises(TrainError, match="teacher .*missing"):
        train(_cfg(tmp_path, names, "s1", teachers=[str(tmp_path / "missing")]), progress=False)
    with pytest.raises(TrainError, match="distill_weight must be in"):
        train(_cfg(tmp_path, names, "s2", teachers=[teacher], distill_weight=1.5), progress=False)


def test_cli_teacher_flag(tmp_path, names, capsys):
    train(_cfg(tmp_path, names, "teacher", max_steps=5, eval_every=5), progress=False)
    out = tmp_path / "cli"
    rc = cli.main(["train", "--family", "hierarchical", "--preset", "small", "--data", str(names), "--out", str(out),
                   "--max-steps", "4", "--no-progress", "--teacher", str(tmp_path / "teacher" / "best"),
                   "--set", "eval_every=4", "--set", "distill_weight=0.7"])
    assert rc == 0, capsys.readouterr().err
    training = read_meta(out / "best")["training"]
    assert training["distill_weight"] == 0.7 and training["distilled_from"] == [str(tmp_path / "teacher" / "best")]
    rc = cli.main(["train", "--family", "hierarchical", "--preset", "small", "--data", str(names),
                   "--out", str(tmp_path / "bad"), "--max-steps", "4", "--no-progress",
                   "--teacher", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: teacher ") and "Traceback" not in "\n".join(err)


def test_padding_outside_a_teachers_alphabet_is_read_as_its_start_id(names):
    """A 256-byte student pads rows with byte 0; an alphabet teacher cannot embed it, but it feeds no score."""
    batch, teacher = _batch_and_models(names)
    batch.x = batch.x.masked_fill(~batch.mask, 0)  # as a student without an alphabet pads
    assert bool((batch.x == 0).any())
    teacher.eval()
    got = teacher_log_probs([teacher], batch, 1.0)
    clean = teacher(batch.x.masked_fill(batch.x == 0, 10)).log_softmax(-1)
    assert torch.allclose(got[batch.mask], clean[batch.mask], atol=1e-6)
    batch.x[0, 0] = ord("z")  # a real input the teacher cannot read
    with pytest.raises(DistillError, match="alphabet does not hold"):
        teacher_log_probs([teacher], batch, 1.0)
