"""Docs are tested: every CLI command has help text and is in the README."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.settings import PROJECT_DIR

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(cli.commands)


def test_commands_exist():
    assert {"add", "ask", "list", "show", "remove", "chat"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_documented(command: str):
    result = CliRunner().invoke(cli, [command, "--help"], obj={})
    assert result.exit_code == 0
    assert (cli.commands[command].help or "").strip()
    assert f"assistant {command}" in README, f"`assistant {command}` is not in the README"


def test_readme_gives_the_two_commands():
    assert "make run" in README and "make test" in README
