"""Near-duplicate stories: detected at ingestion, answered once, the other outlets listed."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from assistant.answer import source_line
from assistant.assistant import Assistant
from assistant.cli import cli
from assistant.duplicates import signature
from assistant.embeddings import ModelEmbedder
from assistant.settings import PROJECT_DIR, Settings

ARTICLES = PROJECT_DIR / "tests" / "data" / "articles"
STORY = (ARTICLES / "harbor-storm.md").read_text(encoding="utf-8").split("\n", 1)[1]
QUESTION = "How many homes were evacuated in Port Alder?"


def syndicated(tmp_path: Path, article_id: str = "coastal-courier-17") -> Path:
    """The harbour story as another outlet ran it: own headline, a dateline, an edit."""
    body = STORY.replace("early Sunday", "early on Sunday")
    record = {
        "id": article_id,
        "title": "Port Alder evacuates 300 homes as storm tops harbor wall",
        "source": "coastalcourier.example",
        "published": "2026-03-02",
        "url": "https://coastalcourier.example/storm",
        "text": "PORT ALDER (Wire) — " + body.strip(),
    }
    path = tmp_path / f"{article_id}.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def test_signatures_tell_a_rewrite_from_another_story():
    a = signature(STORY)
    assert a.jaccard(signature(STORY.replace("early Sunday", "early on Sunday"))) > 0.8
    other = (ARTICLES / "council-transit-vote.txt").read_text(encoding="utf-8")
    assert a.jaccard(signature(other)) < 0.1


def test_a_syndicated_copy_is_found_and_answered_once(loaded: Assistant, tmp_path: Path):
    original = next(a for a in loaded.list_articles() if "Port Alder" in a.title)
    report = loaded.add([syndicated(tmp_path)])
    [result] = report.results
    assert result.status == "added" and result.duplicate_of == original.id
    assert report.summary().endswith("1 near-duplicate of stored stories")
    assert len(loaded.list_articles()) == 7  # both are kept: each can be listed and shown

    answer = loaded.ask(QUESTION)
    cited = {c.article_id for c in answer.citations}
    assert cited and cited <= {original.id, "coastal-courier-17"} and len(cited) == 1
    assert len({p.article_id for p in answer.passages} & {original.id, "coastal-courier-17"}) == 1
    citation = answer.citations[0]
    [outlet] = citation.also_in
    other = ({original.id, "coastal-courier-17"} - cited).pop()
    assert outlet.article_id == other
    assert "also in:" in source_line(citation) and "also in:" in answer.text


def test_removing_the_first_copy_hands_the_story_to_the_other(loaded: Assistant, tmp_path: Path):
    original = next(a for a in loaded.list_articles() if "Port Alder" in a.title)
    loaded.add([syndicated(tmp_path)])
    assert loaded.remove([original.id]) == [original.id]
    answer = loaded.ask(QUESTION)
    assert {c.article_id for c in answer.citations} == {"coastal-courier-17"}
    assert all(not c.also_in for c in answer.citations)
    assert all(not p.also_in for p in answer.passages)
    # The story comes back as a near-duplicate of the copy that is now first.
    again = loaded.add([ARTICLES / "harbor-storm.md"])
    assert again.results[0].duplicate_of == "coastal-courier-17"


def test_groups_survive_a_restart(
    loaded: Assistant, tmp_path: Path, settings: Settings, embedder: ModelEmbedder
):
    original = next(a for a in loaded.list_articles() if "Port Alder" in a.title)
    loaded.add([syndicated(tmp_path)])
    loaded.close()
    reopened = Assistant(settings, embedder=embedder)
    try:
        assert reopened.store.duplicate_groups([original.id]) == {
            original.id: [original.id, "coastal-courier-17"]
        }
        # A third copy added after the restart joins the same group.
        third = reopened.add([syndicated(tmp_path, "third-copy")])
        assert third.results[0].duplicate_of == original.id
        assert reopened.store.duplicate_groups(["third-copy"])["third-copy"][0] == original.id
    finally:
        reopened.close()


def test_cli_names_the_near_duplicate(embedder: ModelEmbedder, data_dir: Path, tmp_path: Path):
    runner = CliRunner()
    obj = {"embedder": embedder}
    first = runner.invoke(cli, ["add", "-q", str(ARTICLES / "harbor-storm.md")], obj=obj)
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli, ["add", "-q", str(syndicated(tmp_path))], obj={**obj})
    assert second.exit_code == 0, second.output
    assert "near-duplicate: " in second.stderr and "coastal-courier-17" in second.stderr
    assert second.stdout.strip().endswith("1 near-duplicate of stored stories")
