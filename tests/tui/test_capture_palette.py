"""ctrl+s screenshots, the command palette (ctrl+p) and the print theme, through Pilot."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from textual.command import CommandPalette

from rnnsim.tui import palette, theme
from rnnsim.tui.app import RnnsimApp

from conftest import settle

SIZE = (100, 30)
SVG = "{http://www.w3.org/2000/svg}"


def _svg_text(path) -> str:
    root = ET.parse(path).getroot()  # raises on a file that is not well-formed XML
    assert root.tag == f"{SVG}svg"
    return "".join(el.text or "" for el in root.iter() if el.tag == f"{SVG}text").replace("\xa0", " ")


def _status(app) -> str:
    return str(app.query_one("#status").render())


async def test_ctrl_s_writes_an_svg_of_the_screen_to_the_current_folder(small, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("n", "n", "n")
        await settle(app, pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        files = sorted(tmp_path.glob("*.svg"))
        assert len(files) == 1, files
        name = files[0].name
        assert re.fullmatch(r"rnnsim-small-tanh-rnn-dynamics-\d{8}-\d{6}\.svg", name), name
        text = _svg_text(files[0])
        assert "small tanh RNN" in text and "t 3/20" in text  # the title and the status line, as on the screen
        assert "‖dL/dh_t‖" in text  # the Dynamics view
        assert name in _status(app)  # the status line names the file
        await pilot.press("2", "ctrl+s")
        await pilot.pause()
        second = sorted(set(tmp_path.glob("*.svg")) - set(files))
        assert len(second) == 1 and "-training-" in second[0].name  # a second shot never overwrites the first
        assert not list(tmp_path.glob(".*.tmp"))


async def test_screenshot_into_a_missing_folder_says_so(small, tmp_path):
    from rnnsim.tui import capture

    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        message = capture.take_screenshot(app, tmp_path / "gone")
        await pilot.pause()
        assert message.startswith("screenshot not saved:") and "gone" in message
        assert "screenshot not saved" in _status(app)


def test_palette_entries_cover_every_binding_with_help_text():
    entries = palette.palette_entries()
    listed = [e.action for e in entries]
    assert len(listed) == len(set(listed)) and set(listed) == {b.action for b in RnnsimApp.BINDINGS}
    helps = {text for _, text in RnnsimApp.HELP_ROWS}
    for e in entries:
        assert e.help in helps, (e, "no help row names this binding's key")
    by_action = {e.action: e for e in entries}
    assert by_action["clip"].help.startswith("clipping: none")
    assert by_action["screenshot"].key == "ctrl+s"


async def test_command_palette_lists_every_action_and_runs_it(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        commands = list(app.get_system_commands(app.screen))
        titles = [c.title for c in commands]
        assert "Theme" in titles  # Textual's theme switcher stays
        assert not {"Screenshot", "Quit"} & set(titles)  # replaced by the app's own ctrl+s and q
        # the palette opens on ctrl+p and lists every binding's action (shown before anything is typed)
        await pilot.press("ctrl+p")
        await pilot.pause(0.5)
        assert isinstance(app.screen, CommandPalette)
        from textual.widgets import OptionList

        shown = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
        shown_text = "\n".join(shown)
        for b in RnnsimApp.BINDINGS:
            if b.action == "quit" and b.key == "ctrl+q":
                continue  # one entry for q and ctrl+q
            assert f"{b.description} (" in shown_text, b
        assert any(s.startswith("Theme") for s in shown)
        # typing searches titles and help texts; enter runs the best hit
        await pilot.press(*"training")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, CommandPalette)
        assert app.view == "training"


def test_print_map_turns_dark_into_light_and_keeps_hue():
    assert theme.invert_rgb(0, 0, 0) == (255, 255, 255)
    assert theme.invert_rgb(255, 255, 255) == (0, 0, 0)
    r, g, b = theme.invert_rgb(28, 28, 28)  # the views' blank background
    assert min(r, g, b) > 220
    r, g, b = theme.invert_rgb(0, 175, 215)  # the cyan gradient bars: still blue-green, darker
    assert b > r and g > r and max(r, g, b) < 215
    r, g, b = theme.invert_rgb(255, 215, 0)  # the gold threshold line: still yellow-orange, darker
    assert r > g > b and r < 255


async def test_print_theme_makes_the_screen_and_the_screenshot_light(small, tmp_path):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        dark = app.export_screenshot()
        app.theme = theme.PRINT_THEME_NAME
        await pilot.pause()
        await pilot.pause()
        light = app.export_screenshot()
        app.theme = "textual-dark"
        await pilot.pause()
        await pilot.pause()
        back = app.export_screenshot()

    def background_lightness(svg: str) -> float:
        fills = re.findall(r'fill="#([0-9a-f]{6})"', svg)
        shades = [sum(int(f[i:i + 2], 16) for i in (0, 2, 4)) / 765 for f in fills]
        return sorted(shades)[len(shades) // 2]  # the median fill: the background of most cells

    assert background_lightness(dark) < 0.3
    assert background_lightness(light) > 0.7
    assert background_lightness(back) < 0.3  # switching back turns the filter off


async def test_textual_theme_env_starts_in_the_print_theme(small, monkeypatch):
    monkeypatch.setenv("TEXTUAL_THEME", theme.PRINT_THEME_NAME)
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.theme == theme.PRINT_THEME_NAME
        assert any(isinstance(f, theme.PrintFilter) and f.enabled for f in app.get_line_filters())
