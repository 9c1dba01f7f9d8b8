"""Server mode: the core scenarios against a real `chroma run` server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chroma_server import chroma_server, free_port

from assistant.assistant import Assistant
from assistant.settings import Settings
from assistant.store import StoreError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server for this module."""
    with chroma_server(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url


def test_core_scenarios_against_a_chroma_server(
    chroma_url: str, data_dir: Path, embedder, articles_dir: Path
):
    settings = Settings(data_dir=data_dir, chroma_url=chroma_url, collection="server_test")
    assistant = Assistant(settings, embedder=embedder)
    assert assistant.add([articles_dir]).summary() == "6 added, 0 unchanged, 0 replaced, 0 failed"
    # The vectors live in the server, not in the data directory.
    assert not (data_dir / "chroma").exists()
    server_side = assistant.store.vectors._client.get_collection("server_test")
    assert server_side.configuration["hnsw"]["ef_search"] == settings.search_ef
    answer = assistant.ask("Who saved the decisive penalty in the Northern Cup final?")
    assert any("Lindqvist saved the decisive penalty" in c.quote for c in answer.citations)
    assert assistant.add([articles_dir]).count("unchanged") == 6
    target = next(i.id for i in assistant.list_articles() if i.title.startswith("Lakeside"))
    assert assistant.remove([target]) == [target]
    assert all(p.article_id != target for p in assistant.search("Lindqvist penalty final"))
    assistant.close()
    # A second process-like client sees the same vectors.
    again = Assistant(settings, embedder=embedder)
    answer = again.ask("How many homes were evacuated in Port Alder?")
    assert any("300 homes" in c.quote for c in answer.citations)
    again.close()


def test_unreachable_server_is_a_clear_error(data_dir: Path, embedder):
    settings = Settings(data_dir=data_dir, chroma_url=f"http://127.0.0.1:{free_port()}")
    assistant = Assistant(settings, embedder=embedder)
    with pytest.raises(StoreError, match="cannot reach the Chroma server"):
        assistant.store.vectors  # noqa: B018


def test_bad_url_is_a_clear_error(data_dir: Path, embedder):
    assistant = Assistant(Settings(data_dir=data_dir, chroma_url="localhost"), embedder=embedder)
    with pytest.raises(StoreError, match="not an http"):
        assistant.store.vectors  # noqa: B018
