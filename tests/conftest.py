"""Shared fixtures: the real embedding model once per session, a fresh store per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.settings import go_offline

go_offline()  # before any library that could reach the network is imported

from assistant.assistant import Assistant  # noqa: E402
from assistant.embeddings import ModelEmbedder  # noqa: E402
from assistant.settings import PROJECT_DIR, Settings  # noqa: E402

DATA = Path(__file__).parent / "data"
ARTICLES = DATA / "articles"
SAMPLE = PROJECT_DIR / "corpus" / "musk-putin-contact.txt"


@pytest.fixture(scope="session")
def embedder() -> ModelEmbedder:
    """The real all-MiniLM-L6-v2, loaded once for the whole session."""
    defaults = Settings()
    model = ModelEmbedder(defaults.embedding_engine, defaults.cache_dir)
    model.embed_query("warm up")
    return model


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory; nothing touches the user's store."""
    folder = tmp_path / "data"
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(folder))
    monkeypatch.chdir(tmp_path)  # a stray .env in the project must not leak into tests
    return folder


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


@pytest.fixture
def assistant(settings: Settings, embedder: ModelEmbedder) -> Iterator[Assistant]:
    a = Assistant(settings, embedder=embedder)
    yield a
    a.close()


@pytest.fixture
def articles_dir(tmp_path: Path) -> Path:
    """A copy of the test articles plus the sample article, safe to edit."""
    folder = tmp_path / "articles"
    shutil.copytree(ARTICLES, folder)
    shutil.copy(SAMPLE, folder / SAMPLE.name)
    return folder


@pytest.fixture
def loaded(assistant: Assistant, articles_dir: Path) -> Assistant:
    """An assistant with the test articles and the sample article indexed."""
    report = assistant.add([articles_dir])
    assert report.count("failed") == 0, report.failed
    return assistant
