"""One settings object, built at the entry point and passed down."""

from __future__ import annotations

import ipaddress
import os
from datetime import date
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The platform's folder for an application's data (~/.local/share/news-assistant on Linux), so
# `assistant` finds the same store from any folder, installed or run from a checkout.
DEFAULT_DATA_DIR = Path(user_data_dir("news-assistant", appauthor=False))

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

    data_dir: Path = DEFAULT_DATA_DIR
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
    # How widely Chroma's HNSW index looks for the dense candidates (its `ef_search`): wider
    # than Chroma's default, which misses some of the true nearest candidates, for a few
    # milliseconds more per question (figures in docs/benchmarks.md).
    search_ef: int = 400
    rrf_k: int = 60
    # A hit is shown with this many sentences of context on each side, and hits that touch in
    # one article become one passage: an answer next to the matching sentence is then among
    # the passages shown (docs/benchmarks.md).
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
    # Of which this many, best by shared words, are compared by meaning: most of an answer's
    # time. Fewer abstain on more answerable questions; more add little to how often a quote
    # holds the answer (docs/benchmarks.md).
    sentence_candidates: int = 7
    quote_score_ratio: float = 0.75  # quote sentences scoring at least this share of the best
    min_quote_words: int = 6  # shorter lines (subheads, datelines) are not quoted
    cosine_weight: float = 0.7  # sentence score: this much meaning, the rest shared rare words
    # Added to a sentence's score when it offers answers of the kind asked for (new names, or
    # numbers for "how many"), up to this much; it orders quotes, confidence is left alone.
    # Quotes hold the answer more often with it, and a somewhat larger weight changes nothing
    # (docs/benchmarks.md).
    answer_cue_weight: float = 0.2
    # Below min_confidence the assistant abstains; below weak_confidence it answers but says
    # the evidence is weak. Chosen with bench/tune.py on the benchmark's development questions,
    # never its held-out ones: min_confidence is the highest that keeps false abstention on
    # on-topic answerable questions within 5% (docs/benchmarks.md).
    min_confidence: float = 0.40
    # When the question's day is known and even the newest passage found is more than
    # stale_days older, answering takes at least stale_min_confidence (either answer step):
    # a year-old story rarely answers a question about this week.
    stale_days: int = 365
    stale_min_confidence: float = 0.48
    # Confidence loses this much for each name or number the question states (up to two) that
    # no quote passage states: such a question is mostly about something the articles do not
    # cover (either answer step; chosen on dev, docs/reader.md).
    unstated_name_penalty: float = 0.10
    weak_confidence: float = 0.44
    # A question's words are weighed by their rarity among the chunks and, counted as this many
    # chunks more, in ordinary news (assistant/models/rarity.json.gz, built by `make train`): in
    # a collection of a few articles "what" is as rare as "Starlink". 0: the collection's alone.
    rarity_background_chunks: float = 30.0
    # Which sentences answer: "trained", the reader trained on news quizzes (assistant/ranker.py,
    # assistant/models/reader/), or "heuristic", the hand-set score above. The reader puts the
    # answer first more often and quotes half as much; the hand-set step quotes more, so some
    # quote holds the answer more often (docs/reader.md).
    answer_ranker: Literal["trained", "heuristic"] = "trained"
    # The reader reads this many sentences of the quote passages, most shared rare words first
    # (with their stored vectors: no model run per sentence, so more cost little).
    reader_candidates: int = 20
    # At most this many quotes; a further one only if the reader rates it at least this share
    # of the best (for a two-part question, the sentence answering the part the best does not).
    reader_max_quotes: int = 2
    reader_support: float = 0.5
    # The reader's best this many are read again, question and sentence together, by a model
    # that points at the answer's words; what it finds reorders them (0: not at all). Where it
    # is sure enough (its span's score at least answer_highlight_min), those words are shown
    # bold inside the quote.
    reader_pointed: int = 5
    # A sentence's probability is multiplied by exp(-reader_unstated_factor) for each of the
    # question's names and numbers (however many) its story never states (chosen on dev,
    # docs/reader.md).
    reader_unstated_factor: float = 0.5
    answer_highlight_min: float = 0.0
    # Confidence: this much the reader's probability that a candidate answers, the rest the
    # hand-set relevance above. Tuned on the dev questions (bench/tune.py --ranker trained):
    # below reader_min_confidence it abstains, below reader_weak_confidence it says so.
    reader_confidence_weight: float = 0.15
    reader_min_confidence: float = 0.372
    reader_weak_confidence: float = 0.45

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
    # A PDF with more pages, or whose text takes longer to read, is skipped with the reason:
    # a hostile PDF must not hold a request (and the interpreter) for minutes.
    max_pdf_pages: int = 500
    pdf_seconds: float = 60.0

    # Questions (and search queries) longer than this are refused, in every face alike.
    max_question_chars: int = 2_000

    # The web UI (`assistant ui`): where it listens, the largest upload it takes, and the login
    # it asks for. With a user and password set, it asks for them on any address; without, it
    # refuses to listen beyond this machine unless `no_auth` says that is meant.
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_bytes: int = 25 * 1024 * 1024
    auth_user: str | None = None
    auth_password: SecretStr | None = None
    no_auth: bool = False

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


class UnsafeServing(ValueError):
    """The web UI would be served in a way the settings do not allow (e.g. open to the network)."""


def is_loopback(host: str) -> bool:
    """Whether an address or host name is this machine only (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]").split("%")[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def web_login(settings: Settings, host: str) -> tuple[str, str] | None:
    """The (user, password) the web UI asks for on `host`, or None for no login.

    Raises UnsafeServing for a half-given login, or no login on an address beyond loopback
    without `no_auth`.
    """
    user = settings.auth_user or None
    password = settings.auth_password.get_secret_value() if settings.auth_password else None
    if bool(user) != bool(password):
        given, missing = ("user", "password") if user else ("password", "user")
        raise UnsafeServing(
            f"a login {given} is set but no {missing}: set both ASSISTANT_AUTH_USER and "
            "ASSISTANT_AUTH_PASSWORD (or --auth-user and --auth-password), or neither"
        )
    if user and password:
        if settings.no_auth:
            raise UnsafeServing(
                "--no-auth (ASSISTANT_NO_AUTH) and a login (ASSISTANT_AUTH_USER and "
                "ASSISTANT_AUTH_PASSWORD) are both set: unset one of them"
            )
        return user, password
    if not is_loopback(host) and not settings.no_auth:
        raise UnsafeServing(
            f"refusing to listen on {host} without a login: anyone who can reach it could "
            "read, add and remove articles. Set ASSISTANT_AUTH_USER and ASSISTANT_AUTH_PASSWORD "
            "(or --auth-user and --auth-password), or pass --no-auth (ASSISTANT_NO_AUTH=1) "
            "if the network is trusted"
        )
    return None
