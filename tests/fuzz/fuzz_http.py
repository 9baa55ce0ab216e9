"""Coverage-guided fuzzing of the compiled HTTP parser against the general checker (atheris).

``make fuzz`` builds ``ext`` with libFuzzer coverage and AddressSanitizer into ``build/fuzz``,
puts it first on ``sys.path`` and runs this target: every input (see ``cases.py``) goes through
both paths, which must give the same outcome; a crash, a sanitizer report or a disagreement
stops the run and leaves the input as ``crash-*``. Keep what it finds in
``tests/fuzz/regressions/`` (``make test`` replays them).
"""

from __future__ import annotations

import os
import sys

import atheris

build = os.environ.get("XUPTIME_FUZZ_BUILD")
if build:
    sys.path.insert(0, build)

with atheris.instrument_imports(include=["core.checkers.http"]):
    from core.checkers import http  # noqa: F401  (instrumented: its branches guide the search too)

from tests.fuzz.cases import decode  # noqa: E402
from tests.hostile import CompiledJudge, judge_general  # noqa: E402

judge = CompiledJudge()


def one(data: bytes) -> None:
    case = decode(data)
    general = judge_general(case)
    compiled = judge(case)
    if compiled != general:
        raise AssertionError(f"compiled {compiled} != general {general} for {case.pieces!r} {case.end}")


if __name__ == "__main__":
    import ext._fasthttp

    print("fuzzing", ext._fasthttp.__file__, file=sys.stderr)
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
