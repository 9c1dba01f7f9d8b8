"""Tune sentence scoring and the abstention threshold on the dev questions (never held-out).

Runs retrieval once per question over an already-imported store, caches every candidate
sentence's features, then grid-searches the scoring weights and the threshold in memory.
Usage: python bench/tune.py --data-dir bench/cache/assistant-corpus_small
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pickle
import sys
from pathlib import Path

from assistant.settings import Settings, go_offline

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "bench"


def load_scorer():
    spec = importlib.util.spec_from_file_location("score", SHARED / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def features(data_dir: Path, questions: list[dict]) -> list[dict]:
    from assistant.assistant import Assistant, standalone_query
    from assistant.store import index_text

    assistant = Assistant(Settings(data_dir=data_dir))
    composer = assistant.composer
    rows = []
    for i, q in enumerate(questions):
        query = standalone_query(q["question"], [])
        vector = assistant.embedder.embed_query(query)
        passages = assistant.retriever.search(query, 10, vector=vector)
        ids = [p.article_id for p in passages[: assistant.settings.quote_passages]]
        articles = assistant.store.articles(ids)
        texts = {aid: a.text for aid, a in articles.items()}
        sentences = composer.candidates(passages, texts)
        bodies = [texts[s.article_id][s.start : s.end] for s in sentences]
        vecs = composer.vectors(  # the vectors the answer step uses
            sentences,
            [
                index_text(articles[s.article_id].title, b)
                for s, b in zip(sentences, bodies, strict=True)
            ],
        )
        weights = assistant.store.term_weights([query, *bodies])
        q_terms = weights[0]
        total = sum(q_terms.values()) or 1.0
        cands = []
        for s, body, vec, terms in zip(sentences, bodies, vecs, weights[1:], strict=False):
            cos = sum(a * b for a, b in zip(vector, vec, strict=False))
            overlap = sum(w for t, w in q_terms.items() if t in terms) / total
            cands.append(
                {
                    "rank": s.rank,
                    "cos": cos,
                    "overlap": overlap,
                    "text": body,
                    "article_id": s.article_id,
                    "index": s.index,
                }
            )
        rows.append(
            {
                "id": q["id"],
                "answer": q.get("answer"),
                "answerable": q["answerable"],
                "passages": [p.text for p in passages],
                "dense": [p.dense for p in passages],
                "keyword": [p.keyword for p in passages],
                "cands": cands,
                "q_idf": total,
                "n_terms": len(q_terms),
            }
        )
        if i % 25 == 0:
            print(f"{i}/{len(questions)}", file=sys.stderr)
    return rows


def main() -> None:
    go_offline()
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=Path("bench/cache/tune.pkl"))
    args = ap.parse_args()
    questions = []
    for name in ("queries_small_dev.jsonl", "null_dev.jsonl"):
        for line in (SHARED / name).read_text().splitlines():
            q = json.loads(line)
            q["answerable"] = bool(q.get("gold_ids"))
            questions.append(q)
    if args.cache.exists():
        rows = pickle.loads(args.cache.read_bytes())
    else:
        rows = features(args.data_dir, questions)
        args.cache.write_bytes(pickle.dumps(rows))
    print(f"cached features for {len(rows)} questions in {args.cache}")
    scorer = load_scorer()
    grid_search(rows, scorer)


def evaluate(rows, scorer, a: float, b: float, c: float, max_quotes: int = 3, keep: float = 0.75):
    """Per question: (confidence, quotes contain the answer) for one scoring setting."""
    out = []
    for r in rows:
        scored = sorted(
            ((a * x["cos"] + b * x["overlap"] - c * x["rank"], x) for x in r["cands"]),
            key=lambda t: -t[0],
        )
        if not scored:
            out.append((0.0, False, r["answerable"]))
            continue
        best = scored[0][0]
        picked = [x for v, x in scored[:max_quotes] if v >= keep * best]
        hit = bool(r["answer"]) and any(
            scorer.contains_answer(x["text"], r["answer"]) for x in picked
        )
        out.append((best, hit, r["answerable"]))
    return out


def best_threshold(results, max_false: float = 0.08):
    """The threshold with the most null abstentions while false abstention stays <= max_false."""
    ans = sorted(conf for conf, _, answerable in results if answerable)
    nulls = [conf for conf, _, answerable in results if not answerable]
    allowed = int(max_false * len(ans))
    threshold = ans[allowed] if allowed < len(ans) else 1.0
    abstain_null = sum(c < threshold for c in nulls) / max(len(nulls), 1)
    false_abstain = sum(c < threshold for c in ans) / max(len(ans), 1)
    answered = [(hit) for conf, hit, answerable in results if answerable and conf >= threshold]
    qar = sum(answered) / max(len(ans), 1)
    return threshold, abstain_null, false_abstain, qar


def grid_search(rows, scorer) -> None:
    print("a_cos b_overlap c_rank | threshold null_abstain false_abstain quote_answer_rate")
    table = []
    for a in (0.0, 0.25, 0.5, 0.75, 1.0):
        for b in (0.0, 0.25, 0.5, 0.75, 1.0):
            if a == b == 0:
                continue
            for c in (0.0, 0.01, 0.03):
                res = evaluate(rows, scorer, a, b, c)
                t, an, fa, qar = best_threshold(res)
                hits = sum(h for _, h, ans in res if ans) / sum(1 for r in rows if r["answerable"])
                table.append((an, qar, a, b, c, t, fa, hits))
    for an, qar, a, b, c, t, fa, hits in sorted(table, reverse=True)[:25]:
        print(
            f"{a:.2f} {b:.2f} {c:.2f} | {t:.3f} null {an:.3f} false {fa:.3f} "
            f"qar {qar:.3f} (no abstain qar {hits:.3f})"
        )


if __name__ == "__main__":
    main()
