"""Model output is untrusted: it is shown as Markdown (with code) rendered by markdown-it with raw HTML
off, so any HTML in an answer is escaped to text, and links or images with scripting schemes are
dropped. The page's Content-Security-Policy (see ``app``) allows only the app's own script as well.
Images are shown as links: the policy loads images from the app itself only, and an answer's image is
never one of the app's, so an ``<img>`` would only show as broken."""
from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup


def image_as_link(renderer, tokens, idx, options, env) -> str:
    from markdown_it.common.utils import escapeHtml

    token = tokens[idx]
    src = token.attrGet("src") or ""
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    return (f'<a class="image-link" href="{escapeHtml(src)}" rel="nofollow noopener noreferrer">'
            f'image: {escapeHtml(alt or src)}</a>')


@lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt

    # commonmark with html off: "<script>" in the text becomes "&lt;script&gt;"
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
    md.add_render_rule("image", image_as_link)
    return md


def safe_markdown(text: str) -> Markup:
    return Markup(_markdown().render(text or ""))
