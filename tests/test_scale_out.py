"""Scale-out: several app processes, each with its own data folder, over one Chroma server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from chroma_server import chroma_server
from test_duplicates import syndicated

from assistant.answer import Answer
from assistant.assistant import Assistant
from assistant.chunking import chunk_article
from assistant.keywords import KeywordIndex
from assistant.locking import WriteLock
from assistant.replica import RECORDS, vector_id
from assistant.settings import PROJECT_DIR, Settings
from assistant.store import Pending, StoreBusy, StoreError

pytestmark = pytest.mark.slow

PENALTY = "Who saved the decisive penalty in the Northern Cup final?"
HOMES = "How many homes were evacuated in Port Alder?"


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chroma_server(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url


@pytest.fixture
def collection(request: pytest.FixtureRequest) -> str:
    """A collection of this test's own on the shared server."""
    return f"t{abs(hash(request.node.name)) % 10**8}"


def _settings(folder: Path, url: str, collection: str, **more: Any) -> Settings:
    return Settings(data_dir=folder, chroma_url=url, collection=collection, sync_interval=0, **more)


def _verified(assistant: Assistant, answer: Answer) -> Answer:
    """The answer, once every quote is checked against the text this process holds."""
    for c in answer.citations:
        article = assistant.get(c.article_id)
        assert article is not None and article.text[c.start : c.end] == c.quote
    return answer


def _live_vector_ids(assistant: Assistant) -> set[str]:
    """The vector ids the live records need: every chunk of each article's current version."""
    ids = set()
    for info in assistant.list_articles():
        stored = assistant.store.stored(info.id)
        assert stored is not None
        version = stored.article.content_hash
        ids.update(vector_id(c.id, version) for c in stored.chunks)
    return ids


def _server_vector_ids(assistant: Assistant) -> set[str]:
    return set(assistant.store.vectors._collection.get(include=[])["ids"])


def _only_live_vectors(assistant: Assistant) -> bool:
    """Whether the server holds exactly the chunk and sentence vectors of the live versions."""
    replica = assistant.store.replica
    assert replica is not None
    versions = {i.id: _hash(assistant, i.id) for i in assistant.list_articles()}
    sentences = set(replica.sentences.get(include=[])["ids"])
    return _server_vector_ids(assistant) == _live_vector_ids(assistant) and sentences == {
        f"{aid}@{version}" for aid, version in versions.items()
    }


def _hash(assistant: Assistant, article_id: str) -> str:
    article = assistant.get(article_id)
    assert article is not None
    return article.content_hash


def test_replicas_see_each_others_adds_replaces_and_removes(
    chroma_url: str, collection: str, tmp_path: Path, embedder, articles_dir: Path
):
    a = Assistant(_settings(tmp_path / "a", chroma_url, collection), embedder=embedder)
    b = Assistant(_settings(tmp_path / "b", chroma_url, collection), embedder=embedder)
    assert a.add([articles_dir]).count("added") == 6
    # B never saw the files: its folder fills from the server's records, vectors included.
    assert {i.id for i in b.list_articles()} == {i.id for i in a.list_articles()}
    answer = _verified(b, b.ask(PENALTY))
    assert any("Lindqvist saved the decisive penalty" in c.quote for c in answer.citations)
    assert b.store.keyword_search("Lindqvist", 3), "B's keyword index holds A's articles"
    assert not b.store.without_sentence_vectors(), "sentence vectors came with the records"

    storm = articles_dir / "harbor-storm.md"
    storm.write_text(storm.read_text().replace("about 300 homes", "about 450 homes"))
    assert a.add([articles_dir]).count("replaced") == 1
    quotes = [c.quote for c in _verified(b, b.ask(HOMES)).citations]
    assert any("450 homes" in q for q in quotes) and not any("300 homes" in q for q in quotes)
    # The old version's vectors are gone, the new one's all there.
    assert _live_vector_ids(a) == _live_vector_ids(b)
    assert _only_live_vectors(a)

    cup = next(i.id for i in b.list_articles() if i.title.startswith("Lakeside"))
    assert b.remove([cup]) == [cup]
    assert cup not in {i.id for i in a.list_articles()}
    assert all(c.article_id != cup for c in _verified(a, a.ask(PENALTY)).citations)
    assert all(p.article_id != cup for p in a.search("Lindqvist penalty final"))
    assert _only_live_vectors(a)
    assert b.remove([cup]) == []
    # Its tombstone keeps nothing of it: no text, no title.
    assert b.store.replica is not None
    tomb = b.store.replica.records.get(ids=[cup], include=["documents", "metadatas"])
    assert tomb["documents"] == [""] and set(tomb["metadatas"][0]) == {"op", "stamp", "writer"}

    # A third process starting empty holds exactly what the others hold.
    c = Assistant(_settings(tmp_path / "c", chroma_url, collection), embedder=embedder)
    assert c.list_articles() == b.list_articles()
    for x in (a, b, c):
        x.close()


