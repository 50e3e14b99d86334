"""How objects show in a notebook: short reprs and small HTML summary tables (``_repr_html_``), shared by the
ratings and images capabilities. Pictures come from :mod:`latentatlas.plots` (``_repr_png_`` hooks)."""

from __future__ import annotations

import html
from typing import Iterable

from latentatlas.errors import printable


def html_table(title: str, rows: Iterable[tuple[str, object]], caption: str | None = None) -> str:
    """A small two-column HTML table, ``title`` in bold above it; every text is escaped (names and paths
    come from users' files)."""
    cells = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(str(k))}</th>"
                    f"<td style='text-align:left'>{html.escape(printable(str(v)))}</td></tr>" for k, v in rows)
    head = f"<b>{html.escape(title)}</b>"
    if caption:
        head += f" <span style='color:#666'>{html.escape(printable(caption))}</span>"
    return f"<div>{head}<table>{cells}</table></div>"


def shorten(text: str, width: int = 40) -> str:
    """``text`` on one line (control characters escaped), cut to ``width`` characters with an ellipsis."""
    text = printable(str(text))
    return text if len(text) <= width else text[: width - 1] + "…"
