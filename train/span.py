"""Fine-tune all-MiniLM-L6-v2 to point at the answer inside a sentence (an extractive span head).

Distant labels from ../shared/train: in a candidate sentence that contains the quiz's answer,
the answer's words are the span; in a hard negative (a best-matching sentence without it), the
span is the [CLS] token ("not here"). The question is the first segment, the headline and the
sentence the second. Trained on the questions the reader's encoder learns from (not the 20%
kept for fitting).
"""

from __future__ import annotations

import random
import re
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from assistant.ranker import MAX_TOKENS, pointer_input  # noqa: E402
from train.query_encoder import SEED  # noqa: E402
from train.reader_data import Question, clean_positive, evidence_sentences  # noqa: E402
from train.steps import (  # noqa: E402
    base_model,
    optimiser,
    report,
    save,
    shuffled_batches,
    take_step,
)


def find(answer: str, sentence: str) -> tuple[int, int] | None:
    """The answer's characters in the sentence (case-insensitive, whole words), if there."""
    a = re.escape(answer.strip()).replace("\\ ", r"\s+")
    found = re.search(rf"(?<!\w){a}(?!\w)", sentence, re.IGNORECASE)
    return found.span() if found else None


def evidence_span(q: Question) -> tuple[str, tuple[int, int]] | None:
    """The first sentence of the quiz's evidence paragraph holding the answer, and where."""
    for sentence in evidence_sentences(q.evidence):
        span = find(q.answer, sentence)
        if span is not None:
            return sentence, span
    return None


def examples(
    questions: list[Question],
    negatives: int = 3,
    positives: int = 2,
    seed: int = SEED,
    evidence: bool = False,
) -> list[tuple[str, str, tuple[int, int] | None]]:
    """(question, second segment, the answer's characters in it or None), shuffled.

    With `evidence`, a question whose results hold no clean positive learns from the quiz's
    evidence sentence that holds the answer instead (read after the headline of its
    best-matching result), and from its hard negatives as well."""
    rng = random.Random(seed)
    out: list[tuple[str, str, tuple[int, int] | None]] = []
    for q in questions:
        pos = []
        for c in q.candidates:
            if clean_positive(c):
                span = find(q.answer, c.text)
                if span is not None:
                    pos.append((c, span))
        segments = [(pointer_input(c.title, c.text), span) for c, span in pos[:positives]]
        held = evidence_span(q) if evidence and not pos and q.candidates else None
        if held is not None:
            segments.append((pointer_input(q.candidates[0].title, held[0]), held[1]))
        if not segments:
            continue
        for (text, at), (s, e) in segments:
            out.append((q.question, text, (at + s, at + e)))
        neg = [c for c in q.candidates[:20] if not c.label]
        rng.shuffle(neg)
        for c in neg[:negatives]:
            out.append((q.question, pointer_input(c.title, c.text)[0], None))
    rng.shuffle(out)
    return out


def token_targets(
    offsets: list[tuple[int, int]], seq: list[int | None], span: Any
) -> tuple[int, int]:
    """The first and last token of `span` in the second segment, or (0, 0) for none."""
    if span is None:
        return 0, 0
    s, e = span
    inside = [
        i
        for i, (o, sid) in enumerate(zip(offsets, seq, strict=True))
        if sid == 1 and o[0] < e and o[1] > s
    ]
    return (inside[0], inside[-1]) if inside else (0, 0)


