"""``report.html``: one self-contained page (no network) with every table, figure and latent explorer.

Its stylesheet and script are package data files (``report/assets/``); Plotly's bundle is inlined.
"""

from __future__ import annotations

import base64
import html
import json
from importlib import resources
from typing import Any

from latentatlas.progress import as_progress
from latentatlas.report import explorer as ex
from latentatlas.report.sections import Section

# In a <script> element "</script" or "<!--" would end or change the element, and U+2028/2029 end a line
# in older JavaScript parsers; \u escapes mean the same inside JSON strings and never occur outside them.
_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028",
                   0x2029: "\\u2029"}


def json_for_script(obj: Any) -> str:
    """``obj`` as JSON that can sit inside ``<script type="application/json">`` for any strings it holds."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False).translate(_SCRIPT_ESCAPES)


def asset(name: str) -> str:
    """The text of a file in ``latentatlas/report/assets``."""
    return resources.files("latentatlas.report").joinpath("assets", name).read_text(encoding="utf-8")


def _is_num(cell: str) -> bool:
    try:
        float(cell.replace(",", ""))
        return True
    except ValueError:
        return False


def _html_table(name: str, header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="num">{html.escape(c)}</td>' if _is_num(c) else
                                    f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div><h3>{html.escape(name)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def explorer_html(data: ex.ExplorerData, box_id: str, title: str) -> tuple[str, str]:
    """The explorer's markup with its JSON data block and the call that draws it, and the script elements
    that go at the end of the page (neighbour tables, other projections, sprite), so that the points are
    drawn before those are even parsed."""
    payload, later, sprite = ex.explorer_payload(data)
    images = data.kind == "images"
    what = "image" if images else "item"
    notes = [f"Showing {data.n_points:,} of {data.n_total:,} {what}s." if data.n_points < data.n_total
             else f"All {data.n_total:,} {what}s are drawn."]
    how = (f"Hover a point to see its {what}; click it to list its nearest neighbours (ringed, the clicked "
           "point in red). Drag to zoom; choose Box or Lasso Select in the plot's toolbar to select points. "
           + ("Click a legend entry to hide a class, double-click to show it alone. " if data.group_names else "")
           + ("The projection buttons keep the selection. " if len(data.coords) > 1 else "")
           + "Search matches ids and names.")
    note_html = "".join(f'<p class="note{" differs" if j == 0 and data.n_points < data.n_total else ""}">'
                        f"{html.escape(n)}</p>" for j, n in enumerate(notes + data.notes))
    img = '<canvas class="hover-img empty"></canvas>' if images else ""
    markup = (f'<h3>{html.escape(title)}</h3><p class="note">{html.escape(how)}</p>{note_html}'
              f'<div class="explorer" id="{box_id}" data-kind="{data.kind}" data-points="{data.n_points}" '
              f'data-total="{data.n_total}"><div class="toolbar"><span class="count"></span></div>'
              f'<div class="main"><div class="plot"></div><aside>{img}<div class="hover-text"></div>'
              f'<ul class="matches"></ul><div class="nn-title"></div>'
              f'<ul class="nn-list{"" if images else " items"}"></ul><div class="selection"></div></aside></div></div>'
              f'<script type="application/json" id="{box_id}-data">{json_for_script(payload)}</script>'
              f'<script>latentatlas.explorer("{box_id}");</script>')
    tail = f'<script type="application/json" id="{box_id}-later">{json_for_script(later)}</script>'
    if sprite is not None:
        tail += (f'<script type="application/octet-stream" id="{box_id}-sprite">'
                 f'{base64.b64encode(sprite).decode("ascii")}</script>')
    return markup, tail


def render_html(sections: list[Section], *, title: str, created: str, plotly_js: str | None = None,
                progress=None) -> str:
    """The whole self-contained page as a string."""
    progress = as_progress(progress, "report")
    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    toc = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    parts, sprites = [], []
    for s in sections:
        parts.append(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>'
                     f'<p class="sub">{html.escape(s.subtitle)}</p>')
        if s.tables:
            parts.append('<div class="tables">' + "".join(_html_table(*t) for t in s.tables) + "</div>")
        for j, e in enumerate(s.explorers):
            name = "Latent explorer: image codes" if e.kind == "images" else "Latent explorer: item factors"
            with progress.ticking(f"{name.lower()}: packing {e.n_points:,} points"):
                markup, sprite = explorer_html(e, f"{s.anchor}-explorer-{j}", name)
            parts.append(markup)
            sprites.append(sprite)
        for f in s.figures:
            uri = "data:image/png;base64," + base64.b64encode(f.png).decode("ascii")
            parts.append(f'<figure><img src="{uri}" alt="{html.escape(f.title)}"><figcaption><b>'
                         f"{html.escape(f.title)}</b>{('. ' + html.escape(f.caption)) if f.caption else ''}"
                         "</figcaption></figure>")
        parts.append("</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}</title>"
            f"<style>{asset('report.css')}</style>"
            # Plotly's bundle, verbatim; it makes no request unless a map or MathJax is drawn.
            f"<script>{plotly_js}</script><script>{asset('explorer.js')}</script>"
            f'<meta name="latentatlas-explorers" content="{sum(len(s.explorers) for s in sections)}"></head><body>'
            f"<header><h1>{html.escape(title)}</h1><p class=\"sub\">Created {html.escape(created)} by latentatlas. "
            "This file is self-contained and works offline.</p><nav><ol>" + toc + "</ol></nav></header>"
            + "".join(parts) + "".join(sprites) + "</body></html>\n")
