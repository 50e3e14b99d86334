"""Reports from run directories: one self-contained ``report.html`` and a printable ``report.pdf``.

Both are built fully (the HTML in memory, the PDF in a temporary file) before either is renamed into
place, so a failure never leaves a half report. The HTML needs no network: Plotly's JavaScript, every
figure and every thumbnail are inlined.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.fsutil import atomic_path, umask
from latentatlas.runs import KIND_TITLES, Run, load_run, load_runs  # noqa: F401  (load_run is part of this API)

@dataclass
class Figure:
    title: str
    caption: str
    png: bytes


@dataclass
class Section:
    """One section of both outputs: a run, or the comparison of several runs."""

    anchor: str
    title: str
    subtitle: str
    tables: list[tuple[str, list[str], list[list[str]]]]   # (name, header, rows)
    figures: list[Figure]
    explorers: list[Any] = field(default_factory=list)     # ExplorerData



# ---------------------------------------------------------------------------------------------- content

def fmt(value: Any) -> str:
    """A value as a short, readable table cell."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:.4g}"
    if isinstance(value, (list, tuple)):
        if len(value) > 8:
            return f"[{len(value)} values: {fmt(value[0])} … {fmt(value[-1])}]"
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def _kv_rows(d: dict[str, Any]) -> list[list[str]]:
    return [[str(k), fmt(v)] for k, v in d.items()]


def _table_rows(rows: list[dict[str, Any]], limit: int = 60) -> tuple[list[str], list[list[str]]]:
    header: list[str] = []
    for row in rows:
        for key in row:
            if key not in header:
                header.append(key)
    body = [[fmt(row.get(h, "")) for h in header] for row in rows[:limit]]
    if len(rows) > limit:
        body.append([f"… {len(rows) - limit} more rows"] + [""] * (len(header) - 1))
    return header, body


def _fig_png(fig) -> bytes:
    import io

    from latentatlas.plots.style import plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _history(run: Run) -> dict[str, Any] | None:
    """The loss and RMSE histories of a ratings-train run (its metrics.json), as plots.ratings expects."""
    m = run.metrics_file()
    if not isinstance(m.get("train_loss"), list) and not isinstance(m.get("validation_loss"), list):
        return None
    best = run.metrics.get("best_iteration", m.get("best_iteration"))
    return {"steps": m.get("steps") if isinstance(m.get("steps"), list) else [],
            "train_loss": m.get("train_loss") or [], "validation_loss": m.get("validation_loss") or [],
            "train_rmse": m.get("train_rmse_history") or [], "validation_rmse": m.get("validation_rmse_history") or [],
            "best_step": best if isinstance(best, (int, float)) and not isinstance(best, bool) else None}


def _has_figure_like(run: Run, word: str) -> bool:
    return any(word in (f.get("file", "") + " " + f.get("title", "")).lower() for f in run.figures)


def _histogram_counts(run: Run) -> dict[str, int] | None:
    """Rating → count from a prepare run's "rating histogram" table, if it has one."""
    rows = run.tables.get("rating histogram") or []
    try:
        hist = {str(r["rating"]): int(r["count"]) for r in rows}
    except (KeyError, TypeError, ValueError):
        return None
    return hist or None


def run_section(run: Run, index: int, *, explorer_points: int, neighbours: int, seed: int) -> Section:
    """The section of one run: metrics, configuration, its own tables and figures, and explorers."""
    from latentatlas.report import explorer as ex

    tables = []
    if run.metrics:
        tables.append(("Metrics", ["metric", "value"], _kv_rows(run.metrics)))
    if run.config:
        tables.append(("Configuration", ["option", "value"], _kv_rows(run.config)))
    for name, rows in run.tables.items():
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            header, body = _table_rows(rows)
            tables.append((name.replace("_", " ").capitalize(), header, body))
    figures = [Figure(str(f.get("title") or f["file"]), str(f.get("caption") or ""),
                      (run.path / f["file"]).read_bytes()) for f in run.figures]
    if run.kind == "ratings-prepare" and not _has_figure_like(run, "hist"):
        hist = _histogram_counts(run)
        if hist is not None:
            from latentatlas.plots.ratings import rating_histogram

            figures.append(Figure("Rating histogram", "How often each rating occurs, all splits together.",
                                  _fig_png(rating_histogram(hist))))
    explorers = []
    if run.kind == "images-embed" and run.artifact("embedding") is not None:
        explorers.append(ex.image_explorer(run.artifact("embedding"), max_points=explorer_points, k=neighbours,
                                           seed=seed))
    if run.kind == "ratings-train" and run.artifact("model") is not None:
        explorers.append(ex.item_explorer(run.artifact("model"), max_points=explorer_points, k=neighbours,
                                          seed=seed))
    subtitle = f"{KIND_TITLES.get(run.kind, run.kind)} · {run.path}" + (f" · {run.created}" if run.created else "")
    return Section(f"run-{index}", run.title, subtitle, tables, figures, explorers)


