"""The application and panel icons: SVG line drawings under resources/icons, recoloured for light and dark
palettes, on the real window's sidebar; found from this checkout (tests/test_wheel.py: from an installed wheel)."""

import re
from pathlib import Path

from PySide6.QtGui import QColor, QPalette
from PySide6.QtSvg import QSvgRenderer

from studio.icons import PANEL_ICONS, app_icon, icon_file, panel_icon, readme_path, tinted_pixmap
from studio.main_window import PAGES, MainWindow

ROOT = Path(__file__).resolve().parents[1]


def ink(pixmap) -> tuple[QColor, int]:
    """(the colour of the most opaque pixel, how many pixels are drawn at all) of a pixmap."""
    image = pixmap.toImage()
    best, drawn = QColor(0, 0, 0, 0), 0
    for y in range(image.height()):
        for x in range(image.width()):
            c = image.pixelColor(x, y)
            if c.alpha() > 0:
                drawn += 1
                if c.alpha() > best.alpha():
                    best = c
    return best, drawn


def test_every_panel_has_a_valid_single_colour_line_icon_and_the_app_its_own():
    assert [page[4] for page in PAGES] == list(PANEL_ICONS)
    for name in (*PANEL_ICONS, "app"):
        path = icon_file(name)
        assert path == ROOT / "resources" / "icons" / f"{name}.svg"
        assert QSvgRenderer(str(path)).isValid(), name
        text = path.read_text(encoding="utf-8")
        assert "<text" not in text, f"{name}.svg draws a glyph, not lines"
        if name != "app":
            colours = set(re.findall(r'(?:stroke|fill)="(#[0-9a-fA-F]{3,6})"', text))
            assert len(colours) == 1, f"{name}.svg is not single-colour: {colours}"


def test_icons_take_the_palettes_text_colour_in_light_and_dark(qapp):
    light, dark = QColor("#1f2328"), QColor("#e6edf3")
    for name in PANEL_ICONS:
        for wanted in (light, dark):
            colour, drawn = ink(tinted_pixmap(icon_file(name), wanted, 32))
            assert drawn > 40, f"{name} draws almost nothing"
            assert (colour.red(), colour.green(), colour.blue()) == (wanted.red(), wanted.green(), wanted.blue())
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.WindowText, dark)
    palette.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    icon = panel_icon("train", palette, 32)
    from PySide6.QtGui import QIcon

    assert ink(icon.pixmap(32, 32, QIcon.Mode.Normal))[0].name() == dark.name()
    assert ink(icon.pixmap(32, 32, QIcon.Mode.Selected))[0].name() == "#ffffff"
    assert not app_icon().isNull() and len(app_icon().availableSizes()) >= 5


def test_the_window_shows_the_icons_and_recolours_them_when_the_palette_changes(qtbot, tmp_path, qsettings):
    from studio.session import Session

    win = MainWindow(Session(str(tmp_path / "ws")), qsettings)
    qtbot.addWidget(win)
    win.show()
    assert not win.windowIcon().isNull()
    for i in range(win.sidebar.count()):
        assert not win.sidebar.item(i).icon().isNull(), win.sidebar.item(i).text()
    dark = QPalette(win.palette())
    dark.setColor(QPalette.ColorRole.WindowText, QColor("#e6edf3"))
    win.setPalette(dark)  # what a switch of the system theme does
    colour, _ = ink(win.sidebar.item(4).icon().pixmap(20, 20))
    assert colour.name() == "#e6edf3"


def test_this_checkout_reads_its_own_readme():
    assert readme_path() == ROOT / "README.md"


def test_a_missing_icon_gives_an_empty_icon_not_a_crash(qapp, monkeypatch):
    from studio import icons

    monkeypatch.setattr(icons, "resource_path", lambda *parts: None)
    assert icons.panel_icon("train", QPalette()).isNull() and icons.app_icon().isNull()
