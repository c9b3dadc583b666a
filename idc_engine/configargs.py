"""Command-line flags generated from config dataclasses, so defaults live only in the dataclass."""

from __future__ import annotations

import argparse
import dataclasses
import typing


def _flag(prefix: str, name: str) -> str:
    return "--" + (f"{prefix}-" if prefix else "") + name.replace("_", "-")


def _dest(prefix: str, name: str) -> str:
    return (f"{prefix}_" if prefix else "") + name


def add_config_arguments(parser: argparse.ArgumentParser, cls, prefix: str = "", skip=()):
    """One flag per scalar or tuple field of ``cls``; flags left out keep the dataclass default."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{cls.__name__} ({prefix or 'options'})")
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(default):
            continue
        help_text = f.metadata.get("help", "") + f" (default: {default!r})"
        flag, dest = _flag(prefix, f.name), _dest(prefix, f.name)
        origin = typing.get_origin(kind)
        args = typing.get_args(kind)
        if kind is bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif origin is tuple:
            item = args[0] if args else str
            group.add_argument(flag, dest=dest, nargs="+", type=item, default=None, help=help_text)
        else:
            scalar = next((a for a in args if a is not type(None)), kind) if origin is not None else kind
            group.add_argument(flag, dest=dest, type=_parse_scalar(scalar), default=None, help=help_text)


def _parse_scalar(kind):
    if kind in (int, float, str):
        return kind
    return str


def config_from_arguments(args: argparse.Namespace, cls, prefix: str = "", **overrides):
    """Build ``cls`` from the flags that were given; the rest come from the dataclass."""
    values = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, _dest(prefix, f.name), None)
        if value is not None:
            values[f.name] = tuple(value) if isinstance(value, list) else value
    values.update(overrides)
    return cls(**values)
