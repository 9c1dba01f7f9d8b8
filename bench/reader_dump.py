"""Dump every dev question's retrieved passages and candidate sentences, for offline experiments.

Runs the product's own retrieval and answer-step features (Assistant._retrieve,
Composer.candidates / features / compose) once per question, asked with and without its quiz
date, so rankers and thresholds can be compared in memory. Dev questions only.
Usage: python -m bench.reader_dump --data-dir bench/cache/assistant-corpus_small OUT.pkl
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from assistant.settings import Settings, go_offline
from bench.matching import contains_answer

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "bench"


def load_questions(shared: Path) -> list[dict[str, Any]]:
    """The small-corpus dev questions and the dev null questions, with on-topic flags."""
    out = []
    for name in ("queries_small_dev.jsonl", "null_dev.jsonl"):
        for line in (shared / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                q = json.loads(line)
                q["answerable"] = bool(q.get("gold_ids"))
                q["on_topic"] = bool(q.get("search_gold_ids"))
                out.append(q)
    return out


def dump(
    data_dir: Path, questions: list[dict[str, Any]], passages_for_quotes: int
) -> dict[str, Any]:
    """{"rows": one per question and date mode, "texts": the candidates' article texts}."""
    from assistant.answer import Query
    from assistant.assistant import Assistant

    settings = Settings(
        data_dir=data_dir, quote_passages=passages_for_quotes, answer_ranker="heuristic"
    )
    assistant = Assistant(settings)
    composer = assistant.composer
    rows = []
    all_texts: dict[str, str] = {}
    for n, q in enumerate(questions):
        for dated in (True, False):
            as_of = date.fromisoformat(q["question_date"]) if dated else None
            inputs = assistant._inputs(q["question"], [], None, None, None, as_of)
            state = assistant._retrieve(inputs)
            row: dict[str, Any] = {
                "id": q["id"],
                "question": q["question"],
                "answer": q.get("answer"),
                "answerable": q["answerable"],
                "on_topic": q["on_topic"],
                "dated": dated,
                "empty": bool(state.get("empty")),
                "passages": [],
                "candidates": [],
            }
            if not state.get("empty"):
                passages = state["passages"]
                row["passages"] = [
                    {
                        "article_id": p.article_id,
                        "start": p.start,
                        "end": p.end,
                        "text": p.text,
                        "published": p.published,
                    }
                    for p in passages
                ]
                ids = [p.article_id for p in passages[:passages_for_quotes]]
                articles = assistant.store.articles(ids)
                texts = {aid: a.text for aid, a in articles.items()}
                all_texts.update(texts)
                sentences = composer.candidates(passages, texts)
                found = composer.features(
                    state["searched_for"], state["vector"], sentences, articles
                )
                row["q_vector"] = list(state["vector"])
                keys = [(c.sentence.article_id, c.sentence.start, c.sentence.end) for c in found]
                stored = composer._stored(keys)
                for c, key in zip(found, keys, strict=True):
                    s = c.sentence
                    spans = composer._sentences(texts[s.article_id])
                    prev = ""
                    if s.index > 0:
                        a, b = spans[s.index - 1]
                        if "\n" not in texts[s.article_id][b : s.start]:
                            prev = texts[s.article_id][a:b]
                    row["candidates"].append(
                        {
                            **asdict(s),
                            "text": c.text,
                            "title": c.title,
                            "previous": prev,
                            "overlap": c.overlap,
                            "cosine": c.cosine,
                            "offered": c.offered,
                            "label": contains_answer(c.text, q.get("answer")),
                            "vector": [float(x) for x in stored[key]] if key in stored else None,
                        }
                    )
                # Today's answer step (6 passages), as shipped.
                heur = composer.settings.model_copy(update={"quote_passages": 6})
                composer.settings = heur
                try:
                    answer = composer.compose(
                        Query(q["question"], state["searched_for"], passages, state["vector"])
                    )
                finally:
                    composer.settings = settings
                row["heuristic"] = {
                    "abstained": answer.abstained,
                    "confidence": answer.confidence,
                    "quotes": [c.quote for c in answer.citations],
                }
            rows.append(row)
        if n % 20 == 0:
            print(f"{n}/{len(questions)}", file=sys.stderr, flush=True)
    return {"rows": rows, "texts": all_texts}


def main() -> None:
    go_offline()
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--passages", type=int, default=10)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    data = dump(args.data_dir, load_questions(args.shared), args.passages)
    args.out.write_bytes(pickle.dumps(data))
    print(f"{len(data['rows'])} rows in {args.out}")


if __name__ == "__main__":
    main()
