"""The app's icons, drawn in the palette's colours, and the README the Help menu opens.

The icons are SVG files in resources/icons/, found through engine.resources (the checkout's resources/, or the
package an installed wheel carries them in). The README stays at the top of the project; a wheel installs it as a
data file under <prefix>/share/transformer-studio/ (pyproject.toml, [tool.setuptools.data-files]).

The panel icons are single-colour line drawings (any stroke colour); they are painted onto a pixmap and recoloured
with a composition mode, so they follow a light or dark palette, also when the system switches.
"""

from __future__ import annotations

import site
import sys
import sysconfig
from pathlib import Path

from engine import resources

DATA_DIR = "transformer-studio"
PANEL_ICONS = ("data", "vocab", "model", "objective", "train", "attention", "playground", "runs")
APP_ICON_SIZES = (16, 24, 32, 48, 64, 128, 256)

_CHECKOUT = Path(__file__).resolve().parents[1]


def _data_roots() -> list[Path]:
    """The share/transformer-studio folders an installed wheel may have put its README in."""
    bases = [sys.prefix, sysconfig.get_path("data"), getattr(site, "USER_BASE", None) or ""]
    roots = []
    for base in bases:
        if base:
            root = Path(base) / "share" / DATA_DIR
            if root not in roots:
                roots.append(root)
    return roots


def _checkout() -> Path | None:
    # site-packages (the parent of an installed studio/) has no pyproject.toml; a checkout has.
    return _CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else None


def resource_path(*parts: str) -> Path | None:
    """resources/<parts>, or None when this copy lacks it (a missing icon is drawn as none, not a crash)."""
    try:
        path = resources.resource_path(*parts)
    except resources.ResourcesMissing:
        return None
    return path if path.exists() else None


def readme_path() -> Path | None:
    """The project's README.md, or the copy installed with the wheel."""
    checkout = _checkout()
    for path in ([checkout / "README.md"] if checkout else []) + [root / "README.md" for root in _data_roots()]:
        if path.is_file():
            return path
    return None


def icon_file(name: str) -> Path | None:
    return resource_path("icons", f"{name}.svg")


# ------------------------------------------------------------------------------------------------ drawing (Qt)


def tinted_pixmap(path: Path, color, size: int, ratio: float = 1.0):
    """The SVG at `path` drawn `size` px square (times the screen's pixel ratio) in one colour."""
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QPainter, QPixmap
    from PySide6.QtSvg import QSvgRenderer

    pix = QPixmap(int(size * ratio), int(size * ratio))
    pix.setDevicePixelRatio(ratio)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(str(path)).render(painter, QRectF(0, 0, size, size))
    # Keep the drawing's coverage (alpha), replace its colour.
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)
    painter.fillRect(QRectF(0, 0, size, size), color)
    painter.end()
    return pix


def panel_icon(name: str, palette, size: int = 40, ratio: float = 1.0):
    """A sidebar icon in the palette's text colour, and in its highlighted-text colour when selected."""
    from PySide6.QtGui import QIcon, QPalette

    icon = QIcon()
    path = icon_file(name)
    if path is None:
        return icon
    for mode, role in (
        (QIcon.Mode.Normal, QPalette.ColorRole.WindowText),
        (QIcon.Mode.Selected, QPalette.ColorRole.HighlightedText),
        (QIcon.Mode.Active, QPalette.ColorRole.WindowText),
    ):
        icon.addPixmap(tinted_pixmap(path, palette.color(role), size, ratio), mode)
    disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
    icon.addPixmap(tinted_pixmap(path, disabled, size, ratio), QIcon.Mode.Disabled)
    return icon


def app_icon():
    """The application icon in its own colours, at the sizes window managers and task bars ask for."""
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QIcon, QPainter, QPixmap
    from PySide6.QtSvg import QSvgRenderer

    icon = QIcon()
    path = icon_file("app")
    if path is None:
        return icon
    renderer = QSvgRenderer(str(path))
    for size in APP_ICON_SIZES:
        pix = QPixmap(size, size)
        pix.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pix)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        icon.addPixmap(pix)
    return icon
