"""The "never" imports of DESIGN.md §3, read from the code: every ``import`` anywhere in a
module counts (top level, inside functions, under ``TYPE_CHECKING``), in ``.py`` files by
their syntax tree and in Cython ``.pyx``/``.pxd`` files by a regex over ``import`` and
``cimport`` lines. A failure names the file, the line and the import.

The checker is tried on a small tree with one violation of each rule first, so a checker
that stopped seeing imports would fail here rather than pass everything.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "ext", "api", "web")
_PYX_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+c?import\b|c?import\s+([\w.]+(?:\s*,\s*[\w.]+)*))", re.M)

#: Modules that may be imported by the pure ones (models, state, clock): computation, no I/O
#: (numpy: the columns ``core.models.packed.MonitorBatch`` carries monitors in).
PURE_ALLOWED = ("__future__", "typing", "dataclasses", "enum", "functools", "hashlib", "ipaddress", "re", "secrets",
                "math", "collections", "datetime", "time", "bisect", "itertools", "abc", "calendar",
                "urllib.parse", "msgspec", "numpy", "core.models", "core.state", "core.clock")


@dataclass(frozen=True)
class Rule:
    """Modules under ``where`` (dotted prefixes) never import modules under ``never``."""

    where: tuple[str, ...]
    never: tuple[str, ...]
    why: str
    allowed_only: tuple[str, ...] = ()  # instead of ``never``: nothing outside these

    def applies(self, module: str) -> bool:
        return any(_under(module, w) for w in self.where)

    def refuses(self, imported: str) -> bool:
        if self.allowed_only:  # (``from core import models`` also reads as importing ``core``)
            return imported != "core" and not any(_under(imported, a) for a in self.allowed_only)
        return any(_under(imported, n) for n in self.never)


RULES = (
    Rule(("ext",), ("core",), "ext is the compiled leaf: what it needs is passed in"),
    Rule(("core.models", "core.state", "core.clock"), (), "models, state and clock are pure (no I/O)",
         allowed_only=PURE_ALLOWED),
    Rule(("core.engine",), ("core.storage", "core.alerting", "core.services", "core.main", "api", "web"),
         "the engine only checks: results leave through the transport"),
    Rule(("core.storage",), ("core.alerting", "core.services", "core.main", "api", "web"),
         "storage returns domain Structs and knows no provider, service or face"),
    Rule(("core.services",), ("core.main", "api", "web"), "services serve every face and know none"),
    Rule(("core.main",), ("api", "web"), "the serve process hosts the faces the CLI hands it"),
    Rule(("api",), ("web", "core.storage", "core.engine", "core.main"), "api reaches the store and engine only "
                                                                         "through the services"),
    Rule(("web",), ("api", "core.storage", "core.engine", "core.main"), "web reaches the store and engine only "
                                                                         "through the services"),
)


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(root: Path, path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in one file."""
    text = path.read_text()
    if path.suffix in (".pyx", ".pxd"):
        found = []
        for match in _PYX_IMPORT.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            names = [match.group(1)] if match.group(1) else [n.strip() for n in match.group(2).split(",")]
            found += [(line, n) for n in names]
        return found
    module = _module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # ``from core import ops`` imports core.ops: count the submodules named too
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def violations(root: Path) -> list[str]:
    out = []
    for top in PACKAGES:
        if not (root / top).is_dir():
            continue
        for path in sorted((root / top).rglob("*")):
            if path.suffix not in (".py", ".pyx", ".pxd") or ".venv" in path.parts:
                continue
            module = _module_name(root, path)
            for line, imported in imports_of(root, path):
                for rule in RULES:
                    if rule.applies(module) and rule.refuses(imported):
                        out.append(f"{path.relative_to(root)}:{line}: imports {imported} ({rule.why})")
    return out


def test_the_checker_sees_every_kind_of_violation(tmp_path: Path) -> None:
    files = {
        "ext/leaf.py": "import core.checkers.base\n",
        "ext/_leaf.pyx": "from libc.stdint cimport int64_t\nfrom core.models cimport Thing\n",
        "core/models.py": "import socket\nimport msgspec\n",
        "core/engine/worker.py": "def f():\n    from core.storage.duckdb import DuckDBStore\n",
        "core/storage/duckdb/monitors.py": "from core.alerting import PROVIDERS\n",
        "core/services/monitors.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import api.app\n",
        "core/main/process.py": "from api.app import create_app\n",
        "api/history.py": "from core.storage.duckdb import DuckDBStore\nfrom core.services import HistoryService\n",
        "api/monitors.py": "from ..core import engine\n",
        "web/pages.py": "from api import errors\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = violations(tmp_path)
    expected = [
        "api/history.py:1: imports core.storage.duckdb",
        "api/history.py:1: imports core.storage.duckdb.DuckDBStore",
        "core/engine/worker.py:2: imports core.storage.duckdb",
        "core/main/process.py:1: imports api.app",
        "core/models.py:1: imports socket",
        "core/services/monitors.py:3: imports api.app",
        "core/storage/duckdb/monitors.py:1: imports core.alerting",
        "ext/_leaf.pyx:2: imports core.models",
        "ext/leaf.py:1: imports core.checkers.base",
        "web/pages.py:1: imports api",
        "api/monitors.py:1: imports core.engine",
    ]
    for line in expected:
        assert any(v.startswith(line) for v in found), (line, found)
    assert not any("msgspec" in v or "libc" in v or "HistoryService" in v for v in found), found


def test_no_module_imports_what_its_layer_never_may() -> None:
    found = violations(ROOT)
    assert found == [], "\n".join(found)


def test_the_duckdb_store_implements_the_store_protocol() -> None:
    """Every method of ``Store`` exists on ``DuckDBStore`` with the same parameters."""
    from core.storage.base import Store
    from core.storage.duckdb import DuckDBStore

    names = [n for n, f in vars(Store).items() if inspect.isfunction(f) and not n.startswith("_")]
    assert len(names) > 30  # (the protocol is read, not empty)
    for name in names:
        expected = list(inspect.signature(getattr(Store, name)).parameters)
        assert list(inspect.signature(getattr(DuckDBStore, name)).parameters) == expected, name
