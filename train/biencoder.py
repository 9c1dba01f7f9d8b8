"""Fine-tune all-MiniLM-L6-v2 as the reader's sentence encoder (in-batch negatives + one hard one).

Research entry: python train/biencoder.py DATA.pkl OUT_DIR [epochs] [max_examples]
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from train.reader_data import Question, clean_positive, in_fit_split  # noqa: E402
from train.steps import base_model, mean_pool, optimiser, report, save, take_step  # noqa: E402

SEED = 20261205
FIT_PERCENT = 20  # questions kept from the encoder, to fit the combiner and abstention on


def body(title: str, sentence: str) -> str:
    """What the reader embeds for a sentence: its headline, then the sentence (as indexed)."""
    return f"{title}\n{sentence}"


def examples(questions: list[Question], seed: int = SEED) -> list[tuple[str, str, str]]:
    """(question, answering sentence, hard negative) triplets.

    Positives: sentences holding the answer that also share words with the question or the
    quiz's evidence paragraph (a sentence that merely names the answer in passing is left out);
    else, for questions whose results lack the answer, the evidence sentence that holds it.
    Hard negatives: the question's best-matching sentences without the answer.
    """
    rng = random.Random(seed)
    out: list[tuple[str, str, str]] = []
    for q in questions:
        negatives = [c for c in q.candidates[:15] if not c.label]
        if not negatives:
            continue
        positives = [c for c in q.candidates if clean_positive(c)]
        positives.sort(key=lambda c: -(c.overlap + c.evidence_overlap))
        for p in positives[:2]:
            n = rng.choice(negatives[:6])
            out.append((q.question, body(p.title, p.text), body(n.title, n.text)))
        if not positives and q.evidence:
            from train.reader_data import contains_answer

            held = [s.strip() for s in q.evidence.split(". ") if contains_answer(s, q.answer)]
            if held:
                n = rng.choice(negatives[:6])
                out.append((q.question, held[0], body(n.title, n.text)))
    rng.shuffle(out)
    return out


def train(
    triplets: list[tuple[str, str, str]],
    out_dir: Path,
    epochs: int = 2,
    batch: int = 32,
    lr: float = 2e-5,
    scale: float = 20.0,
    max_tokens: int = 96,
    seed: int = SEED,
) -> dict[str, Any]:
    """Multiple-negatives ranking loss over the batch's positives and hard negatives."""
    import torch

    tok, model = base_model(seed)
    steps = epochs * ((len(triplets) + batch - 1) // batch)
    opt, sched = optimiser(model, lr, steps)

    def encode(texts: list[str]) -> Any:
        t = tok(texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
        return mean_pool(model(**t).last_hidden_state, t["attention_mask"])

    started = time.time()
    step = 0
    rng = random.Random(seed)
    losses: list[float] = []
    for epoch in range(epochs):
        order = list(range(len(triplets)))
        rng.shuffle(order)
        for i in range(0, len(order), batch):
            rows = [triplets[j] for j in order[i : i + batch]]
            q = encode([r[0] for r in rows])
            d = encode([r[1] for r in rows] + [r[2] for r in rows])
            logits = scale * q @ d.T
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(rows)))
            take_step(loss, model, opt, sched, losses)
            step += 1
            report(step, steps, losses, started, f"epoch {epoch} ")
    save(model, tok, out_dir)
    return {"seconds": round(time.time() - started), "steps": steps, "final_loss": losses[-1]}


if __name__ == "__main__":
    import pickle

    qs: list[Question] = pickle.loads(Path(sys.argv[1]).read_bytes())
    learn = [q for q in qs if not in_fit_split(q.id, FIT_PERCENT)]
    ex = examples(learn)
    if len(sys.argv) > 4:
        ex = ex[: int(sys.argv[4])]
    print(f"{len(ex)} triplets from {len(learn)} questions", file=sys.stderr)
    info = train(ex, Path(sys.argv[2]), epochs=int(sys.argv[3]) if len(sys.argv) > 3 else 2)
    print(info)


def export(model_dir: Path, target: Path, int8: bool) -> float:
    """The fine-tuned encoder as a fused ONNX file (int8 weights if asked); returns the worst
    1 - cosine against the torch model on a few probe texts."""

    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from assistant.embeddings import OnnxEmbedder, export_hidden_states, quantize_int8

    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(str(model_dir))

    fp32 = target.with_name(target.stem + "-fp32.onnx")
    export_hidden_states(model, fp32)
    if int8:
        quantize_int8(fp32, target)
        fp32.unlink()
    else:
        fp32.replace(target)
    probe = [
        "Is Musk talking regularly with the Russian president?",
        "Musk-Putin bombshell\nThe Tesla C.E.O. has been in regular contact with Putin.",
    ]
    tok.save_pretrained(str(target.parent / "tok-tmp"))
    exported = OnnxEmbedder.from_file(target, target.parent / "tok-tmp")
    with torch.no_grad():
        t = tok(probe, padding=True, return_tensors="pt")
        ref = mean_pool(model(**t).last_hidden_state, t["attention_mask"]).numpy()
    got = np.asarray(exported.embed_documents(probe))
    return float(max(1 - float(np.dot(a, b)) for a, b in zip(got, ref, strict=True)))
