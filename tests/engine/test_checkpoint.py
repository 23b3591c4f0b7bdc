"""Checkpoints: round trip, atomic save, and a clear error for each malformed folder."""
import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

import engine
from engine.checkpoint import CheckpointError


def tiny(cond=0):
    return engine.build_model("wavenet", layers_per_block=2, blocks=1, residual_channels=4, gate_channels=4,
                              skip_channels=4, n_classes=16, global_cond_classes=cond, sample_rate=8000)


def test_round_trip_gives_identical_logits(tmp_path):
    model = tiny(cond=3).eval()
    path = engine.save_model(model, tmp_path / "m", data="tiny sines", steps=5, val_loss=1.5, license="CC0")
    loaded = engine.load_model(path)
    x = torch.randint(0, 16, (2, 20))
    c = torch.tensor([0, 2])
    with torch.no_grad():
        assert torch.equal(model(x, c), loaded(x, c))
    meta = engine.read_meta(path)
    assert meta["family"] == "wavenet" and meta["training"]["license"] == "CC0"
    assert meta["tokens"] == {"kind": "audio", "vocab_size": 16, "sample_rate": 8000, "quantization": "mulaw",
                              "preemphasis": 0.0, "start_id": 8, "eos_id": None, "symbols": None}
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]


def test_save_over_existing_is_atomic_and_leaves_no_temp(tmp_path):
    engine.save_model(tiny(), tmp_path / "m")
    engine.save_model(tiny(), tmp_path / "m", steps=2)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert engine.read_meta(tmp_path / "m")["training"]["steps"] == 2


def _broken(tmp_path, how):
    path = engine.save_model(tiny(), tmp_path / "m")
    cfg = json.loads((path / "config.json").read_text())
    if how == "missing weights":
        (path / "model.safetensors").unlink()
    elif how == "missing config":
        (path / "config.json").unlink()
    elif how == "not json":
        (path / "config.json").write_text("{not json")
    elif how == "other program":
        (path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"], "n_layer": 12}))
    elif how == "unknown family":
        cfg["family"] = "transformer-xl"
        (path / "config.json").write_text(json.dumps(cfg))
    elif how == "wrong shape":
        cfg["config"]["residual_channels"] = 8
        (path / "config.json").write_text(json.dumps(cfg))
    elif how == "bad config field":
        cfg["config"]["flux_capacitor"] = 1
        (path / "config.json").write_text(json.dumps(cfg))
    elif how == "pickle file":
        (path / "model.pt").write_bytes(b"\x80\x04K\x01.")
    elif how == "corrupt weights":
        (path / "model.safetensors").write_bytes(b"\x00" * 64)
    elif how == "missing tensor":
        tensors = {"embed.weight": torch.zeros(16, 4)}
        save_file(tensors, str(path / "model.safetensors"))
    elif how == "a file":
        shutil.rmtree(path)
        path.write_text("hello")
    return path


@pytest.mark.parametrize("how,match", [
    ("missing weights", "model.safetensors is missing"), ("missing config", "config.json is missing"),
    ("not json", "not valid JSON"), ("other program", "another program"), ("unknown family", "unknown model family"),
    ("wrong shape", "shape mismatch"), ("bad config field", "config is invalid"), ("pickle file", "pickle"),
    ("corrupt weights", "not a readable safetensors"), ("missing tensor", "do not match"), ("a file", "is a file"),
])
def test_malformed_checkpoints_get_clear_errors(tmp_path, how, match):
    with pytest.raises(CheckpointError, match=match):
        engine.load_model(_broken(tmp_path, how))


def test_wrong_family_and_missing_folder(tmp_path):
    path = engine.save_model(tiny(), tmp_path / "m")
    with pytest.raises(CheckpointError, match="not bytenet"):
        engine.load_model(path, family="bytenet")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        engine.load_model(tmp_path / "nowhere")


def test_list_models_finds_valid_checkpoints_only(tmp_path):
    engine.save_model(tiny(), tmp_path / "a")
    engine.save_model(tiny(cond=2), tmp_path / "nested" / "b", val_loss=2.5)
    _broken(tmp_path / "c", "other program") if (tmp_path / "c").mkdir() is None else None
    found = engine.list_models([tmp_path])
    assert sorted(m.name for m in found) == ["a", "nested/b"]
    assert all(m.family == "wavenet" and m.kind == "audio" and not m.shipped for m in found)
    assert [m.val_loss for m in found if m.name == "nested/b"] == [2.5]
