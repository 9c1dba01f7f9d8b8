"""The installed package serves the chat window: a wheel, installed away from the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
from ui_server import free_port, wait_until_up

from assistant.settings import OFFLINE_ENV, PROJECT_DIR

STATIC = ("assistant/web/static/app.css", "assistant/web/static/reader.js")


def run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_installed_package_serves_the_chat_window(tmp_path: Path) -> None:
    # A copy of what the sdist holds, so the build leaves nothing in the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_DIR / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PROJECT_DIR / "assistant", source / "assistant", ignore=ignore)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", str(source), "-w", str(wheels)])
    (wheel,) = wheels.glob("news_assistant-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(STATIC) <= names, f"{wheel.name} lacks the chat window's static files"
    assert "assistant/web/app.py" in names and "ui.py" not in names
    shipped = {"assistant/models/rarity.json.gz", "assistant/models/reader/reader.json"}
    assert shipped <= names, f"{wheel.name} lacks the shipped models"

    site = tmp_path / "site"
    run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "PYTHONPATH": str(site),
        "ASSISTANT_DATA_DIR": str(tmp_path / "data"),
    }
    where = run(
        [sys.executable, "-c", "import assistant.web.app as m; print(m.__file__)"],
        cwd=elsewhere,
        env=env,
    )
    assert Path(where.strip()).is_relative_to(site), f"imported {where}, not the installed copy"

    port = free_port()
    log = tmp_path / "ui.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(site / "bin" / "assistant"), "ui", "--port", str(port)],
            cwd=elsewhere,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_until_up(url, timeout=180)
        except OSError:
            pytest.fail(f"`assistant ui` did not come up:\n{log.read_text()[-3000:]}")
        with urllib.request.urlopen(url, timeout=10) as response:
            page = response.read().decode()
        with urllib.request.urlopen(url + "config", timeout=10) as response:
            config = json.load(response)
        css = (site / STATIC[0]).read_text(encoding="utf-8").strip()
        assert "News assistant" in config["title"]
        assert css in config["css"], "the installed app.css is not what the app serves"
        assert "#reader-column { position: sticky;" in page
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_store_defaults_to_the_platform_data_folder(tmp_path: Path) -> None:
    """With no setting, the store goes to the platform's folder for app data, not the cwd."""
    env = {k: v for k, v in os.environ.items() if k != "ASSISTANT_DATA_DIR"}
    xdg = tmp_path / "xdg"
    env |= {**OFFLINE_ENV, "XDG_DATA_HOME": str(xdg), "PYTHONPATH": str(PROJECT_DIR)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = [sys.executable, "-m", "assistant.cli"]
    run([*command, "list"], cwd=elsewhere, env=env)
    assert (xdg / "news-assistant" / "articles.sqlite3").is_file()
    assert not any(elsewhere.iterdir()), "the store was written to the current folder"
    # Help lines wrap anywhere in a long path: compare without white space.
    usage = "".join(run([*command, "--help"], cwd=elsewhere, env=env).split())
    assert f"(default:{xdg / 'news-assistant'},orASSISTANT_DATA_DIR)" in usage
