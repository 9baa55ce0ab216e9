"""How long each tier of history is kept: raw checks (and agents' reports), hourly rollups,
daily rollups. Written ``raw=90d,hourly=2y,daily=forever`` (the defaults) on the command line
and in the API; ``None`` (``forever``) keeps a tier without end.

Invariants: raw <= hourly <= daily (a coarser tier outlives a finer one, so a history answer
always has a tier to come from); raw is at least a day (closed days are compacted whole, and
hours roll up from raw rows) and every tier is at most 100 years.
"""

from __future__ import annotations

import itertools
import re

import msgspec

__all__ = ["DEFAULT_RETENTION", "TIERS", "Retention", "RetentionError", "format_duration", "parse_duration",
           "parse_retention"]

TIERS = ("raw", "hourly", "daily")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"([0-9]{1,6})([smhdwy])")
_MAX_S = 100 * 365 * 86400


class RetentionError(ValueError):
    """A retention setting that cannot be taken: ``field`` names the tier (or ``retention``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class Retention(msgspec.Struct, frozen=True):
    """Seconds each tier is kept (None: forever)."""

    raw: int | None = 90 * 86400
    hourly: int | None = 2 * 365 * 86400
    daily: int | None = None

    def text(self) -> dict[str, str]:
        """The tiers as written (``{"raw": "90d", ...}``)."""
        return {tier: format_duration(getattr(self, tier)) for tier in TIERS}

    def check(self) -> Retention:
        """Itself, or ``RetentionError`` naming the tier that breaks an invariant."""
        order = [(tier, getattr(self, tier)) for tier in TIERS]
        if self.raw is not None and self.raw < 86400:
            raise RetentionError("raw", "must be at least 1d")
        for tier, seconds in order:
            if seconds is not None and not 0 < seconds <= _MAX_S:
                raise RetentionError(tier, "must be between 1d and 100y, or forever")
        for (finer, a), (coarser, b) in itertools.pairwise(order):
            if b is not None and (a is None or a > b):
                raise RetentionError(coarser, f"must be at least as long as {finer} ({format_duration(a)})")
        return self


DEFAULT_RETENTION = Retention()


def format_duration(seconds: int | None) -> str:
    """90 * 86400 -> "90d"; None -> "forever" (the largest unit that divides it)."""
    if seconds is None:
        return "forever"
    for unit in ("y", "w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_retention(text: str, base: Retention = DEFAULT_RETENTION) -> Retention:
    """``"raw=30d,hourly=1y"`` over ``base`` (tiers not named keep theirs); checked."""
    changes: dict[str, int | None] = {}
    for part in text.split(","):
        tier, eq, value = part.strip().partition("=")
        tier, value = tier.strip(), value.strip().lower()
        if not eq or tier not in TIERS:
            raise RetentionError("retention", f"{part.strip()!r}: write tier=duration, tiers {', '.join(TIERS)}")
        if tier in changes:
            raise RetentionError(tier, "given twice")
        changes[tier] = parse_duration(tier, value)
    return msgspec.structs.replace(base, **changes).check()


def parse_duration(tier: str, value: str) -> int | None:
    """``"90d"`` -> seconds, ``"forever"`` -> None; ``RetentionError`` naming ``tier`` else."""
    if value == "forever":
        return None
    found = _DURATION.fullmatch(value)
    if found is None:
        raise RetentionError(tier, f"{value!r} is not a duration: write e.g. 90d, 2y, 12w or forever")
    return int(found[1]) * _UNITS[found[2]]
