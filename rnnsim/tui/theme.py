"""The light theme for slides and print: ``rnnsim-print``.

rnnsim's views are drawn for a dark background (the heatmap's colours, the plot glyphs and labels are fixed RGB
values picked on the xterm cube). A light Textual theme alone would leave light-grey labels and gold lines on white.
``rnnsim-print`` instead keeps the dark design and passes every colour on the screen (foreground and background
alike, so the two halves of a heatmap cell ``▀`` stay comparable) through one map: lightness inverted, hue and
saturation kept, L' = min(1, (1 - L) / 0.88)^2.2: the dark backgrounds become paper white and mid-tones darken so
coloured lines read on white. Near-black
backgrounds become near-white, white text black, the cyan and orange series darker cyan and orange. The map is a
Textual line filter, so screenshots (ctrl+s) are light too.

Pick it in the command palette (ctrl+p, "Theme") or start with ``TEXTUAL_THEME=rnnsim-print rnnsim``.
"""

from __future__ import annotations

import colorsys
import os
from functools import lru_cache

from rich.color import Color as RichColor
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import LineFilter
from textual.theme import BUILTIN_THEMES, Theme

PRINT_THEME_NAME = "rnnsim-print"
GAMMA = 2.2
WHITE_POINT = 0.88  # inverted lightness from here up is paper white (the dark theme's backgrounds)

_base = BUILTIN_THEMES["textual-dark"]
PRINT_THEME = Theme(
    name=PRINT_THEME_NAME,
    primary=_base.primary,
    secondary=_base.secondary,
    warning=_base.warning,
    error=_base.error,
    success=_base.success,
    accent=_base.accent,
    foreground=_base.foreground,
    background="#0a0a0a",
    surface="#161616",
    panel="#202020",
    dark=True,  # the colours are dark ones: the filter below turns the whole screen light
)


def invert_rgb(r: int, g: int, b: int) -> tuple[int, int, int]:
    """The print map of one colour: HLS lightness L -> min(1, (1 - L) / WHITE_POINT)^GAMMA, hue and saturation
    kept."""
    h, light, s = colorsys.rgb_to_hls(r / 255, g / 255, b / 255)
    light = min(1.0, (1.0 - light) / WHITE_POINT) ** GAMMA
    rr, gg, bb = colorsys.hls_to_rgb(h, light, s)
    return round(rr * 255), round(gg * 255), round(bb * 255)


@lru_cache(4096)
def _color(color: RichColor | None) -> RichColor | None:
    if color is None or color.is_default:
        return color
    r, g, b = color.get_truecolor()
    return RichColor.from_rgb(*invert_rgb(r, g, b))


@lru_cache(4096)
def print_style(style: Style | None) -> Style | None:
    if style is None:
        return None
    color, bgcolor = _color(style.color), _color(style.bgcolor)
    if color is style.color and bgcolor is style.bgcolor:
        return style
    return style + Style.from_color(color, bgcolor)


class PrintFilter(LineFilter):
    """Every colour through ``invert_rgb``; on only while the print theme is the app's theme."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        _style = print_style
        return [Segment(text, _style(style), control) for text, style, control in segments]


def install(app) -> PrintFilter:
    """Register the print theme on ``app`` and switch the filter with the theme (call it from on_mount)."""
    app.register_theme(PRINT_THEME)
    line_filter = PrintFilter(enabled=False)
    app._filters.append(line_filter)  # Textual keeps its line filters (NO_COLOR, dim) in this list

    def changed(theme: Theme) -> None:
        on = theme.name == PRINT_THEME_NAME
        if on != line_filter.enabled:
            line_filter.enabled = on
            app.refresh(repaint=True, layout=True)
            for screen in app.screen_stack:
                for widget in screen.walk_children(with_self=True):
                    widget.refresh()

    app.theme_changed_signal.subscribe(app, changed)
    wanted = [t.strip() for t in os.environ.get("TEXTUAL_THEME", "").split(",")]
    if PRINT_THEME_NAME in wanted and app.theme != PRINT_THEME_NAME:
        app.theme = PRINT_THEME_NAME  # Textual picked its default: the print theme did not exist yet
    return line_filter
