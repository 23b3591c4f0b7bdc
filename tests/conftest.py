"""Test setup: every test gets its own PLAYGROUND_HOME so nothing touches the user's real models or runs."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path_factory.mktemp("home")))
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """Tiny models train and step faster on one thread, and the machine running CI is shared.

    Test modules that train or time tiny models opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
