"""Trainers: datasets, the training loop, evaluation and background jobs for every engine family.

No UI here; the app calls `trainers.jobs.JobManager` and `python -m trainers` does the rest.
"""
from .config import TrainConfig
from .presets import Preset, get_preset, presets, register_preset

__all__ = ["TrainConfig", "Preset", "get_preset", "presets", "register_preset"]
