"""The ONNX engine: exported from the packaged weights, same vectors as sentence-transformers."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import onnx as onnx_format
import pytest

from assistant.assistant import Assistant
from assistant.chunking import sentence_spans
from assistant.embeddings import (
    LocalEmbedder,
    ModelEmbedder,
    OnnxEmbedder,
    export_onnx,
    load_embedder,
    model_path,
    onnx_file_name,
)
from assistant.settings import PROJECT_DIR, Settings

SAMPLE = PROJECT_DIR / "corpus" / "musk-putin-contact.txt"

TEXTS = [
    "The C.E.O. said the merger would close in March.",
    "Short.",
    "A much longer passage about the central bank, which raised interest rates again on "
    "Wednesday, citing inflation that has stayed stubbornly above its target for two years. " * 8,
    "",
]


@pytest.fixture(scope="module")
def torch_model() -> LocalEmbedder:
    return LocalEmbedder()


def test_export_gives_the_same_vectors_as_torch(tmp_path: Path, torch_model: LocalEmbedder):
    target = tmp_path / "model.onnx"
    export_onnx(model_path(), target)
    onnx = OnnxEmbedder.from_file(target, model_path(), batch_size=2)
    got = np.array(onnx.embed_documents(TEXTS))
    want = np.array(torch_model.embed_documents(TEXTS))
    assert got.shape == want.shape == (len(TEXTS), 384)
    # Same order in, same order out (the engine sorts by length inside).
    assert np.abs((got * want).sum(axis=1) - 1).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.dot(onnx.embed_query(TEXTS[0]), want[0]) > 0.99999
    assert not list(tmp_path.glob("*.part"))
    # Each layer runs on onnxruntime's fused kernels (the speed of the default engine).
    ops = [node.op_type for node in onnx_format.load(str(target)).graph.node]
    assert ops.count("Attention") == 6
    assert ops.count("SkipLayerNormalization") == 12


def test_the_session_embedder_matches_torch(embedder: ModelEmbedder, torch_model: LocalEmbedder):
    got = np.array(embedder.embed_documents(TEXTS[:3]))
    want = np.array(torch_model.embed_documents(TEXTS[:3]))
    assert np.abs((got * want).sum(axis=1) - 1).max() < 1e-5


def test_falls_back_to_torch_when_the_cache_is_unusable(tmp_path: Path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    assert isinstance(load_embedder("onnx", blocker / "cache"), LocalEmbedder)


def test_torch_engine_on_request(tmp_path: Path):
    assert isinstance(load_embedder("torch", tmp_path), LocalEmbedder)
    assert not any(tmp_path.iterdir())  # nothing exported


def test_the_model_is_loaded_only_when_first_used(tmp_path: Path):
    lazy = ModelEmbedder("onnx", tmp_path / "cache")
    assert lazy.embed_documents([]) == []
    assert not (tmp_path / "cache").exists()


def test_batches_of_similar_length_give_each_text_its_own_vector(embedder: ModelEmbedder):
    texts = [TEXTS[0], TEXTS[1], TEXTS[2], "Wednesday.", TEXTS[0] + " " + TEXTS[0]]
    together = np.array(embedder.embed_documents(texts))
    alone = np.array([embedder.embed_query(t) for t in texts])
    assert np.abs(together - alone).max() < 1e-5


def test_rows_are_batched_longest_first_without_much_padding(tmp_path: Path):
    onnx = OnnxEmbedder(session=None, tokenizer=None, batch_size=3)
    lengths = [10, 50, 48, 12, 11, 49, 47]
    groups = onnx.batches(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert groups == [[1, 5, 2], [6], [3, 4, 0]]  # at most 3 rows; 10 tokens never pad to 50


def test_copies_of_the_same_weights_share_one_export(tmp_path: Path):
    # Each clone has its own virtual environment; a name from the path gave each clone
    # another 90 MB export in the shared cache.
    copy = tmp_path / "copy"
    shutil.copytree(model_path(), copy)
    assert onnx_file_name(copy) == onnx_file_name(model_path())
    with (copy / "model.safetensors").open("r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    assert onnx_file_name(copy) != onnx_file_name(model_path())


def test_sentence_vectors_come_from_the_same_pass_on_both_engines(
    embedder: ModelEmbedder, torch_model: LocalEmbedder
):
    text = "Rovers win the Cup\nThe final was on Sunday. Dr. Ames scored twice. Fans cheered."
    spans = sentence_spans(text)[1:]
    assert [text[a:b] for a, b in spans][1] == "Dr. Ames scored twice."
    cut = "word " * 400  # past the model's window: its tail has no tokens
    texts, wanted = [text, cut, "Short."], [spans, [(0, 4), (1900, 1990)], []]
    vectors, pooled = embedder.embed_with_spans(texts, wanted)
    assert np.allclose(vectors, embedder.embed_documents(texts), atol=1e-6)
    want_vectors, want_pooled = torch_model.embed_with_spans(texts, wanted)
    assert np.allclose(vectors, want_vectors, atol=1e-5)
    assert pooled[1][1] is None and want_pooled[1][1] is None and pooled[2] == []
    for got, want in zip(
        pooled[0] + pooled[1][:1], want_pooled[0] + want_pooled[1][:1], strict=True
    ):
        assert abs(float(np.dot(got, want)) - 1) < 1e-5 and abs(np.linalg.norm(got) - 1) < 1e-5
    # Each sentence gets its own vector, read in context: not the whole text's, not another's.
    sims = np.array(pooled[0]) @ np.array(pooled[0]).T
    assert sims[0, 1] < 0.9 and sims[1, 2] < 0.9
    alone = embedder.embed_query("Dr. Ames scored twice.")
    assert float(np.dot(pooled[0][1], alone)) > float(np.dot(vectors[0], alone))


@pytest.fixture
def cache_with_export(tmp_path: Path, embedder: ModelEmbedder) -> Path:
    """A cache folder holding the session's float32 export (saves exporting it again)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    name = onnx_file_name(model_path())
    shutil.copy(Settings().cache_dir / name, cache / name)
    return cache


