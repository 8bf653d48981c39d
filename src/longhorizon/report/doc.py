"""A tiny document model rendered twice: to Markdown and to one self-contained HTML page.

The report is built once as a list of blocks, so both files carry the same content. All text
is plain text: the Markdown renderer escapes what Markdown or inline HTML would interpret,
the HTML renderer escapes everything (text and attributes), and images are embedded in the
HTML as base64 data URIs, so the page loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass(frozen=True)
class Image:
    path: Path  # the PNG on disk (embedded in HTML)
    rel: str  # its path relative to the Markdown file (referenced in Markdown)
    caption: str


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class ViewerLinks:
    """Links into `longhorizon view` (label, URL path on the viewer): in the HTML page only,
    hidden unless the viewer serves the page, so the file stays self-contained."""

    links: list[tuple[str, str]]


Block = Heading | Para | Bullets | Table | Image | Code | ViewerLinks


# ---- Markdown ----------------------------------------------------------------------------
# What Markdown (or inline HTML) would interpret inside running text. Underscores are left
# alone: GitHub-flavoured Markdown does not read them as emphasis inside words (paths, metric
# names), and escaping them would make the raw file hard to read.
_MD_SPECIAL = re.compile(r"([\\`*<>|\[\]])")
# "0.500 [0.400, 0.600]": brackets holding two numbers cannot form a link; they stay as is.
_INTERVAL = re.compile(r"(\[-?[\d.]+, -?[\d.]+\])")


def md_escape(text: str) -> str:
    """Plain text that Markdown shows as is, on one line."""
    parts = _INTERVAL.split(" ".join(str(text).split()))
    # split() with a group: odd parts are the intervals themselves.
    return "".join(p if i % 2 else _MD_SPECIAL.sub(r"\\\1", p) for i, p in enumerate(parts))


def md_paragraph(text: str) -> str:
    out = md_escape(text)
    # At the start of a block these would make a heading or a list item.
    return "\\" + out if out.startswith(("#", "-", "+")) else out


def to_markdown(blocks: Sequence[Block]) -> str:
    shown = [b for b in blocks if not isinstance(b, ViewerLinks)]  # no viewer behind a .md
    return "\n\n".join(_md_block(b) for b in shown) + "\n"


def _md_block(block: Block) -> str:
    match block:
        case Heading(text, level):
            return f"{'#' * level} {md_escape(text)}"
        case Para(text):
            return md_paragraph(text)
        case Bullets(items):
            return "\n".join(f"- {md_escape(item)}" for item in items)
        case Table():
            return _md_table(block)
        case Image(_, rel, caption):
            return f"![{md_escape(caption)}]({rel})"
        case Code(text):
            fence = "`" * max(3, _longest_backtick_run(text) + 1)  # never closed by the text
            return f"{fence}\n{text.rstrip()}\n{fence}"
    raise TypeError(f"not a block: {block!r}")


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


def _md_table(table: Table) -> str:
    lines = [
        "| " + " | ".join(md_escape(h) for h in table.header) + " |",
        "|" + "|".join(" --- " for _ in table.header) + "|",
        *("| " + " | ".join(md_escape(c) for c in row) + " |" for row in table.rows),
    ]
    if table.caption:
        lines = [f"*{md_escape(table.caption)}*", "", *lines]
    return "\n".join(lines)


# ---- HTML --------------------------------------------------------------------------------
CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1, h2, h3 { line-height: 1.2; }
table { border-collapse: collapse; margin: 0.5rem 0 1.25rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f2f2f2; }
tr:nth-child(even) td { background: #fafafa; }
caption { caption-side: top; text-align: left; font-style: italic; padding: 0.25rem 0; }
figure { margin: 1rem 0; }
img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9rem; color: #555; }
pre { background: #f6f6f6; padding: 0.75rem; overflow-x: auto; font-size: 0.85rem; }
"""


def esc(text: str) -> str:
    return html.escape(str(text), quote=True)


# The viewer links are written hidden; `longhorizon view` serves the page with this marker
# replaced by VIEWER_NAV_SHOWN. The file alone stays script-free and fetches nothing.
VIEWER_NAV_HIDDEN = '<nav class="lh-viewer" hidden>'
VIEWER_NAV_SHOWN = '<nav class="lh-viewer">'


def to_html(blocks: Sequence[Block], title: str) -> str:
    body = "\n".join(_html_block(b) for b in blocks)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _html_block(block: Block) -> str:
    match block:
        case Heading(text, level):
            return f"<h{level}>{esc(text)}</h{level}>"
        case Para(text):
            return f"<p>{esc(text)}</p>"
        case Bullets(items):
            return "<ul>\n" + "\n".join(f"<li>{esc(i)}</li>" for i in items) + "\n</ul>"
        case Table():
            return _html_table(block)
        case Image(path, _, caption):
            return (
                f'<figure><img src="{data_uri(path)}" alt="{esc(caption)}">'
                f"<figcaption>{esc(caption)}</figcaption></figure>"
            )
        case Code(text):
            return f"<pre><code>{esc(text.rstrip())}</code></pre>"
        case ViewerLinks(links):
            anchors = " · ".join(f'<a href="{esc(href)}">{esc(label)}</a>' for label, href in links)
            return f"{VIEWER_NAV_HIDDEN}Open in the viewer: {anchors}</nav>"
    raise TypeError(f"not a block: {block!r}")


def _html_table(table: Table) -> str:
    caption = f"<caption>{esc(table.caption)}</caption>" if table.caption else ""
    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in table.header) + "</tr>"
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    return f"<table>{caption}\n<thead>{head}</thead>\n<tbody>\n{rows}\n</tbody>\n</table>"


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
