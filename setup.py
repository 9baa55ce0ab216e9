"""Builds the Cython extensions of ``ext/``.

Build toggles (environment variables):
- ``XUPTIME_CYTHON_ANNOTATE=1``: write the HTML annotation next to each ``.pyx``.
- ``XUPTIME_DEBUG=1``: compile with ``-O0 -g`` and Cython bounds/wraparound checks on.
- ``XUPTIME_SANITIZE=address``: AddressSanitizer and UndefinedBehaviorSanitizer (``-O1 -g``);
  run the interpreter with the sanitizer runtime preloaded (``make fuzz`` shows how).
- ``XUPTIME_FUZZ=1`` (with ``CC=clang``): libFuzzer coverage and AddressSanitizer, for the
  atheris target in ``tests/fuzz`` (``make fuzz`` builds into ``build/fuzz``, apart from the
  installed extensions).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig

from setuptools import Extension, setup


def _require_compiler() -> None:
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        sys.stderr.write(
            f"\nxuptime: no C compiler found (looked for {cc!r}).\n"
            "The timing wheel and result buffer are Cython extensions and need one.\n"
            "On Debian: apt-get install gcc python3-dev\n\n"
        )
        raise SystemExit(1)


def _require_openssl() -> None:
    """The compiled HTTP engine speaks TLS through the system's OpenSSL 3 (the one Python's
    ``ssl`` uses on Debian): its headers come with ``libssl-dev``."""
    include = sysconfig.get_config_var("INCLUDEDIR") or "/usr/include"
    places = [os.environ.get("XUPTIME_OPENSSL_INCLUDE", ""), include, "/usr/include", "/usr/local/include"]
    if not any(p and os.path.exists(os.path.join(p, "openssl", "ssl.h")) for p in places):
        sys.stderr.write(
            "\nxuptime: OpenSSL's headers were not found (looked for openssl/ssl.h in "
            f"{', '.join(p for p in places if p)}).\n"
            "The compiled HTTP engine (ext/_fasthttp) links against the system's libssl for HTTPS.\n"
            "On Debian: apt-get install libssl-dev\n"
            "(XUPTIME_OPENSSL_INCLUDE=DIR names another include directory.)\n\n"
        )
        raise SystemExit(1)


def _extensions() -> list[Extension]:
    from Cython.Build import cythonize

    debug = os.environ.get("XUPTIME_DEBUG") == "1"
    args = ["-O0", "-g"] if debug else ["-O3"]
    link: list[str] = []
    if os.environ.get("XUPTIME_FUZZ") == "1":
        args = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=fuzzer-no-link,address"]
        link = ["-fsanitize=address"]
    elif os.environ.get("XUPTIME_SANITIZE") == "address":
        args = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"]
        link = ["-fsanitize=address,undefined"]
    directives: dict[str, object] = {"language_level": 3, "embedsignature": True}
    if debug:
        directives.update(boundscheck=True, wraparound=True)
    modules = [
        Extension("ext._wheel", ["ext/_wheel.pyx"], extra_compile_args=args, extra_link_args=link),
        Extension("ext._buffer", ["ext/_buffer.pyx"], extra_compile_args=args, extra_link_args=link),
        Extension("ext._shared", ["ext/_shared.pyx"], extra_compile_args=args, extra_link_args=link),
        Extension("ext._fasthttp", ["ext/_fasthttp.pyx"], extra_compile_args=args, extra_link_args=link,
                  libraries=["ssl", "crypto"],
                  include_dirs=[d for d in [os.environ.get("XUPTIME_OPENSSL_INCLUDE")] if d]),
        Extension("ext._history", ["ext/_history.pyx"], extra_compile_args=args, extra_link_args=link),
    ]
    return cythonize(
        modules,
        compiler_directives=directives,
        annotate=os.environ.get("XUPTIME_CYTHON_ANNOTATE") == "1",
    )


if any(cmd in sys.argv for cmd in ("build_ext", "build", "bdist_wheel", "develop", "install", "editable_wheel")):
    _require_compiler()
    _require_openssl()

setup(ext_modules=_extensions())
