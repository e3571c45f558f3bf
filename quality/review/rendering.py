"""Model output is untrusted: it is shown as Markdown (with code) rendered by markdown-it with raw HTML
off, so any HTML in an answer is escaped to text, and links or images with scripting schemes are
dropped. The page's Content-Security-Policy (see ``app``) allows only the app's own script as well."""
from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup


@lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt

    # commonmark with html off: "<script>" in the text becomes "&lt;script&gt;"
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def safe_markdown(text: str) -> Markup:
    return Markup(_markdown().render(text or ""))
