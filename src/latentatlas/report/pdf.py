"""``report.pdf``: every section from a new A4 page, tables laid out as text, figures a page each.

User text (titles, ids, table cells) is drawn with matplotlib's math text off, so ``$…$`` in a run title
or an item id is printed as written.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Callable

import numpy as np

from latentatlas.report.sections import Figure, Section

_A4 = (8.27, 11.69)
_TOP, _BOTTOM, _LEFT, _RIGHT = 0.94, 0.07, 0.08, 0.92
_FONT = 8.5
_ROW_H = 0.0185


def _text(fig, x, y, s, **kwargs):
    # parse_math=False: a "$" in a title or id is text, not the start of a formula.
    return fig.text(x, y, s, parse_math=False, **kwargs)


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
            self.pages[-1].append(lambda fig, y=y, line=line: _text(fig, 
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
                _text(fig, x, y - 0.003, _clip(cell, chars[c]), fontsize=_FONT, va="top",
                         weight="bold" if r == 0 else "normal", family="DejaVu Sans")
                x += widths[c]
            fig.lines.append(Line2D(
                [_LEFT - 0.005, right], [y - _ROW_H + 0.002] * 2, transform=fig.transFigure,
                color="#cccccc", linewidth=0.4))

    def figure(self, f: Figure) -> None:
        """A figure on a page of its own, scaled to the page width, with its title and caption."""
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

        from matplotlib.figure import Figure as MplFigure

        n = len(self.pages)
        with PdfPages(path, metadata={"Title": self.title, "Creator": "latentatlas"}) as pdf:
            for i, ops in enumerate(self.pages, 1):
                fig = MplFigure(figsize=_A4)   # not tracked by pyplot: nothing global
                for op in ops:
                    op(fig)
                _text(fig, _LEFT, 0.035, _clip(f"{self.title} · {created}", 90), fontsize=7.5, color="#777")
                _text(fig, _RIGHT, 0.035, f"page {i} of {n}", fontsize=7.5, color="#777", ha="right")
                pdf.savefig(fig)


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
            _text(fig, _LEFT, y, _clip(label, 80), fontsize=12 if page is None else 10.5,
                     weight="bold" if page is None else "normal", va="top"),
            page is not None and _text(fig, _RIGHT, y, str(page), fontsize=10.5, va="top", ha="right")))
    w.save(path, created)
    return len(w.pages), [p for _, p in w.section_pages]


# ------------------------------------------------------------------------------------------------- entry
