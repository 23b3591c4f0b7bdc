"""Family registry: `build_model("wavenet", **config)` and friends.

Each family module calls `register_family(name, ConfigClass, ModelClass)` at import time; `engine/models/__init__.py`
imports every family module so the registry is complete as soon as `engine` is imported.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from .errors import UserError
from .protocol import AutoregressiveModel

_FAMILIES: dict[str, tuple[type, type[AutoregressiveModel]]] = {}


class UnknownFamilyError(UserError):
    """A family name the registry does not know."""


def register_family(name: str, config_cls: type, model_cls: type[AutoregressiveModel]) -> None:
    model_cls.family = name
    _FAMILIES[name] = (config_cls, model_cls)


def families() -> list[str]:
    return sorted(_FAMILIES)


def config_class(family: str) -> type:
    if family not in _FAMILIES:
        raise UnknownFamilyError(f"unknown model family {family!r}; known families: {', '.join(families())}")
    return _FAMILIES[family][0]


def make_config(family: str, **fields: Any) -> Any:
    """Build a family's config dataclass, naming any field it does not have."""
    cls = config_class(family)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise UserError(f"{family} config has no field(s) {', '.join(unknown)}; fields are: {', '.join(sorted(known))}")
    return cls(**fields)


def build_model(family: str, config: Any = None, **fields: Any) -> AutoregressiveModel:
    """`build_model("wavenet", layers_per_block=10)` or `build_model("wavenet", config=WaveNetConfig(...))`."""
    if config is None:
        config = make_config(family, **fields)
    elif fields:
        config = dataclasses.replace(config, **fields)
    return _FAMILIES[family][1](config)