def comparison_section(runs: list[Run]) -> Section | None:
    """Side by side comparison of two or more trained recommenders (e.g. ALS and SGD)."""
    trained = [r for r in runs if r.kind == "ratings-train"]
    if len(trained) < 2:
        return None
    names = [f"{r.title}" for r in trained]
    keys: list[str] = []
    for r in trained:
        keys += [k for k in r.metrics if k not in keys]
    tables = [("Metrics side by side", ["metric"] + names,
               [[k] + [fmt(r.metrics[k]) if k in r.metrics else "" for r in trained] for k in keys])]
    recs = [r.tables.get("recommendations") or [] for r in trained]
    if all(recs):
        users = [u for u in dict.fromkeys(row.get("user") for row in recs[0])
                 if all(any(row.get("user") == u for row in rr) for rr in recs)][:3]
        rows = []
        for u in users:
            per_run = [sorted([row for row in rr if row.get("user") == u], key=lambda row: row.get("rank", 0))
                       for rr in recs]
            for rank in range(max(len(p) for p in per_run)):
                row = [fmt(u), str(rank + 1)]
                for p in per_run:
                    row += [fmt(p[rank].get("item")), fmt(p[rank].get("score"))] if rank < len(p) else ["", ""]
                rows.append(row)
        header = ["user", "rank"] + [h for n in names for h in (f"item ({n})", f"score ({n})")]
        tables.append(("Top recommendations for the same users", header, rows))
    figures = []
    with_history = [(r, h) for r, h in ((r, _history(r)) for r in trained) if h is not None]
    if len(with_history) >= 2:
        from latentatlas.plots.ratings import loss_curves

        titles = [r.title for r, _ in with_history]
        histories = [h for _, h in with_history]
        figures.append(Figure("Training and validation loss, side by side",
                              "Penalised sum of squares per iteration for each model (log scale); the dotted "
                              "line marks the iteration whose factors were kept.",
                              _fig_png(loss_curves(histories, "loss", titles=titles))))
        if all(h["train_rmse"] or h["validation_rmse"] for h in histories):
            figures.append(Figure("Training and validation RMSE, side by side",
                                  "Root mean squared error per iteration for each model.",
                                  _fig_png(loss_curves(histories, "rmse", titles=titles))))
    return Section("comparison", "Comparison of the trained recommenders", ", ".join(names), tables, figures)


def build_sections(runs: list[Run], *, explorer_points: int = 2000, neighbours: int = 8,
                   seed: int = 0, progress: Callable[[str], None] | None = None) -> list[Section]:
    sections = []
    for i, run in enumerate(runs, 1):
        if progress:
            progress(f"section {i}/{len(runs)}: {run.title}")
        sections.append(run_section(run, i, explorer_points=explorer_points, neighbours=neighbours, seed=seed))
    comp = comparison_section(runs)
    if comp is not None:
        sections.append(comp)
    return sections


