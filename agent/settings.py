"""Typed, frozen configuration: YAML, then environment overrides, then validation.

Shared by the agent and the server (the agent imports nothing outside ``agent/``, so the
loader lives here). Every error names the file and the dotted key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(Exception):
    """A configuration value is missing or wrong; the message names file and key."""


def _where(source: str, key: str) -> str:
    return f"{source}: key '{key}'"


def _coerce(value: Any, tp: Any, source: str, key: str) -> Any:
    """Convert a YAML or environment value to the field's declared type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value == "" and len(args) == 1):
            return None
        return _coerce(value, args[0], source, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{_where(source, key)}: expected true or false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{_where(source, key)}: expected a number, got {value!r}")
        try:
            return tp(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{_where(source, key)}: expected {'an integer' if tp is int else 'a number'}, "
                f"got {value!r}"
            ) from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{_where(source, key)}: expected text, got {type(value).__name__}")
        return str(value)
    if origin is tuple:
        (item,) = typing.get_args(tp)[:1]
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{_where(source, key)}: expected a list, got {value!r}")
        return tuple(_coerce(v, item, source, f"{key}[{i}]") for i, v in enumerate(value))
    raise ConfigError(f"{_where(source, key)}: unsupported type {tp!r}")  # pragma: no cover


def build(
    cls: type[T],
    data: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    source: str,
    env_prefix: str,
    path: str = "",
) -> T:
    """Build dataclass ``cls`` from a YAML mapping, letting ``env_prefix``+KEY override."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name in data:
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(
                f"{_where(source, path + str(name))}: unknown key; known keys here: {known}"
            )
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        key = path + name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            sub = data.get(name) or {}
            if not isinstance(sub, Mapping):
                raise ConfigError(f"{_where(source, key)}: expected a mapping")
            kwargs[name] = build(
                tp,  # type: ignore[arg-type]
                sub,
                env,
                source=source,
                env_prefix=f"{env_prefix}{name.upper()}_",
                path=key + ".",
            )
            continue
        env_name = env_prefix + name.upper()
        if env_name in env:
            kwargs[name] = _coerce(env[env_name], tp, f"environment {env_name}", key)
        elif name in data:
            kwargs[name] = _coerce(data[name], tp, source, key)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(
                f"{_where(source, key)}: required; set it in the file or as {env_name}"
            )
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if callable(check):
        try:
            check()
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return obj


def load(cls: type[T], file: Path | None, env: Mapping[str, str], *, env_prefix: str) -> T:
    """Read ``file`` (optional) as YAML and build ``cls``; errors name the file and key."""
    data: Any = {}
    source = str(file) if file else "environment and defaults"
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"{file}: the top level must be a mapping of keys")
    return build(cls, data, env, source=source, env_prefix=env_prefix)
