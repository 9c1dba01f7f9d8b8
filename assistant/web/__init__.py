"""The chat window: the Gradio app, its HTML views, and its CSS and JS as files."""
