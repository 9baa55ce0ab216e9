"""Log output of ``xuptime serve``: ``text`` (one readable line) or ``json`` (one object per
line, for log shippers), chosen with ``--log-format``.

A JSON line holds ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and the record's
structured extras (a status change carries ``monitor_id``, ``old``, ``new``, ``cause``);
a traceback goes in ``exc``. Messages never hold secrets: providers scrub responses before
they are logged (``core.alerting.base.scrub``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging

__all__ = ["JsonFormatter", "configure"]

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
               .replace("+00:00", "Z"), "level": record.levelname, "logger": record.name,
               "message": record.getMessage()}
        out.update((k, v) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_"))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
