"""Config dataclasses with help text: one definition gives CLI flags, YAML files, aliases and validation."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

__all__ = [
    "add_arguments",
    "check_choices",
    "check_types",
    "derive_seed",
    "from_args",
    "load_yaml",
    "option",
    "to_dict",
    "with_aliases",
]

T = TypeVar("T")


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    choices: tuple | None = None,
    aliases: tuple[str, ...] = (),
    **kw: Any,
) -> Any:
    """A dataclass field with help text for the CLI, optional choices and old or foreign names.

    Args:
        default: The default value (a list, dict or set is copied per instance).
        help: One sentence for `--help`.
        choices: The allowed values (checked by `check_choices`).
        aliases: Other names of the field, accepted as a `--flag`, a YAML key and (with `@with_aliases` on the
            class) a constructor keyword and attribute, e.g. `("n_rollouts",)` for a field renamed `n`.
    """
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if aliases:
        if isinstance(aliases, str):
            aliases = (aliases,)
        meta["aliases"] = tuple(aliases)
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta, **kw)
    return dataclasses.field(default=default, metadata=meta, **kw)


def _alias_map(cls: type) -> dict[str, str]:
    """`{alias: field name}` of dataclass `cls`."""
    return {a: f.name for f in dataclasses.fields(cls) for a in f.metadata.get("aliases", ())}


def _resolve_aliases(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """`values` with alias keys renamed to their field; both spellings with different values is an error."""
    out = dict(values)
    for old, new in _alias_map(cls).items():
        if old in out:
            v = out.pop(old)
            if new in out and out[new] != v:
                raise TypeError(
                    f"{where}: got both {new}={out[new]!r} and its other name {old}={v!r}; give one of them"
                )
            out[new] = v
    return out


def with_aliases(cls: type[T]) -> type[T]:
    """Class decorator (above `@dataclass`): the fields' `aliases` work as constructor keywords and attributes.

    `Config(n_rollouts=8)` then builds `Config(n=8)` and `cfg.n_rollouts` reads and writes `cfg.n`. Giving both
    spellings with different values is a `TypeError`; `dataclasses.replace` takes the field names.
    """
    amap = _alias_map(cls)
    if not amap:
        return cls
    clash = sorted(set(amap) & {f.name for f in dataclasses.fields(cls)})
    if clash:
        raise TypeError(f"{cls.__name__}: aliases {clash} are also field names")
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **_resolve_aliases(cls, kwargs, cls.__name__))

    cls.__init__ = __init__  # type: ignore[method-assign]
    for old, new in amap.items():
        prop = property(
            lambda self, _n=new: getattr(self, _n),
            lambda self, value, _n=new: setattr(self, _n, value),
            doc=f"Another name of `{new}`.",
        )
        setattr(cls, old, prop)
    return cls


def derive_seed(*parts: Any) -> int:
    """A 32-bit seed from any values (e.g. a base seed, a row index, a switch): stable across runs and machines.

    `derive_seed(seed, "math500", "p3")` hashes the parts' `str()` joined by `|` with SHA-256.
    """
    h = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:4], "little")


def check_choices(cfg: Any) -> None:
    """Raise `ValueError` naming the field when a value is not among its declared choices."""
    for f in dataclasses.fields(cfg):
        choices = f.metadata.get("choices")
        if choices is not None and getattr(cfg, f.name) not in choices:
            raise ValueError(
                f"{type(cfg).__name__}.{f.name} must be one of {list(choices)}, got {getattr(cfg, f.name)!r}"
            )


# --------------------------------------------------------------------------- types
def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(inner type, is optional) of `X | None`."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        return str, True
    return tp, False


_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _describe(tp: Any) -> str:
    """`tp` in words, for an error message."""
    if tp is Any:
        return "any value"
    if tp is type(None):
        return "null"
    if tp in _NAMES:
        return _NAMES[tp]
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin in (tuple, list):
        inner = [a for a in get_args(tp) if a is not Ellipsis]
        return (
            f"a list of {_describe(inner[0]).removeprefix('an ').removeprefix('a ')}s" if inner else "a list"
        )
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} fields"
    return getattr(tp, "__name__", str(tp))


def _matches(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in get_args(tp))
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (tuple, list):
        inner = [a for a in get_args(tp) if a is not Ellipsis]
        if not isinstance(value, (list, tuple)):
            # One value stands for a list of one (`train_files: a.jsonl`); `_tuples` wraps it.
            return bool(inner) and inner[0] in _NAMES and _matches(value, inner[0])
        return not inner or all(_matches(v, inner[0]) for v in value)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return isinstance(value, Mapping)
    if dataclasses.is_dataclass(tp):
        return isinstance(value, (Mapping, tp))
    return isinstance(tp, type) and isinstance(value, tp)


def check_types(cls: type, values: Mapping[str, Any], *, where: str = "") -> None:
    """Raise `ValueError` naming the field and the expected type when a value of `values` does not fit `cls`.

    Args:
        cls: A config dataclass.
        values: Field values by name or alias (e.g. a YAML file's mapping).
        where: Prefix of the message (e.g. the file name).
    """
    hints = typing.get_type_hints(cls)
    amap = _alias_map(cls)
    for k, v in values.items():
        tp = hints.get(amap.get(k, k))
        if tp is not None and not _matches(v, tp):
            prefix = f"{where}: " if where else ""
            raise ValueError(
                f"{prefix}{cls.__name__}.{k} must be {_describe(tp)}, got {v!r} ({type(v).__name__})"
            )


# --------------------------------------------------------------------------- command line
def _parse_bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {s!r}")


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, prefix: str = "") -> None:
    """Add one `--flag` per field of dataclass `cls` (underscores become dashes), and one per alias."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("cli") is False:
            continue
        tp, optional = _unwrap(hints[f.name])
        flags = ["--" + prefix + name.replace("_", "-") for name in (f.name, *f.metadata.get("aliases", ()))]
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
        parser.add_argument(*flags, **kw)


def _tuples(cls: type, data: dict[str, Any], *, wrap: bool = False) -> dict[str, Any]:
    """Lists given for tuple-typed fields become tuples (and with `wrap`, a single value a tuple of one)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for k, v in data.items():
        if k in hints and get_origin(_unwrap(hints[k])[0]) is tuple:
            if isinstance(v, list):
                v = tuple(v)
            elif wrap and isinstance(v, (str, int, float, bool)):
                v = (v,)
        out[k] = v
    return out


def from_args(cls: type[T], ns: argparse.Namespace, *, prefix: str = "", base: T | None = None) -> T:
    """Build `cls` from the flags set on the command line, on top of `base` (e.g. a YAML config)."""
    given = {
        f.name: getattr(ns, prefix + f.name) for f in dataclasses.fields(cls) if hasattr(ns, prefix + f.name)
    }
    given = _tuples(cls, given)
    if base is not None:
        return dataclasses.replace(base, **given)
    return cls(**given)


# --------------------------------------------------------------------------- YAML
def _read_yaml(path: Path) -> Any:
    """The YAML document of `path`; every problem is one `ValueError` line naming the file."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ValueError(f"config {path}: no such file") from e
    except IsADirectoryError as e:
        raise ValueError(f"config {path}: is a folder, expected a YAML file") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"config {path}: not a text file ({e.reason})") from e
    except OSError as e:
        raise ValueError(f"config {path}: cannot be read ({e.strerror or e})") from e
    try:
        return yaml.safe_load(text)
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        at = f", line {mark.line + 1}" if mark is not None else ""
        raise ValueError(
            f"config {path}{at}: {e.problem} (only plain YAML values are allowed, no !!python tags)"
        ) from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(f"config {path}{at}: not valid YAML ({problem})") from e


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Read a config of type `cls` from a YAML file.

    Keys are field names or their aliases; unknown keys, values of the wrong type and YAML problems (a missing
    file, a syntax error, a `!!python` tag) are each a one-line `ValueError` naming the file and the field.
    """
    path = Path(path)
    data = _read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(
            f"config {path}: expected a mapping of {cls.__name__} fields, got {type(data).__name__}"
        )
    names = {f.name for f in dataclasses.fields(cls)} | set(_alias_map(cls))
    unknown = sorted(str(k) for k in set(data) - names)
    if unknown:
        raise ValueError(f"config {path}: unknown {cls.__name__} field(s) {unknown}; known: {sorted(names)}")
    check_types(cls, data, where=f"config {path}")
    try:
        data = _resolve_aliases(cls, data, f"config {path}")
    except TypeError as e:
        raise ValueError(str(e)) from e
    return cls(**_tuples(cls, data, wrap=True))


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain dict of a config (tuples as lists), for JSON/YAML."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}