def train(
    data: list[tuple[str, str, tuple[int, int] | None]],
    out_dir: Path,
    epochs: int = 2,
    batch: int = 16,
    lr: float = 5e-5,
) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForQuestionAnswering

    tok, model = base_model(SEED, AutoModelForQuestionAnswering)
    steps = epochs * ((len(data) + batch - 1) // batch)
    opt, sched = optimiser(model, lr, steps)
    rng = random.Random(SEED)
    started = time.time()
    losses: list[float] = []
    step = 0
    for _, picked in shuffled_batches(len(data), batch, epochs, rng):
        rows = [data[j] for j in picked]
        t = tok(
            [r[0] for r in rows],
            [r[1] for r in rows],
            padding=True,
            truncation="only_second",
            max_length=MAX_TOKENS,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        targets = [
            token_targets(t["offset_mapping"][k].tolist(), t.sequence_ids(k), r[2])
            for k, r in enumerate(rows)
        ]
        del t["offset_mapping"]
        out = model(**t)
        starts = torch.tensor([a for a, _ in targets])
        ends = torch.tensor([b for _, b in targets])
        loss = (
            torch.nn.functional.cross_entropy(out.start_logits, starts)
            + torch.nn.functional.cross_entropy(out.end_logits, ends)
        ) / 2
        take_step(loss, model, opt, sched, losses)
        report(step, steps, losses, started)
        step += 1
    save(model, tok, out_dir)
    return {"seconds": round(time.time() - started), "examples": len(data), "epochs": epochs}


class SpanScorer:
    """The trained span model in torch: how sure it is that each sentence holds the answer."""

    def __init__(self, model_dir: Path) -> None:
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        torch.set_num_threads(2)
        self.tok = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModelForQuestionAnswering.from_pretrained(str(model_dir)).eval()

    def scores(self, question: str, sentences: list[tuple[str, str]]) -> list[float]:
        """For each (headline, sentence), its best span's score, as the answer step reads it."""
        import torch

        from assistant.ranker import SPAN_TOKENS, best_span, pointable

        if not sentences:
            return []
        texts = [pointer_input(title, s) for title, s in sentences]
        t = self.tok(
            [question] * len(texts),
            [text for text, _ in texts],
            padding=True,
            truncation="only_second",
            max_length=MAX_TOKENS,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        offsets = t.pop("offset_mapping").tolist()
        with torch.no_grad():
            out = self.model(**t)
        result = []
        for k, (_, at) in enumerate(texts):
            allowed = pointable(t.sequence_ids(k), offsets[k], at)
            if not allowed.any():
                result.append(-30.0)
                continue
            starts, ends = out.start_logits[k].numpy(), out.end_logits[k].numpy()
            result.append(best_span(starts, ends, allowed, SPAN_TOKENS)[0])
        return result


def export(model_dir: Path, target: Path) -> float:
    """The span model as fused int8 ONNX (one output: start and end logits per token); returns
    the largest difference from the torch model's logits on a probe pair."""
    import numpy as np
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from assistant.embeddings import export_hidden_states, quantize_int8, session_for

    model = AutoModelForQuestionAnswering.from_pretrained(
        str(model_dir), attn_implementation="eager"
    ).eval()
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    fp32 = target.with_name(target.stem + "-fp32.onnx")
    export_hidden_states(
        model, fp32, lambda out: torch.stack([out.start_logits, out.end_logits], -1), "span_logits"
    )
    quantize_int8(fp32, target)
    fp32.unlink()
    t = tok(
        ["Which company did the Tesla chief run?"],
        ["Musk news\nThe Tesla C.E.O. has been in regular contact with Putin."],
        return_tensors="pt",
    )
    with torch.no_grad():
        out = model(**t)
    ref = torch.stack([out.start_logits, out.end_logits], -1).numpy()
    got = session_for(target).run(None, {k: v.numpy() for k, v in t.items()})[0]
    return float(np.abs(got - ref).max())


if __name__ == "__main__":
    import pickle

    from train.reader_data import in_fit_split

    qs: list[Question] = pickle.loads(Path(sys.argv[1]).read_bytes())
    learn = [q for q in qs if not in_fit_split(q.id, 20)]
    data = examples(learn)
    spans = sum(r[2] is not None for r in data)
    print(f"{len(data)} examples, {spans} with a span", file=sys.stderr)
    print(train(data, Path(sys.argv[2])))
