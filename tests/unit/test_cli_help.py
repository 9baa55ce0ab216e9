"""Every flag and argument of every ``xuptime`` command says what it is for in ``--help``."""

from __future__ import annotations

import argparse

from core.cli import build_parser


def test_every_argument_has_help() -> None:
    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, subparser in action.choices.items():
                    walk(subparser, f"{name} {sub}")
            elif not action.help:
                missing.append(f"{name}: {action.dest}")

    walk(build_parser(), "xuptime")
    assert missing == []
