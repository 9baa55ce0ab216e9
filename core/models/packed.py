"""Monitors as bytes, for processes that hold every monitor but read few of them (the main
process's ``core.engine.table.MonitorTable``, a worker's compiled monitors).

``pack`` writes a monitor as positional msgpack: a bit mask of the fields that differ from
their defaults, then those fields' values in declaration order; the spec likewise after its
kind (a nested Struct likewise). Without field names (which msgspec writes for a Struct) and
without the values every monitor shares (``GET``, ``200-299``, empty headers, ...), a plain
HTTP monitor takes about 60 bytes instead of 320 (110 with every value written), and the
bytes object is one allocation instead of the dozen objects of a decoded ``Monitor`` (about
800 bytes). ``unpack`` builds a new ``Monitor`` equal to the one packed (a few µs; values are
not validated again: they were when the monitor was parsed). A value counts as a default
only when it has the default's type too (``1`` is not ``True``).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from core.models import KINDS, Monitor

__all__ = ["LAYOUT", "Blobs", "MonitorBatch", "pack", "unpack", "without_url"]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()
_REQUIRED = object()


@functools.cache
def _layout(cls: type[msgspec.Struct]) -> tuple[tuple[str, ...], tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
    """A Struct's field names; for each the Struct type it nests (None: a plain value); its
    default (``_REQUIRED``: none) as compared; and what makes a fresh one (None: the default
    itself is used, immutable)."""
    fields = msgspec.structs.fields(cls)
    nested = tuple(f.type if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct) else None
                   for f in fields)
    defaults = tuple(f.default if f.default is not msgspec.NODEFAULT else
                     f.default_factory() if f.default_factory is not msgspec.NODEFAULT else _REQUIRED
                     for f in fields)
    factories = tuple(f.default_factory if f.default_factory is not msgspec.NODEFAULT else None for f in fields)
    return tuple(f.name for f in fields), nested, defaults, factories


@functools.cache
def _expander(cls: type[msgspec.Struct]) -> Any:
    """A function ``(seq, at)`` that makes the ``cls`` that ``_valuer`` wrote into ``seq`` from
    index ``at`` on: generated code, a branch a field and the Struct built keyword by keyword
    (as ``dataclasses`` writes ``__init__``; a loop over the fields took three times as long)."""
    names, nested, defaults, factories = _layout(cls)
    env: dict[str, Any] = {"cls": cls, "KINDS": KINDS, "expander": _expander}
    lines = ["def expand(seq, at):", "    mask = seq[at]", "    j = at + 1"]
    for i, name in enumerate(names):
        env[f"d{i}"], env[f"f{i}"], env[f"n{i}"] = defaults[i], factories[i], nested[i]
        lines += [f"    if mask & {1 << i}:", f"        v{i} = seq[j]", "        j += 1"]
        if nested[i] is not None:
            lines.append(f"        if v{i} is not None: v{i} = expander(n{i})(v{i}, 0)")
        elif cls is Monitor and name == "spec":
            lines.append(f"        if v{i} is not None: v{i} = expander(KINDS[v{i}[0]])(v{i}, 1)")
        lines.append(f"    else: v{i} = f{i}()" if factories[i] is not None else f"    else: v{i} = d{i}")
    lines.append(f"    return cls({', '.join(f'{name}=v{i}' for i, name in enumerate(names))})")
    exec("\n".join(lines) + "\n", env)  # (our own field names only)
    return env["expand"]


@functools.cache
def _valuer(cls: type[msgspec.Struct], blank: str | None = None, spec_blank: str | None = None) -> Any:
    """A function that writes a ``cls`` as ``[mask, *values that differ from their defaults]``:
    a nested Struct likewise, a spec (a field of several Struct types) as ``[kind, mask,
    *values]``; the str field ``blank`` (if any) written empty, and the spec's field
    ``spec_blank`` (if it has one). Generated code, as ``_expander``."""
    names, nested, defaults, _ = _layout(cls)
    env: dict[str, Any] = {"valuer": _valuer, "spec_blank": spec_blank}
    lines = ["def values(obj):", "    out = [0]", "    mask = 0"]
    for i, name in enumerate(names):
        env[f"d{i}"], env[f"t{i}"], env[f"n{i}"] = defaults[i], type(defaults[i]), nested[i]
        lines.append(f"    v = obj.{name}")
        if defaults[i] is not _REQUIRED:
            lines.append(f"    if type(v) is not t{i} or v != d{i}:")
        else:
            lines.append("    if True:")
        lines.append(f"        mask |= {1 << i}")
        if name == blank:
            lines.append('        out.append("")')
        elif nested[i] is not None:
            lines.append(f"        out.append(None if v is None else valuer(n{i})(v))")
        elif cls is Monitor and name == "spec":
            lines.append("        out.append(None if v is None else [v.kind, *valuer(type(v), spec_blank)(v)])")
        else:
            lines.append("        out.append(v)")
    lines += ["    out[0] = mask", "    return out"]
    exec("\n".join(lines) + "\n", env)  # (our own field names only)
    return env["values"]


def pack(monitor: Monitor, *, name: bool = True, url: bool = True) -> bytes:
    """``name`` False: the name left out (unpacked as ""), for a holder that keeps names
    apart or needs none (``MonitorTable``, and the workers it sends monitors to); ``url``
    False: an HTTP spec's URL left out likewise, for a holder that keeps it in another form
    (a worker's compiled engine, in its request line and ``Host``)."""
    return _encoder.encode(_valuer(Monitor, None if name else "name", None if url else "url")(monitor))


@functools.cache
def _spec_bit() -> int:
    return _layout(Monitor)[0].index("spec")


def without_url(packed: bytes, url: str) -> bytes | None:
    """``pack``'s bytes of an HTTP monitor whose URL is ``url``, with the URL left out (as
    ``pack(..., url=False)`` writes it), made from the bytes themselves: about a fifth of the
    cost of packing the monitor again. None when the bytes hold no such URL."""
    values = _decoder.decode(packed)
    mask = values[0]
    if not mask >> _spec_bit() & 1:
        return None
    spec = values[(mask & ((1 << _spec_bit()) - 1)).bit_count() + 1]
    # (an HTTP spec: [kind, mask, url, ...]; the URL is its first field and always written)
    if not (isinstance(spec, list) and len(spec) > 2 and spec[0] == "http" and spec[1] & 1 and spec[2] == url):
        return None
    spec[2] = ""
    return _encoder.encode(values)


def unpack(packed: bytes, status: str | None = None) -> Monitor:
    """The monitor ``pack`` wrote; with ``status`` in place of the one it had then."""
    monitor: Monitor = _expander(Monitor)(_decoder.decode(packed), 0)
    if status is not None:
        monitor.status = status
    return monitor


def _layout_text(cls: type[msgspec.Struct], seen: set[type]) -> str:
    if cls in seen:
        return cls.__name__
    seen.add(cls)
    names, nested, defaults, factories = _layout(cls)
    # (the same text in every process: no object's address, no random factory's value)
    shown = ["required" if d is _REQUIRED else f"fresh {getattr(f, '__qualname__', f)}"
             if f is not None and f() != f() else repr(d) for d, f in zip(defaults, factories, strict=True)]
    inner = [_layout_text(n, seen) for n in nested if n is not None]
    return f"{cls.__name__}{names!r}{shown!r}{inner!r}"


#: What ``pack`` writes depends on: every packed Struct's field names, in order, and their
#: defaults. Bytes stored beside a monitor (``monitors.packed``) are used only under the
#: layout they were written with; any change of a field or a default changes this text and
#: the stored bytes are made again from the monitor's columns.
LAYOUT: str = hashlib.blake2b(
    "".join(_layout_text(cls, set()) for cls in (Monitor, *KINDS.values())).encode(), digest_size=8).hexdigest()


class Blobs:
    """Byte strings as one buffer and ``len + 1`` offsets (int64): string ``i`` is
    ``data[offsets[i]:offsets[i + 1]]``. What a column of a million strings takes without
    an object a string (Arrow's binary arrays have this shape)."""

    __slots__ = ("data", "offsets")

    def __init__(self, data: Any, offsets: np.ndarray) -> None:
        self.data = memoryview(data).cast("B")
        self.offsets = np.asarray(offsets, dtype=np.int64)

    @classmethod
    def of(cls, items: list[bytes]) -> Blobs:
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum([len(item) for item in items], out=offsets[1:])
        return cls(b"".join(items), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> bytes:
        return self.data[self.offsets.item(i):self.offsets.item(i + 1)].tobytes()


@dataclass(slots=True)
class MonitorBatch:
    """Stored monitors as columns, row ``i`` of each one monitor: what the main process's
    table is filled from without a ``Monitor`` object a monitor. ``packed`` holds ``pack``'s
    bytes of each without its name (``name=False``); ``tags`` only monitors that have some."""

    ids: np.ndarray  # int64
    accounts: np.ndarray  # int64
    paused: np.ndarray  # bool
    kinds: list[str]
    statuses: list[str]
    names: Blobs  # (UTF-8)
    packed: Blobs
    tags: dict[int, tuple[str, ...]]
