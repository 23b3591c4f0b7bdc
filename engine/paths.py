"""Where models live: the shipped ones in the repository, the user's own under PLAYGROUND_HOME."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODELS = REPO_ROOT / "assets" / "models"


def playground_home() -> Path:
    """The user's data folder (training runs, their models); `PLAYGROUND_HOME` overrides it."""
    return Path(os.environ.get("PLAYGROUND_HOME", Path.home() / ".autoregressive-playground"))


def user_models_dir() -> Path:
    return playground_home() / "models"


def runs_dir() -> Path:
    return playground_home() / "runs"


def model_roots() -> list[Path]:
    """Every folder models may be loaded from; the app refuses any path outside these."""
    return [SHIPPED_MODELS, user_models_dir(), runs_dir()]