def test_replicas_group_near_duplicates_as_the_writer_did(
    chroma_url: str, collection: str, tmp_path: Path, embedder, articles_dir: Path
):
    a = Assistant(_settings(tmp_path / "a", chroma_url, collection), embedder=embedder)
    a.add([articles_dir])
    original = next(i.id for i in a.list_articles() if "Port Alder" in i.title)
    # An id that sorts first: a replica applying records by id would make it the canonical.
    [copy] = a.add([syndicated(tmp_path, "00-wire")]).results
    assert copy.duplicate_of == original
    b = Assistant(_settings(tmp_path / "b", chroma_url, collection), embedder=embedder)
    ids = [i.id for i in b.list_articles()]
    assert b.store.duplicate_groups(ids) == a.store.duplicate_groups(ids) != {}
    # The story is answered once, from the same outlet, the other listed.
    answers = [_verified(x, x.ask(HOMES)).citations for x in (a, b)]
    assert [[(c.article_id, [o.article_id for o in c.also_in]) for c in x] for x in answers] == [
        [(c.article_id, [o.article_id for o in c.also_in]) for c in answers[0]]
    ] * 2
    assert len({c.article_id for c in answers[1]} & {original, "00-wire"}) == 1
    a.close()
    b.close()


def test_a_replica_keeps_the_writers_sentences_and_takes_turns_in_its_folder(
    chroma_url: str, collection: str, tmp_path: Path, embedder, articles_dir: Path
):
    a = Assistant(_settings(tmp_path / "a", chroma_url, collection), embedder=embedder)
    a.add([articles_dir])
    b = Assistant(
        _settings(tmp_path / "b", chroma_url, collection, lock_timeout=0.5), embedder=embedder
    )
    ids = [i.id for i in b.list_articles()]
    # The sentences as the writer's chunker split them, kept in the cache: no split per question.
    spans = b.store.sentence_spans(ids)
    assert set(spans) == set(ids) and spans == a.store.sentence_spans(ids)

    gone, kept = ids[0], ids[1]
    with WriteLock(tmp_path / "b" / "write.lock", timeout=1).held():
        assert a.remove([gone]) == [gone]
        # B cannot apply the change to its folder now: it answers from its cache as it is.
        assert gone in {i.id for i in b.list_articles()}
        assert b.search("Lindqvist penalty final")
        with pytest.raises(StoreBusy, match="another program is writing"):
            b.remove([kept])
    assert a.store.replica is not None and a.store.replica._live([kept]) != {}
    assert {i.id for i in b.list_articles()} == set(ids) - {gone}, "the next look applies it"
    a.close()
    b.close()


def test_a_new_version_without_a_field_the_old_one_had(
    chroma_url: str, collection: str, tmp_path: Path, embedder
):
    a = Assistant(_settings(tmp_path / "a", chroma_url, collection), embedder=embedder)
    b = Assistant(_settings(tmp_path / "b", chroma_url, collection), embedder=embedder)
    text = "The Millbrook council approved the new bridge on Tuesday after a long debate."
    feed = tmp_path / "feed.jsonl"
    first = {"id": "bridge", "title": "Bridge", "text": text, "author": "Ann Lee", "url": "u"}
    feed.write_text(json.dumps(first) + "\n")
    a.add([feed])
    before = b.get("bridge")
    assert before is not None and before.author == "Ann Lee"
    second = {"id": "bridge", "title": "Bridge", "text": text + " Work starts in May."}
    feed.write_text(json.dumps(second) + "\n")
    assert a.add([feed]).count("replaced") == 1
    new = b.get("bridge")
    assert new is not None and new == a.get("bridge")
    assert new.author is None and new.url is None and new.text.endswith("May.")
    a.close()
    b.close()


