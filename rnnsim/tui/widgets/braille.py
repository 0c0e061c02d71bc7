"""A small braille canvas: 2x4 dots per character cell (U+2800..U+28FF), drawn with the line API.

Neither Textual nor rich has a braille canvas, so this is one: dots are set in layers (one style each); a cell's
character is the union of its dots and its style is that of the highest-priority layer present in it. Point
markers (a glyph in a whole cell) go on top, so NO_COLOR still tells the layers apart (markers vs dots).
A dot is about as wide as it is tall in a usual terminal font (a cell is ~1:2), so circles come out round.
"""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from .common import NULL

# bit of each dot (column dx in 0..1, row dy in 0..3) in the braille block
_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


class BrailleCanvas:
    """`cols` x `rows` character cells = (2·cols) x (4·rows) dots; (0, 0) is the top-left dot."""

    def __init__(self, cols: int, rows: int) -> None:
        self.cols, self.rows = max(cols, 1), max(rows, 1)
        self.w, self.h = 2 * self.cols, 4 * self.rows
        self.bits = np.zeros((self.rows, self.cols), dtype=np.int32)
        self.layer = np.full((self.rows, self.cols), -1, dtype=np.int32)  # highest layer index in the cell
        self.markers: dict[tuple[int, int], tuple[str, Style | None, int]] = {}
        self.text: dict[tuple[int, int], tuple[str, Style | None]] = {}

    def dot(self, x: float, y: float, layer: int = 0) -> None:
        xi, yi = int(math.floor(x)), int(math.floor(y))
        if 0 <= xi < self.w and 0 <= yi < self.h:
            r, c = yi // 4, xi // 2
            self.bits[r, c] |= _BITS[yi % 4][xi % 2]
            if layer > self.layer[r, c]:
                self.layer[r, c] = layer

    def line(self, x0: float, y0: float, x1: float, y1: float, layer: int = 0, every: int = 1) -> None:
        n = max(int(max(abs(x1 - x0), abs(y1 - y0))), 1)
        for i in range(0, n + 1, every):
            f = i / n
            self.dot(x0 + (x1 - x0) * f, y0 + (y1 - y0) * f, layer)

    def circle(self, cx: float, cy: float, r: float, layer: int = 0, every: int = 1) -> None:
        if not (r > 0) or not math.isfinite(r):
            return
        n = max(int(2 * math.pi * r * 1.5), 8)
        for i in range(0, n, every):
            a = 2 * math.pi * i / n
            self.dot(cx + r * math.cos(a), cy + r * math.sin(a), layer)

    def marker(self, x: float, y: float, glyph: str, style: Style | None, priority: int = 0) -> None:
        """A glyph over the whole cell holding dot (x, y); a higher priority wins a shared cell."""
        xi, yi = int(math.floor(x)), int(math.floor(y))
        if 0 <= xi < self.w and 0 <= yi < self.h:
            key = (yi // 4, xi // 2)
            old = self.markers.get(key)
            if old is None or priority >= old[2]:
                self.markers[key] = (glyph, style, priority)

    def put_text(self, col: int, row: int, text: str, style: Style | None = None) -> None:
        for i, ch in enumerate(text):
            if 0 <= col + i < self.cols and 0 <= row < self.rows:
                self.text[(row, col + i)] = (ch, style)

    def strips(self, layer_styles: list[Style | None]) -> list[Strip]:
        out = []
        for r in range(self.rows):
            segs: list[Segment] = []
            buf: list[str] = []
            cur = None
            for c in range(self.cols):
                t = self.text.get((r, c))
                m = self.markers.get((r, c))
                if t is not None:
                    ch, st = t
                elif m is not None:
                    ch, st = m[0], m[1]
                else:
                    b = int(self.bits[r, c])
                    ch = chr(0x2800 + b) if b else " "
                    li = int(self.layer[r, c])
                    st = layer_styles[li] if b and 0 <= li < len(layer_styles) else None
                st = st if st is not None else NULL
                if st is not cur and buf:
                    segs.append(Segment("".join(buf), cur))
                    buf = []
                cur = st
                buf.append(ch)
            if buf:
                segs.append(Segment("".join(buf), cur))
            out.append(Strip(segs, self.cols))
        return out


def complex_plane(cols: int, rows: int, eigenvalues, radii: list[tuple[float, int, int]], extent: float,
                  eig_layer: int, marker: tuple[str, Style | None] | None = None):
    """The complex plane centred in a `cols` x `rows` canvas with the same scale on both axes (`extent` = the
    largest |x| or |y| shown): the axes (layer 0), circles [(radius, layer, every)] and the eigenvalues as dots
    in `eig_layer`, or as `marker` glyphs when given (NO_COLOR). Returns the canvas and the scale (dots per unit)."""
    cv = BrailleCanvas(cols, rows)
    cx, cy = (cv.w - 1) / 2, (cv.h - 1) / 2
    s = min(cv.w - 2, cv.h - 2) / (2 * extent)
    cv.line(0, cy, cv.w - 1, cy, 0, every=2)
    cv.line(cx, 0, cx, cv.h - 1, 0, every=2)
    for r, layer, every in radii:
        cv.circle(cx, cy, r * s, layer, every)
    for z in np.asarray(eigenvalues, dtype=complex).ravel():
        if not (math.isfinite(z.real) and math.isfinite(z.imag)):
            continue
        x, y = cx + z.real * s, cy - z.imag * s
        x = min(max(x, 0), cv.w - 1)
        y = min(max(y, 0), cv.h - 1)
        if marker is not None:
            cv.marker(x, y, marker[0], marker[1], 1)
        else:
            cv.dot(x, y, eig_layer)
            cv.dot(x + 1 if x + 1 < cv.w else x - 1, y, eig_layer)  # two dots: visible, still precise
    return cv, s
