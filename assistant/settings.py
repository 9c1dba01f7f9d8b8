"""One settings object, built at the entry point and passed down."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Everything that would otherwise phone home at start-up or download at run time.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def go_offline() -> None:
    """Set the environment so no library reaches the network (call at entry points)."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


class Settings(BaseSettings):
    """Configuration; every field can be set as ASSISTANT_<NAME> or in a .env file."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_file=".env", extra="ignore")

    data_dir: Path = PROJECT_DIR / "data"
    collection: str = "articles"
    # A Chroma server (http://host:port) instead of the embedded store under data_dir.
    chroma_url: str | None = None
    # Server mode: each process's local copy applies the other processes' changes before it
    # answers, looking at most this often (so an answer reflects every change made more than
    # this long before it, plus one look's time; see docs/scale-out.md).
    sync_interval: float = 2.0
    # Each look re-reads the changes stamped this long before the previous one: a write stamped
    # just before a look may land just after it (applying a change twice is harmless).
    sync_window: float = 60.0

    # Chunking: runs of whole sentences up to this many characters.
    chunk_chars: int = 800
    chunk_overlap_sentences: int = 1

    # Retrieval.
    top_k: int = 10
    candidates: int = 50
    # How widely Chroma's HNSW index looks for the dense candidates (its `ef_search`). At
    # Chroma's default, 100, the 50 candidates of the dev questions missed 2.7% of the true 50
    # nearest (one question in two lost at least one); at 400, 0.2%, none of the top 10, for
    # about 2 ms more per question on 17,500 chunks.
    search_ef: int = 400
    rrf_k: int = 60
    # A hit is shown with this many sentences of context on each side, and hits that touch in
    # one article become one passage (measured on the dev questions: recall@10 0.571 -> 0.616).
    passage_window: int = 1
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    # A period named in a question ("last week", "in March 2024") is resolved against `as_of`
    # (default: the newest article's date). "prefer" ranks articles from it first, "filter"
    # searches only those, "off" ignores it. --since/--until always filter.
    as_of: date | None = None
    question_dates: Literal["prefer", "filter", "off"] = "prefer"

    # Answers.
    max_quotes: int = 4
    quote_passages: int = 6  # quotes come from the sentences of this many best passages
    # Of which this many, best by shared words, are embedded: most of an answer's time. On the
    # dev questions, with the answer-type cue, quote_answer_rate is 0.356 / 0.367 / 0.373 for
    # 6 / 7 / 8, abstention the same (null 0.500 for 6 and 7, 0.486 for 8; false 0.079); 5
    # abstains on more answerable questions. 7: the quotes' target at most of the saving.
    sentence_candidates: int = 7
    quote_score_ratio: float = 0.75  # quote sentences scoring at least this share of the best
    min_quote_words: int = 6  # shorter lines (subheads, datelines) are not quoted
    cosine_weight: float = 0.7  # sentence score: this much meaning, the rest shared rare words
    # Added to a sentence's score when it offers answers of the kind asked for (new names, or
    # numbers for "how many"), up to this much; it orders quotes, confidence is left alone.
    # Dev questions: quote_answer_rate 0.322 -> 0.373, abstention unchanged; flat from 0.2 to 0.3.
    answer_cue_weight: float = 0.2
    # Tuned on the dev questions (bench/tune.py): below min_confidence the assistant abstains;
    # below weak_confidence it answers but says the evidence is weak.
    min_confidence: float = 0.365
    weak_confidence: float = 0.44

    # Embeddings: "onnx" (default; exported once from the same weights into cache_dir, same
    # vectors, faster) or "torch" (sentence-transformers); or "onnx-int8", faster again but not
    # the same vectors. An index keeps the kind of vectors it was created with (see README).
    embedding_engine: Literal["onnx", "onnx-int8", "torch"] = "onnx"
    cache_dir: Path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / (
        "news-assistant"
    )

    # How long to wait for another process writing to the same data directory.
    lock_timeout: float = 30.0

    # Ingestion.
    embed_batch_size: int = 16
    # Chunks embedded per write: bigger batches embed faster, smaller ones lose less to a crash.
    write_batch_chunks: int = 256
    # Articles whose 5-word shingles overlap this much (MinHash estimate of Jaccard) are one
    # story run by several outlets: it is answered once, with the other outlets listed.
    duplicate_threshold: float = 0.8
    max_file_bytes: int = 50_000_000
    max_article_chars: int = 2_000_000

    # The web UI (`assistant ui`): where it listens, the largest upload it takes, and basic-auth
    # credentials, used only when it listens on an address other than this machine's loopback.
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_bytes: int = 25 * 1024 * 1024
    auth_user: str | None = None
    auth_password: str | None = None

    # Written answers by a language model (optional; "none" keeps answers extractive). "openai"
    # is any OpenAI-compatible server (OpenAI, llama.cpp, vLLM); "ollama" an Ollama server.
    llm: Literal["none", "openai", "ollama"] = "none"
    llm_base_url: str | None = None  # e.g. http://127.0.0.1:8080/v1; None: the service default
    llm_model: str | None = None  # None: gpt-4o-mini (openai) or llama3.2 (ollama)
    llm_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("llm_api_key", "ASSISTANT_LLM_API_KEY", "OPENAI_API_KEY"),
    )
    llm_temperature: float = 0.0
    llm_timeout: float = 30.0  # seconds for the whole answer; past it the answer is extractive
    llm_max_tokens: int = 400
    llm_sentences: int = 40  # at most this many numbered sentences are shown to the model
