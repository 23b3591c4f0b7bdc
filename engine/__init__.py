"""Autoregressive Playground engine: models, sampling, codecs, checkpoints and the cached generator.

No UI here.  Everything a caller needs is importable from `engine` directly (see docs/DESIGN.md).
"""
from . import audio, text
from .alphabet import describe as describe_alphabet
from .beam import beam_search
from . import models as _models  # noqa: F401  (registers every family)
from .errors import UserError
from .checkpoint import CheckpointError, ModelInfo, list_models, load_model, read_meta, save_model
from .generation import generate, generate_all, generate_naive
from .protocol import AutoregressiveModel, TokenSpec
from .registry import build_model, families, make_config
from .sampling import RandomStream, SamplingConfig, sample

__all__ = [
    "AutoregressiveModel", "TokenSpec", "build_model", "families", "make_config", "generate", "generate_naive",
    "generate_all", "save_model", "load_model", "list_models", "read_meta", "CheckpointError", "ModelInfo",
    "SamplingConfig", "RandomStream", "sample", "audio", "text", "beam_search", "describe_alphabet", "UserError",
]