def test_a_replica_looks_at_most_every_sync_interval(
    chroma_url: str, collection: str, tmp_path: Path, embedder, articles_dir: Path
):
    a = Assistant(_settings(tmp_path / "a", chroma_url, collection), embedder=embedder)
    slow = _settings(tmp_path / "b", chroma_url, collection).model_copy(
        update={"sync_interval": 3600.0}
    )
    b = Assistant(slow, embedder=embedder)
    assert b.list_articles() == []  # its first look
    a.add([articles_dir])
    assert b.list_articles() == [], "looked again before sync_interval passed"
    assert b.store.replica is not None
    b.store.replica.catch_up(force=True)
    assert len(b.list_articles()) == 6
    a.close()
    b.close()


def test_a_changed_record_is_found_within_the_window_after_the_last_look(
    chroma_url: str, collection: str, tmp_path: Path, embedder, articles_dir: Path
):
    """A write stamped before a reader's look but landing after it is not missed."""
    a = Assistant(_settings(tmp_path / "a", chroma_url, collection), embedder=embedder)
    b = Assistant(_settings(tmp_path / "b", chroma_url, collection), embedder=embedder)
    assert b.list_articles() == []
    replica, looked = a.store.replica, b.store.replica
    assert replica is not None and looked is not None
    # Stamped a second before B's last look (a clock behind, or a write that took that long).
    late = int(looked._meta("replica_position") or 0) - 10**9
    real_now = replica.now
    replica.now = lambda: late  # type: ignore[method-assign]
    a.add([articles_dir / "harbor-storm.md"])
    replica.now = real_now  # type: ignore[method-assign]
    assert [i.title for i in b.list_articles()] == [a.list_articles()[0].title]
    a.close()
    b.close()


def test_half_written_versions_are_never_answered_from(
    chroma_url: str, collection: str, tmp_path: Path, embedder, articles_dir: Path
):
    """The server as a writer killed between its steps leaves it: each reader answers from
    whole articles, and the same write run again completes it."""
    a = Assistant(_settings(tmp_path / "a", chroma_url, collection), embedder=embedder)
    b = Assistant(_settings(tmp_path / "b", chroma_url, collection), embedder=embedder)
    a.add([articles_dir])
    storm_id = next(i.id for i in a.list_articles() if i.title.startswith("Storm"))
    old = a.get(storm_id)
    assert old is not None
    new = replace(old, text=old.text.replace("300 homes", "450 homes"))
    pending = Pending(new, chunk_article(new.id, new.text, 800, 1), (storm_id,))
    embedded = a.store.embed([pending])
    replica = a.store.replica
    assert replica is not None

    # Killed after step 1: the new version's vectors are on the server, its record is not.
    replica.put_vectors([pending], embedded)
    for reader in (a, b):
        quotes = [c.quote for c in _verified(reader, reader.ask(HOMES)).citations]
        assert any("300 homes" in q for q in quotes) and not any("450 homes" in q for q in quotes)
        assert reader.store.content_hashes([storm_id]) == {storm_id: old.content_hash}
        # The new vectors are among the nearest, and dense search leaves them out.
        vector = embedder.embed_query(HOMES)
        raw = reader.store.vectors.similarity_search_by_vector_with_relevance_scores(vector, 50)
        fresh = [d for d, _ in raw if d.metadata["version"] == new.content_hash]
        assert fresh
        assert len(reader.store.dense_search(vector, 50)) == len(raw) - len(fresh)

    # Killed after step 2 (the commit): the record is new, the old vectors are still there.
    replica.commit([pending], embedded)
    quotes = [c.quote for c in _verified(b, b.ask(HOMES)).citations]
    assert any("450 homes" in q for q in quotes) and not any("300 homes" in q for q in quotes)
    assert b.get(storm_id) == new
    assert _server_vector_ids(b) > _live_vector_ids(b), "the old version's vectors are left"
    # Nobody answers from them, and the sweep of unused vectors deletes them.
    assert b.store.replica is not None
    assert b.store.replica.sweep(older_than=0) > 0
    assert _only_live_vectors(b)
    a.close()
    b.close()


def test_a_folder_with_articles_the_server_lacks_is_refused(
    chroma_url: str, collection: str, tmp_path: Path, embedder, articles_dir: Path
):
    embedded = Assistant(Settings(data_dir=tmp_path / "a"), embedder=embedder)
    embedded.add([articles_dir / "harbor-storm.md"])
    embedded.close()
    served = Assistant(_settings(tmp_path / "a", chroma_url, collection), embedder=embedder)
    with pytest.raises(StoreError, match="that the Chroma server's collection"):
        served.list_articles()


# --- real processes ---------------------------------------------------------------------


