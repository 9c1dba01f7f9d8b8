"""A news-article assistant that answers with exact, cited quotes."""

from assistant.settings import Settings

__all__ = ["Settings"]
__version__ = "0.1.0"
