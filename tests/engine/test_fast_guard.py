"""The fast path's guard (engine/fast/lowering.py): every fast loop declares the config fields it accounts for, and
a model that sets any other field is served by the eager path instead of silently generating as another model."""
import dataclasses

import pytest
import torch
from torch import nn

import engine
from engine import fast, registry
from engine.fast.lowering import declared_fields

pytest.importorskip("numba")

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {  # family: a small config (every value here is a declared field)
    "wavenet": dict(layers_per_block=2, blocks=1, residual_channels=8, gate_channels=8, skip_channels=8, n_classes=16),
    "bytenet": dict(d=8, sets=1, set_size=2, vocab_size=32),
    "hierarchical": dict(vocab_size=16, n_embd=4, levels=2, widths=[8]),
    "samplernn": dict(n_classes=16, frame_sizes=[4], dim=8, embed_dim=4, mlp_dim=8),
}


def family_of(model_cls) -> str:
    return model_cls.family


def test_every_fast_loop_declares_exactly_its_config_fields():
    """Adding a field to a family's config dataclass without declaring it in the family's lowering (handled, or
    ignored with a reason) fails here: the fast path would otherwise run that model as if the field were unset."""
    decl = declared_fields()
    assert {family_of(cls) for cls in decl} == set(TINY)  # the four families with a fast loop
    for cls, fields in decl.items():
        names = {f.name for f in dataclasses.fields(registry.config_class(family_of(cls)))}
        assert not fields.handles & set(fields.ignores)
        assert fields.declared == names, (
            f"{cls.__name__}: config fields not declared by its fast loop: {sorted(names - fields.declared)}; "
            f"declared but not in the config: {sorted(fields.declared - names)}")
        assert all(isinstance(why, str) and why for why in fields.ignores.values())


def extended(family: str, **values):
    """A model whose config class has one more field, `new_knob` (default 0), that no lowering knows."""
    base = registry.config_class(family)
    cls = dataclasses.make_dataclass(base.__name__ + "Plus", [("new_knob", int, dataclasses.field(default=0))],
                                     bases=(base,))
    torch.manual_seed(0)
    model_cls = registry._FAMILIES[family][1]
    return model_cls(cls(**TINY[family], **values)).eval()


@pytest.mark.parametrize("family", sorted(TINY))
def test_an_undeclared_field_at_its_default_is_served(family):
    assert fast.why_not(extended(family, new_knob=0)) is None


@pytest.mark.parametrize("family", sorted(TINY))
def test_an_undeclared_field_set_sends_the_model_to_the_eager_path(family, monkeypatch):
    model = extended(family, new_knob=3)
    reason = fast.why_not(model)
    assert reason is not None and "new_knob=3" in reason
    kw = dict(max_new_tokens=20, seed=4, batch_size=2, temperature=1.0)
    eager = engine.generate_all(model, None, backend="eager", **kw)
    with pytest.raises(ValueError, match="new_knob"):
        engine.generate_all(model, None, backend="fast", **kw)

    def no_fast_runner(*args, **kwargs):
        raise AssertionError("auto must not build a fast runner for a refused model")

    monkeypatch.setattr(fast, "FastRunner", no_fast_runner)
    assert torch.equal(engine.generate_all(model, None, backend="auto", **kw), eager)


@pytest.mark.parametrize("family,field,value", [("bytenet", "dropout", 0.3), ("hierarchical", "dropout", 0.2),
                                                ("hierarchical", "eos_id", 10), ("samplernn", "learn_h0", False),
                                                ("wavenet", "sample_rate", 8000)])
def test_an_ignored_field_set_is_still_served_with_the_same_ids(family, field, value):
    torch.manual_seed(0)
    model = engine.build_model(family, **TINY[family], **{field: value}).eval()
    assert fast.why_not(model) is None
    kw = dict(max_new_tokens=30, seed=5, batch_size=2, temperature=1.0)
    assert torch.equal(engine.generate_all(model, None, backend="eager", **kw),
                       engine.generate_all(model, None, backend="fast", **kw))


def _bogus_wavenet_input(model):
    model.config.input = "bogus"  # past the config's own validation: the lowering must still refuse it


def _groupnorm_bytenet(model):
    model.stack.blocks[0].norm_in = nn.GroupNorm(1, 2 * model.config.d)


def _groupnorm_hierarchical(model):
    model.levels[0].norm = nn.GroupNorm(1, model.levels[0].conv.out_channels)


@pytest.mark.parametrize("family,break_it,words", [("wavenet", _bogus_wavenet_input, "input 'bogus'"),
                                                   ("bytenet", _groupnorm_bytenet, "GroupNorm"),
                                                   ("hierarchical", _groupnorm_hierarchical, "GroupNorm")])
def test_a_handled_field_with_a_value_the_lowering_lacks_is_refused(family, break_it, words):
    """Fields handled for some values only (an input kind, a norm) raise Unsupported for the others; "auto"
    falls back to eager and "fast" names the reason."""
    torch.manual_seed(0)
    model = engine.build_model(family, **TINY[family]).eval()
    break_it(model)
    with pytest.raises(fast.Unsupported, match=words):
        fast.lowered(model)
    if family == "wavenet":  # the eager WaveNet has no "bogus" input either
        return
    kw = dict(max_new_tokens=10, seed=1, batch_size=1)
    with pytest.raises(ValueError, match=words):
        engine.generate_all(model, None, backend="fast", **kw)
    assert engine.generate_all(model, None, backend="auto", **kw).shape == (1, 10)


def test_lstm_samplernn_is_refused_by_name():
    model = engine.build_model("samplernn", **TINY["samplernn"], cell="lstm").eval()
    assert "LSTM" in fast.why_not(model)