def _cli(data_dir: Path, url: str, collection: str, **env: str) -> tuple[list[str], dict[str, str]]:
    environment = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_DIR),
        "ASSISTANT_DATA_DIR": str(data_dir),
        "ASSISTANT_CHROMA_URL": url,
        "ASSISTANT_COLLECTION": collection,
        **env,
    }
    return [sys.executable, "-m", "assistant.cli"], environment


def _feed(path: Path, n: int, revised: bool = False) -> Path:
    with path.open("w") as f:
        for i in range(n):
            plan = (
                f"a revised plan costing {i * 3000} euros"
                if revised
                else (f"a plan costing {i * 1000} dollars")
            )
            text = (
                f"Story {i}: the Millbrook council met on day {i} to discuss item {i * 7}. "
                f"Council member number {i} proposed {plan}. "
                "The vote was postponed until the next session."
            )
            record = {"id": f"story-{i:03d}", "title": f"Council story {i}", "text": text}
            f.write(json.dumps(record) + "\n")
    return path


def test_two_cli_processes_share_one_store(
    chroma_url: str, collection: str, tmp_path: Path, embedder, articles_dir: Path
):
    cmd, env_a = _cli(tmp_path / "a", chroma_url, collection)
    added = subprocess.run(
        [*cmd, "add", "-q", str(articles_dir)], env=env_a, capture_output=True, text=True
    )
    assert added.returncode == 0, added.stderr
    assert "6 added" in added.stdout

    # Process B (this one), its own folder: the exact quote from A's article.
    b = Assistant(_settings(tmp_path / "b", chroma_url, collection), embedder=embedder)
    answer = _verified(b, b.ask(PENALTY))
    cited = [c for c in answer.citations if "Lindqvist saved the decisive penalty" in c.quote]
    assert cited
    assert b.remove([cited[0].article_id]) == [cited[0].article_id]

    asked = subprocess.run(
        [*cmd, "ask", "--json", PENALTY], env=env_a, capture_output=True, text=True
    )
    assert asked.returncode == 0, asked.stderr
    cites = json.loads(asked.stdout)["citations"]
    assert all(c["article_id"] != cited[0].article_id for c in cites)
    listed = subprocess.run([*cmd, "list", "--json"], env=env_a, capture_output=True, text=True)
    ids = {json.loads(line)["id"] for line in listed.stdout.splitlines()}
    assert cited[0].article_id not in ids and len(ids) == 5
    b.close()


def _live_records(url: str, collection: str, since: int) -> int:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    host, port = url.removeprefix("http://").split(":")
    client = chromadb.HttpClient(
        host=host, port=int(port), settings=ChromaSettings(anonymized_telemetry=False)
    )
    try:
        records = client.get_collection(RECORDS.format(collection))
    except Exception:  # not created yet
        return 0
    return len(records.get(where={"stamp": {"$gt": since}}, include=[])["ids"])


