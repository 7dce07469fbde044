"""``report.html``: one self-contained page (figures as base64 PNG data URIs, inline CSS, no scripts, no link to
anything outside the file), so it opens offline and can be mailed as one file."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from .table_markup import Table

__all__ = ["render_html"]

_CSS = """
body { font-family: sans-serif; max-width: 1200px; margin: 1em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: left; }
th { background: #eee; }
img { max-width: 100%; border: 1px solid #ddd; }
figure { margin: 1em 0; }
figcaption, .note { color: #555; font-size: 0.85em; }
"""


def render_html(*, title: str, intro: Sequence[str], summary: Sequence[str],
                figures: Sequence[tuple[str, bytes]], tables: Sequence[Table], problems: Sequence[str]) -> str:
    """The page: ``intro`` paragraphs, the ``summary`` list, ``figures`` (caption, PNG bytes), ``tables`` and the
    ``problems`` (rows and files left out). All text is HTML-escaped."""
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<p>{html.escape(p)}</p>" for p in intro]
    parts.append("<h2>Summary</h2><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in summary) + "</ul>")
    parts.append("<h2>Figures</h2>")
    for caption, png in figures:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img alt=\"{html.escape(caption)}\" src=\"data:image/png;base64,{data}\">"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("<h2>Tables</h2>")
    parts += [t.html() for t in tables]
    parts.append("<h2>Left out</h2>")
    parts.append("<ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>" if problems
                 else "<p>Nothing.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
