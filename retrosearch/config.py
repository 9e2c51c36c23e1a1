"""Config dataclasses with help text: one definition gives CLI flags, YAML files and validation."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

T = TypeVar("T")


def option(
    default: Any = dataclasses.MISSING, help: str = "", *, choices: tuple | None = None, **kw: Any
) -> Any:
    """A dataclass field with help text (and optional choices) for the CLI."""
    meta = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta, **kw)
    return dataclasses.field(default=default, metadata=meta, **kw)


def check_choices(cfg: Any) -> None:
    """Raise `ValueError` naming the field when a value is not among its declared choices."""
    for f in dataclasses.fields(cfg):
        choices = f.metadata.get("choices")
        if choices is not None and getattr(cfg, f.name) not in choices:
            raise ValueError(
                f"{type(cfg).__name__}.{f.name} must be one of {list(choices)}, got {getattr(cfg, f.name)!r}"
            )


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(inner type, is optional) of `X | None`."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        return str, True
    return tp, False


def _parse_bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {s!r}")


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, prefix: str = "") -> None:
    """Add one `--flag` per field of dataclass `cls` (underscores become dashes)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("cli") is False:
            continue
        tp, optional = _unwrap(hints[f.name])
        flag = "--" + prefix + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        kw: dict[str, Any] = {
            "help": f.metadata.get("help", "") + f" (default: {default!r})",
            "dest": prefix + f.name,
            "default": argparse.SUPPRESS,
        }
        if "choices" in f.metadata:
            kw["choices"] = f.metadata["choices"]
        origin = get_origin(tp)
        if tp is bool:
            kw["type"] = _parse_bool
            kw["nargs"] = "?"
            kw["const"] = True
        elif origin in (tuple, list):
            inner = get_args(tp)[0] if get_args(tp) else str
            kw["type"] = inner if inner in (int, float, str) else str
            kw["nargs"] = "*"
        elif tp in (int, float, str):
            kw["type"] = tp
        else:
            kw["type"] = str
        parser.add_argument(flag, **kw)


def from_args(cls: type[T], ns: argparse.Namespace, *, prefix: str = "", base: T | None = None) -> T:
    """Build `cls` from the flags set on the command line, on top of `base` (e.g. a YAML config)."""
    given = {
        f.name: getattr(ns, prefix + f.name) for f in dataclasses.fields(cls) if hasattr(ns, prefix + f.name)
    }
    hints = typing.get_type_hints(cls)
    for k, v in given.items():
        if isinstance(v, list) and get_origin(_unwrap(hints[k])[0]) is tuple:
            given[k] = tuple(v)
    if base is not None:
        return dataclasses.replace(base, **given)
    return cls(**given)


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Read a config of type `cls` from a YAML file; unknown keys are an error naming them."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of {cls.__name__} fields, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{path}: unknown {cls.__name__} field(s) {unknown}; known: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    for k, v in list(data.items()):
        if isinstance(v, list) and get_origin(_unwrap(hints[k])[0]) is tuple:
            data[k] = tuple(v)
    return cls(**data)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain dict of a config (tuples as lists), for JSON/YAML."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}
