"""Docs are tested: the README's commands and the configuration table follow the code."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from assistant.cli import cli
from assistant.settings import PROJECT_DIR, Settings

README_PATH = PROJECT_DIR / "README.md"
DOCS = PROJECT_DIR / "docs"
CONFIGURATION = DOCS / "configuration.md"
README = README_PATH.read_text(encoding="utf-8")
COMMANDS = sorted(cli.commands)
MAX_README_LINES = 200


def test_commands_exist():
    assert {"add", "ask", "list", "show", "remove", "chat", "ui"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_documented(command: str):
    result = CliRunner().invoke(cli, [command, "--help"], obj={})
    assert result.exit_code == 0, result.output
    assert (cli.commands[command].help or "").strip(), f"`assistant {command}` has no help text"
    assert f"`assistant {command}" in README, (
        f"README.md does not mention `assistant {command}`: add it to the everyday commands"
    )


def test_readme_gives_the_two_commands():
    assert "make run" in README and "make test" in README


def test_readme_is_short():
    lines = README.count("\n")
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines (at most {MAX_README_LINES}): move detail to docs/"
    )


def makefile_targets(text: str) -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.MULTILINE))


def test_makefile_targets_are_read():
    """The parser finds real targets and ignores variable assignments (a test that can fail)."""
    text = "VENV := .venv\nexport X := 1\nrun: install\n\tcmd\nbench-load: install\n"
    assert makefile_targets(text) == {"run", "bench-load"}


@pytest.mark.parametrize("path", [README_PATH, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_every_make_target_named_exists(path: Path):
    targets = makefile_targets((PROJECT_DIR / "Makefile").read_text(encoding="utf-8"))
    # In inline code (`make bench`) or at the start of a line of a shell example.
    text = path.read_text(encoding="utf-8")
    named = set(re.findall(r"(?:`|^)make ([a-z][\w-]*)", text, re.MULTILINE))
    missing = sorted(named - targets)
    assert not missing, (
        f"{path.relative_to(PROJECT_DIR)} names `make {', '.join(missing)}`, which the Makefile "
        "does not have: fix the text or add the target"
    )


@pytest.mark.parametrize("path", [README_PATH, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_resolve(path: Path):
    text = path.read_text(encoding="utf-8")
    broken = [
        link
        for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
        if "://" not in link and not (path.parent / link).exists()
    ]
    assert not broken, f"{path.relative_to(PROJECT_DIR)} links to missing files: {broken}"


def test_screenshot_is_small():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert images, "README.md shows no screenshot of the chat window"
    for image in images:
        size = (PROJECT_DIR / image).stat().st_size
        assert size < 300_000, f"{image} is {size:,} bytes: keep README images under 300 KB"


# --- the configuration table -------------------------------------------------------------


def documented_default(value: Any) -> str:
    """A default as docs/configuration.md writes it."""
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:_}" if value >= 10_000 else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Path):
        xdg = os.environ.get("XDG_CACHE_HOME")
        for base, name in (
            (PROJECT_DIR, "<project>"),
            (Path(xdg) if xdg else None, "$XDG_CACHE_HOME"),
            (Path.home(), "~"),
        ):
            if base is not None and value.is_relative_to(base):
                return f"{name}/{value.relative_to(base).as_posix()}"
        return value.as_posix()
    return str(value)


def configuration_rows() -> dict[str, list[str]]:
    """setting name -> its row's cells, from the table in docs/configuration.md."""
    rows: dict[str, list[str]] = {}
    for line in CONFIGURATION.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*`(\w+)`\s*\|", line)
        if m:
            assert m.group(1) not in rows, f"docs/configuration.md: two rows for `{m.group(1)}`"
            rows[m.group(1)] = [c.strip() for c in line.strip().strip("|").split("|")]
    return rows


def test_documented_default_forms():
    assert documented_default(None) == "unset"
    assert documented_default(26_214_400) == "26_214_400"
    assert documented_default(0.365) == "0.365"
    assert documented_default(PROJECT_DIR / "data") == "<project>/data"


def test_configuration_table_lists_every_setting():
    rows = configuration_rows()
    missing = [name for name in Settings.model_fields if name not in rows]
    assert not missing, "docs/configuration.md has no row for " + "; ".join(
        f"`{name}` (add: | `{name}` | `ASSISTANT_{name.upper()}` | "
        f"`{documented_default(Settings.model_fields[name].default)}` | what and why |)"
        for name in missing
    )


def test_configuration_table_names_only_real_settings():
    unknown = sorted(set(configuration_rows()) - set(Settings.model_fields))
    assert not unknown, (
        f"docs/configuration.md has rows for {unknown}, which are not fields of "
        "assistant.settings.Settings: remove or rename them"
    )


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_configuration_row_matches_the_code(name: str):
    row = configuration_rows().get(name)
    if row is None:
        pytest.fail(f"docs/configuration.md has no row for `{name}`")
    variable, default = row[1], row[2]
    assert f"`ASSISTANT_{name.upper()}`" in variable, (
        f"docs/configuration.md: the row for `{name}` should give its variable "
        f"`ASSISTANT_{name.upper()}`"
    )
    expected = documented_default(Settings.model_fields[name].default)
    assert f"`{expected}`" in default, (
        f"docs/configuration.md gives `{name}` the default {default}; the code's is "
        f"`{expected}`: update the row (and its reason)"
    )
