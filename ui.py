"""Serve the chat window from a checkout: `python ui.py [--port N]`, the same as `assistant ui`.

The app itself lives in the package (assistant/web/), so an installed package serves it too.
"""

from assistant.web.app import build_app, launch, main, serve

__all__ = ["build_app", "launch", "main", "serve"]

if __name__ == "__main__":
    main()
