"""Test setup: every test gets its own PLAYGROUND_HOME so nothing touches the user's real models or runs."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path_factory.mktemp("home")))
    torch.manual_seed(0)