def _kill_during(
    cmd: list[str], env: dict[str, str], url: str, collection: str, since: int, at: int
) -> None:
    """Run the command and SIGKILL it once `at` records stamped after `since` are committed."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 900  # generous: the machine may be busy
    while _live_records(url, collection, since) < at:
        if proc.poll() is not None:
            pytest.fail(f"the add ended before it could be killed: {proc.stderr.read()!r}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the add wrote nothing in 15 minutes")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _whole(reader: Assistant, versions: dict[str, set[str]]) -> int:
    """Check that every article the reader holds is one whole version: its text is one of
    the known texts, and every chunk of it has its vector on the server. Returns how many."""
    infos = reader.list_articles()
    on_server = _server_vector_ids(reader)
    for info in infos:
        stored = reader.store.stored(info.id)
        assert stored is not None and stored.article.text in versions[info.id]
        needed = {vector_id(c.id, stored.article.content_hash) for c in stored.chunks}
        assert needed <= on_server
    return len(infos)


def _text(assistant: Assistant, article_id: str) -> str:
    article = assistant.get(article_id)
    assert article is not None
    return article.text


def test_a_writer_killed_mid_add_or_replace_leaves_only_whole_articles(
    chroma_url: str, collection: str, tmp_path: Path, embedder
):
    v1 = _feed(tmp_path / "v1.jsonl", 120)
    v2 = _feed(tmp_path / "v2.jsonl", 120, revised=True)
    texts: dict[str, set[str]] = {}
    for feed in (v1, v2):
        for line in feed.read_text().splitlines():
            record = json.loads(line)
            texts.setdefault(record["id"], set()).add(record["text"])
    cmd, env = _cli(tmp_path / "a", chroma_url, collection, ASSISTANT_WRITE_BATCH_CHUNKS="8")
    b = Assistant(_settings(tmp_path / "b", chroma_url, collection), embedder=embedder)
    replica = b.store.replica
    assert replica is not None

    _kill_during([*cmd, "add", "-q", str(v1)], env, chroma_url, collection, 0, at=16)
    partial = _whole(b, texts)
    assert 16 <= partial < 120
    answer = _verified(b, b.ask("How much did council member number 12 propose to spend?"))
    assert any("12000 dollars" in c.quote for c in answer.citations)

    # Complete the add from B, then kill A half-way through replacing every article.
    assert b.add([v1]).count("unchanged") == partial
    started = replica.now()
    _kill_during([*cmd, "add", "-q", str(v2)], env, chroma_url, collection, started, at=16)
    assert _whole(b, texts) == 120
    revised = [i.id for i in b.list_articles() if "revised" in _text(b, i.id)]
    assert 16 <= len(revised) < 120
    answer = _verified(b, b.ask("How much did council member number 13 propose to spend?"))
    best = answer.passages[0]
    assert best.article_id == "story-013" and "revised plan costing 39000 euros" in best.text

    # The same add run again finishes the job; the sweep leaves exactly the live vectors.
    rerun = b.add([v2])
    assert rerun.count("failed") == 0 and rerun.count("unchanged") == len(revised)
    assert _whole(b, texts) == 120
    replica.sweep(older_than=0)
    assert _only_live_vectors(b)
    b.close()


@pytest.mark.parametrize("point", ["write-after-vectors", "write-after-commit"])
def test_a_writer_killed_at_a_crash_point_leaves_whole_articles_and_catches_up(
    chroma_url: str, collection: str, tmp_path: Path, embedder, point: str
):
    feed = _feed(tmp_path / "feed.jsonl", 5)
    cmd, env = _cli(tmp_path / "a", chroma_url, collection, ASSISTANT_TEST_CRASH_AT=point)
    killed = subprocess.run([*cmd, "add", "-q", str(feed)], env=env, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    b = Assistant(_settings(tmp_path / "b", chroma_url, collection), embedder=embedder)
    committed = point == "write-after-commit"
    assert len(b.list_articles()) == (5 if committed else 0)
    # The writer's own folder, its cache step never made, catches up from the server.
    env.pop("ASSISTANT_TEST_CRASH_AT")
    rerun = subprocess.run([*cmd, "add", "-q", str(feed)], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert ("5 unchanged" if committed else "5 added") in rerun.stdout
    answer = _verified(b, b.ask("How much did council member number 3 propose to spend?"))
    assert any("3000 dollars" in c.quote for c in answer.citations)
    assert b.store.replica is not None
    b.store.replica.sweep(older_than=0)
    assert _only_live_vectors(b)
    b.close()


def test_a_question_never_waits_for_a_keyword_index_rebuild(
    chroma_url: str,
    collection: str,
    tmp_path: Path,
    embedder,
    articles_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    a = Assistant(_settings(tmp_path / "a", chroma_url, collection), embedder=embedder)
    b = Assistant(_settings(tmp_path / "b", chroma_url, collection), embedder=embedder)
    assert a.add([articles_dir]).count("added") == 6
    assert len(b.list_articles()) == 6  # B catches up from the server
    assert b.store.keyword_search("Lindqvist", 3)  # B's first index: built before answering
    a.add_text(
        "Quarry road reopens\n\nThe Zellworth quarry road reopened on Tuesday after "
        "engineers finished shoring up the cutting, the county said."
    )
    # From here on, building a keyword index waits until the test lets it go.
    gate = threading.Event()
    build = KeywordIndex.build

    def held_build(index: KeywordIndex, *args: Any, **kwargs: Any) -> None:
        assert gate.wait(timeout=120), "the test never let the build go"
        build(index, *args, **kwargs)

    monkeypatch.setattr(KeywordIndex, "build", held_build)
    # B sees the new article at once (by meaning) while its keyword index is rebuilt behind.
    hits = b.search("Zellworth quarry road reopened")
    assert not gate.is_set()
    assert hits and "Zellworth" in hits[0].text
    assert hits[0].keyword is None, "the old keyword index cannot know the new article yet"
    gate.set()
    assert b.store._rebuilding is not None
    b.store._rebuilding.join(timeout=120)
    hits = b.search("Zellworth quarry road reopened")
    assert "Zellworth" in hits[0].text and hits[0].keyword is not None
    for x in (a, b):
        x.close()
