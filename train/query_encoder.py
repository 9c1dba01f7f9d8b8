"""Fine-tune the question side of all-MiniLM-L6-v2 against the base model's sentence vectors.

The answer step already holds a base-model vector for every stored sentence (pooled from its
chunk's token states, headline included, when the article was indexed). Only the question is
read by the fine-tuned copy, so ranking every candidate costs one more short model run per
question, whatever the number of candidates. Sentence vectors for training are made the same
way: the sentence read after its headline, its own tokens pooled.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from train.reader_data import (  # noqa: E402
    Candidate,
    Question,
    clean_positive,
    contains_answer,
    evidence_sentences,
)
from train.steps import (  # noqa: E402
    base_model,
    mean_pool,
    optimiser,
    report,
    save,
    shuffled_batches,
    take_step,
)

SEED = 20261205


def window(c: Candidate) -> tuple[str, tuple[int, int]]:
    """The text a training sentence is read in (its headline, then the sentence) and the
    sentence's span in it."""
    head = f"{c.title}\n" if c.title else ""
    return head + c.text, (len(head), len(head) + len(c.text))


def select(
    questions: list[Question],
    negatives: int = 5,
    seed: int = SEED,
    unanswered: bool = True,
    evidence: bool = False,
) -> list[tuple[str, list[Candidate], list[Candidate]]]:
    """Per question: its clean positives and its hardest negatives (best-matching sentences
    without the answer). Questions whose results lack the answer give negatives only (or
    nothing, unless `unanswered`)."""
    rng = random.Random(seed)
    out = []
    for q in questions:
        pos = [c for c in q.candidates if clean_positive(c)]
        pos.sort(key=lambda c: -(c.overlap + c.evidence_overlap))
        neg = [c for c in q.candidates[:20] if not c.label]
        rng.shuffle(neg)
        if not pos and evidence:
            # The quiz's own explanation, where it holds the answer, stands in for a sentence
            # of the results when none of them does.
            held = [s for s in evidence_sentences(q.evidence) if contains_answer(s, q.answer)]
            if held:
                pos = [Candidate(held[0], "", "", -1, -1, 1.0, 0, 1.0, True)]
        if not pos and not unanswered:
            out.append((q.question, [], []))
            continue
        out.append((q.question, pos[:1], neg[:negatives]))
    return out


def sentence_vectors(cands: list[Candidate], embedder: Any) -> Any:
    """Base-model vectors of training sentences, read in their window (see `window`)."""
    import numpy as np

    texts, spans = zip(*(window(c) for c in cands), strict=True) if cands else ((), ())
    out = []
    step = 256
    for i in range(0, len(texts), step):
        _, pooled = embedder.embed_with_spans(
            list(texts[i : i + step]), [[s] for s in spans[i : i + step]]
        )
        for vecs in pooled:
            v = vecs[0]
            out.append(
                np.zeros(384, dtype=np.float32) if v is None else np.asarray(v, dtype=np.float32)
            )
        print(
            f"  sentence vectors {min(i + step, len(texts))}/{len(texts)}",
            file=sys.stderr,
            flush=True,
        )
    return np.stack(out) if out else np.zeros((0, 384), dtype=np.float32)


def train(
    groups: list[tuple[str, list[int], list[int]]],
    vectors: Any,
    out_dir: Path,
    epochs: int = 3,
    batch: int = 32,
    lr: float = 3e-5,
    scale: float = 20.0,
    seed: int = SEED,
) -> dict[str, Any]:
    """Softmax over the batch's sentences (positives, hard negatives, other questions' ones):
    each question's positive must come first."""
    import torch

    tok, model = base_model(seed)
    docs = torch.from_numpy(vectors)
    examples = [(q, p, negs) for q, pos, negs in groups for p in pos]
    steps = epochs * ((len(examples) + batch - 1) // batch)
    opt, sched = optimiser(model, lr, steps)
    rng = random.Random(seed)
    started = time.time()
    losses: list[float] = []
    step = 0
    for epoch, picked in shuffled_batches(len(examples), batch, epochs, rng):
        rows = [examples[j] for j in picked]
        idx = [p for _, p, _ in rows] + [n for _, _, negs in rows for n in negs]
        t = tok(
            [r[0] for r in rows],
            padding=True,
            truncation=True,
            max_length=64,
            return_tensors="pt",
        )
        q = mean_pool(model(**t).last_hidden_state, t["attention_mask"])
        logits = scale * q @ docs[idx].T
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(rows)))
        take_step(loss, model, opt, sched, losses)
        step += 1
        report(step, steps, losses, started, f"epoch {epoch} ")
    save(model, tok, out_dir)
    return {"seconds": round(time.time() - started), "steps": steps, "examples": len(examples)}
