"""The ``xuptime serve`` process, a folder by concern: ``process`` (lifecycle and wiring),
``ingest`` (results into the store), ``jobs`` (rollups, reminders, usage), ``control`` (the
CLI's socket) and ``http`` (hosting the faces' ASGI app). It imports no face.

This module stays import-free: the CLI reads ``CONTROL_SOCKET`` without loading the process.
"""

#: The control socket's name in the data dir.
CONTROL_SOCKET = "xuptime.sock"
