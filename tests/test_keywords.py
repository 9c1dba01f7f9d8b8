"""Word rarity: the collection's own, blended with ordinary news when the collection is small."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from assistant.keywords import RARITY_FILE, KeywordIndex, background
from assistant.ranker import MODEL_DIR

SENTENCE = "What role should Musk play, and did Putin ask him not to activate Starlink?"


def test_in_a_small_collection_asking_words_weigh_less_than_names(tmp_path: Path):
    index = KeywordIndex(tmp_path / "keywords")
    index.build(0, ["a"], [SENTENCE])
    usual = background(30.0)
    assert usual is not None
    what, starlink = index.terms(["what starlink"])[0]
    # One chunk: every word is as rare as every other.
    assert index.idf(what) == index.idf(starlink)
    assert index.idf(what, usual) < index.idf(starlink, usual) - 0.5
    assert background(0.0) is None


def test_in_a_large_collection_the_background_changes_little(tmp_path: Path):
    index = KeywordIndex(tmp_path / "keywords")
    texts = [f"story {i} about the council budget" for i in range(3000)] + [SENTENCE]
    index.build(0, [str(i) for i in range(len(texts))], texts)
    usual = background(30.0)
    for term in index.terms([SENTENCE])[0]:
        assert abs(index.idf(term, usual) - index.idf(term)) < 0.1 * index.idf(term), term


def test_the_shipped_rarity_comes_from_the_readers_training_articles():
    with gzip.open(RARITY_FILE, "rt", encoding="utf-8") as f:
        table = json.load(f)
    spec = json.loads((MODEL_DIR / "reader.json").read_text(encoding="utf-8"))
    sha = spec["train_sha256"]["articles.jsonl"]
    assert table["train_sha256"]["articles.jsonl"] == sha
    assert "make train" in table["built_by"]
    assert table["paragraphs"] > 100_000 and min(table["df"].values()) >= table["min_df"]