# ------------------------------------------------------------------------------------------------ HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header,section{max-width:1150px;margin:0 auto;padding:12px 24px}
header{border-bottom:1px solid #ddd}
h1{margin:.4em 0 .1em} h2{border-bottom:2px solid #1f77b4;padding-bottom:4px;margin-top:1.6em}
.sub{color:#666;font-size:.9em;margin-top:0}
nav ol{columns:2;font-size:.95em}
table{border-collapse:collapse;margin:.4em 0 1.2em;font-size:.88em;background:#fff}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef3f8} td.num{text-align:right;font-variant-numeric:tabular-nums}
.tables{display:flex;flex-wrap:wrap;gap:0 28px}
figure{margin:1em 0;background:#fff;padding:8px;border:1px solid #e3e3e3;display:inline-block;max-width:100%}
figure img{max-width:100%;height:auto} figcaption{font-size:.88em;color:#444;max-width:900px}
.explorer{display:flex;gap:12px;align-items:flex-start;background:#fff;border:1px solid #e3e3e3;padding:8px}
.explorer .plot{flex:1 1 auto;min-width:0;height:560px}
.explorer aside{flex:0 0 250px;font-size:.88em}
.hover-img{width:112px;height:112px;image-rendering:pixelated;border:1px solid #ccc;background:#000}
.hover-img:not([src]){visibility:hidden}
.nn-list{list-style:none;padding:0;margin:.4em 0;display:flex;flex-wrap:wrap;gap:6px}
.nn-list li{font-size:.8em;text-align:center;width:64px}
.nn-list.items li{width:auto;text-align:left;display:block}
.nn-list img{width:56px;height:56px;image-rendering:pixelated;display:block;background:#000}
.note{font-size:.85em;color:#555}
"""

# Minimal glue: Plotly draws; this only shows the hovered point's image and the clicked point's neighbours.
_JS = """
(function () {
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) {
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; }); }
  document.querySelectorAll(".explorer").forEach(function (box) {
    var spec = JSON.parse(document.getElementById(box.id + "-data").textContent);
    var P = spec.payload, plot = box.querySelector(".plot");
    var img = box.querySelector(".hover-img"), text = box.querySelector(".hover-text");
    var title = box.querySelector(".nn-title"), list = box.querySelector(".nn-list");
    function show(i) {
      text.textContent = P.text[i];
      if (P.thumbs && img) { img.src = P.thumbs[i]; img.alt = P.text[i]; }
    }
    function neighbours(i) {
      title.textContent = "Nearest to " + P.text[i] + ":";
      var html = "";
      P.neighbours[i].forEach(function (n) {
        if (P.kind === "images") {
          html += '<li><img src="' + P.thumbs[n.i] + '" alt="' + esc(P.text[n.i]) + '">' +
                  esc(P.text[n.i]) + "<br>d=" + n.d.toFixed(3) + "</li>";
        } else {
          html += "<li>" + esc(n.label) + " (cos " + n.sim.toFixed(3) + ")</li>";
        }
      });
      list.innerHTML = html;
      list.setAttribute("data-point", i);
      selected = i;
      ring();
    }
    // Where each point is drawn: customdata index -> [trace, position]; the last trace is the ring.
    var selected = null;
    function ring() {
      var gd = plot, last = gd.data.length - 1, where = {}, xs = [], ys = [];
      if (selected === null) return;
      for (var t = 0; t < last; t++) {
        gd.data[t].customdata.forEach(function (c, j) { where[c] = [t, j]; });
      }
      var members = [selected], colours = [];
      P.neighbours[selected].forEach(function (n) { if (n.i >= 0) members.push(n.i); });
      members.forEach(function (c, m) {
        var w = where[c];
        if (w) {
          xs.push(gd.data[w[0]].x[w[1]]); ys.push(gd.data[w[0]].y[w[1]]);
          colours.push(m === 0 ? "#d62728" : "#111");
        }
      });
      Plotly.restyle(gd, {x: [xs], y: [ys], "marker.line.color": [colours]}, [last]);
    }
    Plotly.newPlot(plot, spec.figure.data, spec.figure.layout,
                   {responsive: true, displaylogo: false, scrollZoom: true}).then(function (gd) {
      gd.on("plotly_hover", function (ev) { show(ev.points[0].customdata); });
      gd.on("plotly_click", function (ev) {
        if (ev.points[0].curveNumber === gd.data.length - 1) return;
        show(ev.points[0].customdata); neighbours(ev.points[0].customdata);
      });
      gd.on("plotly_buttonclicked", function () { setTimeout(ring, 0); });
      box.setAttribute("data-ready", "1");
    });
  });
})();
"""


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


def _json_for_script(obj: Any) -> str:
    # Inside <script> the sequence "</" would end the element early.
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/").replace("<!--", "<\\!--")


def _explorer_html(data, box_id: str, title: str) -> str:
    from latentatlas.report import explorer as ex

    fig = ex.explorer_figure(data).to_plotly_json()
    spec = {"figure": {"data": fig["data"], "layout": fig["layout"]}, "payload": ex.explorer_payload(data)}
    what = "image" if data.kind == "images" else "item"
    img = '<img class="hover-img" alt="">' if data.kind == "images" else ""
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in data.notes)
    how = (f"Hover a point to see its {what}; click it to list its nearest neighbours (ringed in the plot, "
           "the clicked point in red)."
           + (" Switch the projection with the buttons above the plot." if len(data.coords) > 1 else ""))
    return (f'<h3>{html.escape(title)}</h3><p class="note">{html.escape(how)}</p>{notes}'
            f'<div class="explorer" id="{box_id}" data-kind="{data.kind}" data-points="{data.n}">'
            f'<div class="plot"></div><aside>{img}<div class="hover-text"></div>'
            f'<div class="nn-title"></div><ul class="nn-list {"items" if data.kind == "items" else ""}"></ul>'
            f"</aside></div>"
            f'<script type="application/json" id="{box_id}-data">{_json_for_script(spec)}</script>')


def render_html(sections: list[Section], *, title: str, created: str, plotly_js: str | None = None) -> str:
    """The whole self-contained page as a string."""
    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    toc = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    parts = []
    for s in sections:
        parts.append(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>'
                     f'<p class="sub">{html.escape(s.subtitle)}</p>')
        if s.tables:
            parts.append('<div class="tables">' + "".join(_html_table(*t) for t in s.tables) + "</div>")
        for j, e in enumerate(s.explorers):
            name = "Latent explorer: image codes" if e.kind == "images" else "Latent explorer: item factors"
            parts.append(_explorer_html(e, f"{s.anchor}-explorer-{j}", name))
        for f in s.figures:
            uri = "data:image/png;base64," + base64.b64encode(f.png).decode("ascii")
            parts.append(f'<figure><img src="{uri}" alt="{html.escape(f.title)}"><figcaption><b>'
                         f"{html.escape(f.title)}</b>{('. ' + html.escape(f.caption)) if f.caption else ''}"
                         "</figcaption></figure>")
        parts.append("</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style>"
            # Plotly's bundle, verbatim; it makes no request unless a map or MathJax is drawn.
            f"<script>{plotly_js}</script></head><body>"
            f"<header><h1>{html.escape(title)}</h1><p class=\"sub\">Created {html.escape(created)} by latentatlas. "
            "This file is self-contained and works offline.</p><nav><ol>" + toc + "</ol></nav></header>"
            + "".join(parts) + f"<script>{_JS}</script></body></html>\n")


# ------------------------------------------------------------------------------------------------- PDF

_A4 = (8.27, 11.69)
_TOP, _BOTTOM, _LEFT, _RIGHT = 0.94, 0.07, 0.08, 0.92
_FONT = 8.5
_ROW_H = 0.0185


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class _PdfWriter:
    """Lays out text, tables and figures on A4 pages; numbers pages when saved."""

    def __init__(self, title: str):
        self.title = title
        self.pages: list[list[Callable]] = []   # per page: drawing operations on (fig)
        self.y = 0.0
        self.section_pages: list[tuple[str, int]] = []

    def new_page(self) -> None:
        self.pages.append([])
        self.y = _TOP

    def _ensure(self, height: float) -> None:
        if not self.pages or self.y - height < _BOTTOM:
            self.new_page()

    def text(self, s: str, size: float = 10, weight: str = "normal", gap: float = 0.006, width: int = 95,
             color: str = "#222") -> None:
        lines = []
        for para in str(s).split("\n"):
            lines += textwrap.wrap(para, width=width) or [""]
        line_h = size / 72 / _A4[1] * 1.35
        for line in lines:
            self._ensure(line_h)
            y = self.y
            self.pages[-1].append(lambda fig, y=y, line=line: fig.text(
                _LEFT, y, line, fontsize=size, weight=weight, va="top", color=color))
            self.y -= line_h
        self.y -= gap

    def section(self, title: str, subtitle: str) -> None:
        self.new_page()
        self.section_pages.append((title, len(self.pages)))
        self.text(title, size=16, weight="bold", gap=0.004, width=60)
        self.text(subtitle, size=8.5, gap=0.02, color="#555", width=120)

    def table(self, name: str, header: list[str], rows: list[list[str]]) -> None:
        ncol = len(header)
        total = _RIGHT - _LEFT
        # Column widths from content length, capped so that one long cell cannot squeeze the rest.
        lens = np.array([max([len(header[c])] + [len(r[c]) for r in rows if c < len(r)]) for c in range(ncol)],
                        dtype=float)
        lens = np.clip(lens, 4, 48) + 3
        char_w = 0.56 * _FONT / 72 / _A4[0]     # average glyph width as a fraction of the page width
        widths = lens * char_w * min(1.0, total / (lens.sum() * char_w))
        chars = [max(4, int(w / char_w) - 2) for w in widths]
        self._ensure(0.03 + 2 * _ROW_H)
        self.text(name, size=11, weight="bold", gap=0.004)
        todo = [header] + rows
        first = True
        while todo:
            room = max(1, int((self.y - _BOTTOM) / _ROW_H) - 1)
            if room < 2 and not first:
                self.new_page()
                continue
            chunk = todo[:room] if first else [header] + todo[:room - 1]
            todo = todo[len(chunk) - (0 if first else 1):]
            y0 = self.y
            self.pages[-1].append(lambda fig, y0=y0, chunk=chunk: self._draw_rows(fig, y0, chunk, widths, chars))
            self.y -= _ROW_H * len(chunk) + 0.018
            first = False
            if todo:
                self.new_page()

    @staticmethod
    def _draw_rows(fig, y0, rows, widths, chars) -> None:
        from matplotlib.lines import Line2D
        from matplotlib.patches import Rectangle

        for r, row in enumerate(rows):
            y = y0 - r * _ROW_H
            right = _LEFT + sum(widths)
            if r == 0:
                fig.patches.append(Rectangle((_LEFT - 0.005, y - _ROW_H + 0.002), right - _LEFT + 0.005, _ROW_H,
                                             transform=fig.transFigure, color="#e8eef5", zorder=0))
            x = _LEFT
            for c, cell in enumerate(row):
                if c >= len(widths):
                    break
                fig.text(x, y - 0.003, _clip(cell, chars[c]), fontsize=_FONT, va="top",
                         weight="bold" if r == 0 else "normal", family="DejaVu Sans")
                x += widths[c]
            fig.lines.append(Line2D(
                [_LEFT - 0.005, right], [y - _ROW_H + 0.002] * 2, transform=fig.transFigure,
                color="#cccccc", linewidth=0.4))

    def figure(self, f: Figure) -> None:
        """A figure on a page of its own, scaled to the page width, with its title and caption."""
        import io

        import matplotlib.image as mpimg

        self.new_page()
        self.text(f.title, size=12, weight="bold", gap=0.01)
        img = mpimg.imread(io.BytesIO(f.png), format="png")
        h, w = img.shape[:2]
        max_w, max_h = _RIGHT - _LEFT, self.y - _BOTTOM - 0.12
        aspect = (h / w) * (_A4[0] / _A4[1])   # height in figure units per unit of width
        width = min(max_w, max_h / aspect)
        height = width * aspect
        y_img = self.y - height
        left = _LEFT + (max_w - width) / 2
        self.pages[-1].append(lambda fig, img=img, rect=(left, y_img, width, height): self._draw_image(fig, img, rect))
        self.y = y_img - 0.015
        if f.caption:
            self.text(f.caption, size=9, color="#333")

    @staticmethod
    def _draw_image(fig, img, rect) -> None:
        ax = fig.add_axes(rect)
        ax.imshow(img, interpolation="antialiased")
        ax.set_axis_off()

    def save(self, path: Path, created: str) -> None:
        from matplotlib.backends.backend_pdf import PdfPages

        from latentatlas.plots.style import plt

        n = len(self.pages)
        with PdfPages(path, metadata={"Title": self.title, "Creator": "latentatlas"}) as pdf:
            for i, ops in enumerate(self.pages, 1):
                fig = plt.figure(figsize=_A4)
                for op in ops:
                    op(fig)
                fig.text(_LEFT, 0.035, _clip(f"{self.title} · {created}", 90), fontsize=7.5, color="#777")
                fig.text(_RIGHT, 0.035, f"page {i} of {n}", fontsize=7.5, color="#777", ha="right")
                pdf.savefig(fig)
                plt.close(fig)


def render_pdf(sections: list[Section], path: Path, *, title: str, created: str) -> tuple[int, list[int]]:
    """Write the PDF to ``path``: a contents page, then each section from a new page.

    Returns the page count and the first page of every section.
    """
    w = _PdfWriter(title)
    w.new_page()
    w.text(title, size=20, weight="bold", gap=0.01)
    w.text(f"Created {created} by latentatlas.", size=10, gap=0.03, color="#555")
    # The contents page needs the page numbers, which are known only after layout: lay out, then fill in.
    toc_page = w.pages[-1]
    toc_y = w.y
    for s in sections:
        w.section(s.title, s.subtitle)
        for t in s.tables:
            w.table(*t)
        for e in s.explorers:
            w.text("The interactive explorer of this run is in report.html. " + " ".join(e.notes), size=9,
                   color="#555")
        for f in s.figures:
            w.figure(f)
    entries = [("Contents", None)] + [(f"{k}. {t}", p) for k, (t, p) in enumerate(w.section_pages, 1)]
    for j, (label, page) in enumerate(entries):
        y = toc_y - j * 0.022
        toc_page.append(lambda fig, y=y, label=label, page=page: (
            fig.text(_LEFT, y, _clip(label, 80), fontsize=12 if page is None else 10.5,
                     weight="bold" if page is None else "normal", va="top"),
            page is not None and fig.text(_RIGHT, y, str(page), fontsize=10.5, va="top", ha="right")))
    w.save(path, created)
    return len(w.pages), [p for _, p in w.section_pages]


# ------------------------------------------------------------------------------------------------- entry

@dataclass
class ReportResult:
    html: Path
    pdf: Path
    sections: list[str]
    pdf_pages: int
    section_pages: list[int]


def build_report(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                 title: str = "latentatlas report", explorer_points: int = 2000, neighbours: int = 8,
                 seed: int = 0, progress: Callable[[str], None] | None = None) -> ReportResult:
    """Build ``report.html`` and ``report.pdf`` in ``out_dir`` from run directories.

    Every run directory is checked first (``run.json`` and every file it lists must exist); both
    outputs are built completely before either replaces a file in ``out_dir``.
    """
    if explorer_points < 2:
        raise LatentAtlasError(f"explorer_points must be at least 2, got {explorer_points}")
    if neighbours < 1:
        raise LatentAtlasError(f"neighbours must be at least 1, got {neighbours}")
    runs = load_runs(run_dirs)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LatentAtlasError(f"--out {out} exists and is not a directory")
    created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    sections = build_sections(runs, explorer_points=explorer_points, neighbours=neighbours, seed=seed,
                              progress=progress)
    if progress:
        progress("writing report.html")
    page = render_html(sections, title=title, created=created)
    if progress:
        progress("writing report.pdf")
    out.mkdir(parents=True, exist_ok=True)
    # Both temporary files are complete before the first rename; the renames follow back to back.
    with atomic_path(out / "report.pdf") as pdf_tmp, atomic_path(out / "report.html") as html_tmp:
        n_pages, first_pages = render_pdf(sections, pdf_tmp, title=title, created=created)
        html_tmp.write_text(page, encoding="utf-8")
        # Temporary files are private (0600); a report is meant to be shared, so use the usual mode.
        for tmp in (pdf_tmp, html_tmp):
            tmp.chmod(0o666 & ~umask())
    return ReportResult(out / "report.html", out / "report.pdf", [s.title for s in sections], n_pages, first_pages)
