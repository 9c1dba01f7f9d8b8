"""The chat window on a network: a real Gradio server with a login, over real HTTP."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from gradio_client import Client, handle_file
from ui_server import free_port, load_ui, serving, wait_until_up

from assistant.assistant import Assistant
from assistant.cli import cli
from assistant.embeddings import ModelEmbedder
from assistant.settings import PROJECT_DIR, Settings, UnsafeServing

ARTICLES = Path(__file__).parent / "data" / "articles"
SAMPLE = PROJECT_DIR / "corpus" / "musk-putin-contact.txt"
USER, PASSWORD = "editor", "pw-Kx81-never-shown"
QUESTION_LIMIT = 300


@dataclass
class Served:
    url: str
    assistant: Assistant
    logged: list[str]  # every log message of the process while the server ran
    outbound: list[str]


class Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


@pytest.fixture(scope="module")
def served(embedder: ModelEmbedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The real app with a login, on loopback: a set password is asked for there too."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("auth-data"),
        auth_user=USER,
        auth_password=PASSWORD,
        max_question_chars=QUESTION_LIMIT,
    )
    assistant = Assistant(settings, embedder=embedder)
    assert assistant.add([ARTICLES]).count("failed") == 0
    logged: list[str] = []
    handler = Collect(logged)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with serving(assistant) as (url, outbound):
            yield Served(url.rstrip("/"), assistant, logged, outbound)
    finally:
        assistant.close()
        root.removeHandler(handler)
        root.setLevel(level)


def log_in(client: httpx.Client) -> None:
    response = client.post("/login", data={"username": USER, "password": PASSWORD})
    assert response.status_code == 200, response.text


def call(client: httpx.Client, api_name: str, *data: object) -> list[dict[str, object]]:
    """Call an API endpoint the way gradio_client does; the events of its result stream."""
    started = client.post(f"/gradio_api/call/{api_name}", json={"data": list(data)})
    assert started.status_code == 200, started.text
    event_id = started.json()["event_id"]
    events = []
    with client.stream("GET", f"/gradio_api/call/{api_name}/{event_id}", timeout=120) as stream:
        kind = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append({"event": kind, "data": json.loads(line.removeprefix("data: "))})
    return events


API_CALLS = ["add", "add_text", "remove", "ask", "search"]


def test_without_the_login_the_page_and_the_api_are_refused(served: Served) -> None:
    before = [a.id for a in served.assistant.list_articles()]
    with httpx.Client(base_url=served.url) as stranger:
        page = stranger.get("/")
        # Gradio serves the page's shell with a login form and none of the app.
        assert page.status_code == 200 and '"auth_required":true' in page.text
        assert "remove-choice" not in page.text and "Add files" not in page.text
        for path in ("/config", "/gradio_api/info", "/gradio_api/openapi.json"):
            assert stranger.get(path).status_code == 401, path
        for name in API_CALLS:
            for route in (f"/gradio_api/call/{name}", f"/gradio_api/run/{name}"):
                refused = stranger.post(route, json={"data": [before[0]]})
                assert refused.status_code == 401, (route, refused.text)
                assert "Not authenticated" in refused.text
        upload = stranger.post("/gradio_api/upload", files={"files": ("a.txt", b"Some text.")})
        assert upload.status_code == 401
        joined = stranger.post("/gradio_api/queue/join", json={"data": [], "fn_index": 0})
        assert joined.status_code == 401

        wrong = stranger.post("/login", data={"username": USER, "password": "guess"})
        assert wrong.status_code == 400
        assert stranger.get("/config").status_code == 401
    assert [a.id for a in served.assistant.list_articles()] == before


def test_with_the_login_the_api_adds_asks_and_removes(served: Served) -> None:
    with httpx.Client(base_url=served.url) as editor:
        log_in(editor)
        assert editor.get("/config").status_code == 200
        assert "remove-choice" in editor.get("/").text

    # gradio_client logs in through the same /login route; one client is one session, so the
    # remove choices the add returns are the ones the remove call is checked against.
    client = Client(served.url, auth=(USER, PASSWORD), verbose=False)
    result = client.predict([handle_file(str(SAMPLE))], api_name="/add")
    assert "1 added" in result[0], result[0]
    new_id = next(a.id for a in served.assistant.list_articles() if "Musk" in a.title)

    job = client.submit("Who won the Northern Cup final?", "", "", api_name="/ask")
    job.result(timeout=120)
    assert "Lakeside Rovers" in json.dumps(job.outputs())

    removed = client.predict(new_id, api_name="/remove")
    assert removed[0].startswith("Removed"), removed[0]
    assert served.assistant.get(new_id) is None


def test_a_question_over_the_limit_is_refused_in_the_chat(served: Served) -> None:
    with httpx.Client(base_url=served.url) as editor:
        log_in(editor)
        config = editor.get("/config").json()
        boxes = {
            c["props"].get("elem_id"): c["props"]
            for c in config["components"]
            if c.get("type") == "textbox"
        }
        assert boxes["question"]["max_length"] == QUESTION_LIMIT  # the browser stops typing
        assert boxes["search-query"]["max_length"] == QUESTION_LIMIT

        # The API has no box: the Assistant refuses, the chat says why.
        events = call(editor, "ask", "why " * 100, "", "")
        text = json.dumps(events)
        assert "Could not answer" in text and "the limit is 300" in text, text
        assert events[-1]["event"] == "complete"

        events = call(editor, "search", "why " * 100, 5)
        assert events[-1]["event"] == "error" and "the limit is 300" in json.dumps(events[-1])


def test_the_password_is_not_logged_or_sent_anywhere(served: Served) -> None:
    with httpx.Client(base_url=served.url) as editor:
        log_in(editor)
        call(editor, "search", "lighthouse keeper", 3)
    assert served.logged, "no log record was collected at all"
    assert not [m for m in served.logged if PASSWORD in m]
    assert served.outbound == []
    settings = served.assistant.settings
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert PASSWORD not in settings.model_dump_json()


@pytest.fixture
def no_login_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ASSISTANT_AUTH_USER", "ASSISTANT_AUTH_PASSWORD", "ASSISTANT_NO_AUTH"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_login_env")
def test_python_ui_refuses_an_open_network_address(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load_ui().main(["--host", "0.0.0.0"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0 without a login" in err
    assert "ASSISTANT_AUTH_USER" in err and "--no-auth" in err

    with pytest.raises(SystemExit) as exited:
        load_ui().main(["--auth-password", PASSWORD])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "a login password is set but no user" in err and PASSWORD not in err


@pytest.mark.usefixtures("no_login_env")
def test_cli_ui_refuses_an_open_network_address_without_a_login(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = CliRunner().invoke(cli, ["ui", "--host", "0.0.0.0"], obj={})
    assert refused.exit_code == 1
    assert "Error: refusing to listen on 0.0.0.0 without a login" in refused.stderr
    assert "ASSISTANT_AUTH_USER and ASSISTANT_AUTH_PASSWORD" in refused.stderr
    assert "--auth-user and --auth-password" in refused.stderr and "--no-auth" in refused.stderr

    monkeypatch.setenv("ASSISTANT_AUTH_USER", "ann")
    half = CliRunner().invoke(cli, ["ui"], obj={})
    assert half.exit_code == 1 and "a login user is set but no password" in half.stderr


def start_ui(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[str]:
    """`assistant ui` as a real process (the real model, Gradio, sockets)."""
    return subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "ui", "--port", str(port), *args],
        env={**os.environ, "PYTHONPATH": str(PROJECT_DIR), **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> str:
    """Ctrl-C, as a user stops it; its output."""
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return out + err


@pytest.mark.slow
@pytest.mark.usefixtures("no_login_env")
def test_cli_ui_serves_openly_only_with_no_auth_and_asks_for_a_set_login(data_dir: Path) -> None:
    port = free_port()
    # --no-auth: an open server, said so. It binds 0.0.0.0 only for these few seconds.
    server = start_ui(["--host", "0.0.0.0", "--no-auth"], {}, port)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", timeout=120)
        assert httpx.get(f"http://127.0.0.1:{port}/config").status_code == 200
    finally:
        output = stop(server)
    assert "warning: listening on 0.0.0.0 without a login (--no-auth)" in output

    # A login from the environment is asked for on loopback, and never printed.
    port = free_port()
    login = {"ASSISTANT_AUTH_USER": USER, "ASSISTANT_AUTH_PASSWORD": PASSWORD}
    server = start_ui(["--host", "127.0.0.1"], login, port)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", timeout=120)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/config").status_code == 401
            log_in(client)
            assert client.get("/config").status_code == 200
    finally:
        output = stop(server)
    assert f"asks for the login of {USER}" in output
    assert PASSWORD not in output


def test_settings_keep_the_password_out_of_reprs() -> None:
    settings = Settings(auth_user=USER, auth_password=PASSWORD)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert "auth_password=SecretStr('**********')" in repr(settings)
    with pytest.raises(UnsafeServing) as refused:
        load_ui().launch(None, settings.model_copy(update={"no_auth": True}), "0.0.0.0")
    assert PASSWORD not in str(refused.value)
