"""Monitors as bytes, for processes that hold every monitor but read few of them (the main
process's ``core.engine.table.MonitorTable``, a worker's compiled monitors).

``pack`` writes a monitor as positional msgpack: its fields' values in declaration order, the
spec as its kind followed by its own fields' values (a nested Struct likewise). Without the
field names that msgspec writes for a Struct, a plain HTTP monitor takes about 110 bytes
instead of 320, and the bytes object is one allocation instead of the dozen objects of a
decoded ``Monitor`` (about 800 bytes). ``unpack`` builds a new ``Monitor`` equal to the one
packed (a few µs; values are not validated again: they were when the monitor was parsed).
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from core.models import KINDS, Monitor

__all__ = ["pack", "unpack"]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


@functools.cache
def _layout(cls: type[msgspec.Struct]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """A Struct's field names, and for each the Struct type it nests (None: a plain value)."""
    fields = msgspec.structs.fields(cls)
    nested = tuple(f.type if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct) else None
                   for f in fields)
    return tuple(f.name for f in fields), nested


def _builder(cls: type[msgspec.Struct], offset: int = 0) -> Any:
    """A function that makes a ``cls`` from a list of its fields' values starting at
    ``offset``, keyword by keyword in generated code (as ``dataclasses`` writes ``__init__``):
    ``cls(**dict(zip(names, values)))`` took five times as long."""
    names, nested = _layout(cls)
    env: dict[str, Any] = {"cls": cls}
    args = []
    for i, (name, kind) in enumerate(zip(names, nested, strict=True)):
        at = f"v[{i + offset}]"
        if kind is None:
            args.append(f"{name}={at}")
        else:
            env[f"build_{i}"] = _builder(kind)
            args.append(f"{name}=None if {at} is None else build_{i}({at})")
    exec(f"def build(v):\n    return cls({', '.join(args)})\n", env)  # (our own field names only)
    return env["build"]


_MONITOR_NAMES, _ = _layout(Monitor)
_SPEC_AT = _MONITOR_NAMES.index("spec")
_STATUS_AT = _MONITOR_NAMES.index("status")
_BUILD_MONITOR = _builder(Monitor)
_BUILD_SPEC = {kind: _builder(cls, offset=1) for kind, cls in KINDS.items()}  # (after the kind)


def _values(obj: msgspec.Struct, nested: tuple[Any, ...]) -> list[Any]:
    values = list(msgspec.structs.astuple(obj))
    for i, kind in enumerate(nested):
        if kind is not None and values[i] is not None:
            values[i] = _values(values[i], _layout(kind)[1])
    return values


def pack(monitor: Monitor) -> bytes:
    values = list(msgspec.structs.astuple(monitor))
    spec = monitor.spec
    if spec is not None:
        values[_SPEC_AT] = [spec.kind, *_values(spec, _layout(type(spec))[1])]
    return _encoder.encode(values)


def unpack(packed: bytes, status: str | None = None) -> Monitor:
    """The monitor ``pack`` wrote; with ``status`` in place of the one it had then."""
    values = _decoder.decode(packed)
    spec = values[_SPEC_AT]
    if spec is not None:
        values[_SPEC_AT] = _BUILD_SPEC[spec[0]](spec)
    if status is not None:
        values[_STATUS_AT] = status
    return _BUILD_MONITOR(values)