def test_int8_engine_is_close_to_float32_but_not_the_same(
    cache_with_export: Path, embedder: ModelEmbedder
):
    int8 = load_embedder("onnx-int8", cache_with_export)
    made = cache_with_export / onnx_file_name(model_path(), int8=True)
    ops = {node.op_type for node in onnx_format.load(str(made)).graph.node}
    assert {"MatMulInteger", "QAttention"} <= ops
    got = np.array(int8.embed_documents(TEXTS[:3]))
    want = np.array(embedder.embed_documents(TEXTS[:3]))
    cosines = (got * want).sum(axis=1)
    assert cosines.min() > 0.97
    assert cosines.max() < 0.99999  # other vectors: an index must not mix the two
    assert not list(cache_with_export.glob("*.part"))


def test_questions_meet_an_int8_index_with_their_float32_vectors(
    cache_with_export: Path, embedder: ModelEmbedder
):
    model = ModelEmbedder("onnx-int8", cache_with_export)
    question = "What did Putin ask Musk not to do?"
    asked = np.array(model.embed_query(question))
    assert np.allclose(asked, embedder.embed_query(question), atol=1e-5)
    assert float(np.dot(asked, model.impl.embed_query(question))) < 0.99999  # not int8's own
    stored = np.array(model.embed_documents(TEXTS[:2]))
    assert float((stored * np.array(embedder.embed_documents(TEXTS[:2]))).sum(axis=1).max()) < (
        0.99999
    )  # while the texts stored are embedded with int8


def test_an_index_is_always_searched_with_the_vectors_it_holds(
    cache_with_export: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    question = "What did Putin ask Musk not to do?"
    int8_dir, float_dir = tmp_path / "int8", tmp_path / "float32"
    first = Assistant(
        Settings(data_dir=int8_dir, cache_dir=cache_with_export, embedding_engine="onnx-int8")
    )
    first.add([SAMPLE])
    asked = first.ask(question)
    assert first.store.vector_space == "int8"
    first.close()

    again = Assistant(Settings(data_dir=int8_dir, cache_dir=cache_with_export))  # default: onnx
    assert isinstance(again.embedder, ModelEmbedder) and again.embedder.engine == "onnx-int8"
    assert "holds int8 vectors" in caplog.text
    assert again.ask(question).confidence == pytest.approx(asked.confidence, abs=1e-6)
    again.close()

    plain = Assistant(Settings(data_dir=float_dir, cache_dir=cache_with_export))
    plain.add([SAMPLE])
    plain.close()
    with sqlite3.connect(float_dir / "articles.sqlite3") as db:  # as a store from before int8
        db.execute("DELETE FROM meta WHERE key='vector_space'")
    later = Assistant(
        Settings(data_dir=float_dir, cache_dir=cache_with_export, embedding_engine="onnx-int8")
    )
    assert later.store.vector_space == "float32"
    assert isinstance(later.embedder, ModelEmbedder) and later.embedder.engine == "onnx"
    later.close()


def test_int8_engine_that_cannot_be_made_says_so(tmp_path: Path):
    (tmp_path / onnx_file_name(model_path())).write_bytes(b"not a model")  # a damaged export
    with pytest.raises(RuntimeError, match="int8 embedding model cannot be made"):
        load_embedder("onnx-int8", tmp_path)
    assert not list(tmp_path.glob("*int8*"))  # nothing half-made is left to be picked up
