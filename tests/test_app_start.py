"""`studio` on a machine that lacks the system libraries of Qt's xcb plugin: it names them and prints the one
install command, before Qt can abort. The detection is a pure function, tested with made-up library lists."""

import pytest

from studio import app

CURSOR, KEYSYMS = "libxcb-cursor.so.0", "libxcb-keysyms.so.1"


def lacking(*sonames):
    """A loader for a system where the given libraries are not installed."""
    return lambda soname: soname not in sonames


def test_the_missing_libraries_are_named_with_the_command_that_installs_them():
    missing = app.missing_xcb_libraries(lacking(CURSOR, KEYSYMS, "libxcb-icccm.so.4"))
    assert missing == [(CURSOR, "libxcb-cursor0"), ("libxcb-icccm.so.4", "libxcb-icccm4"), (KEYSYMS, "libxcb-keysyms1")]
    text = app.xcb_help(missing)
    assert "    sudo apt-get install -y libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1\n" in text
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4, libxcb-keysyms.so.1" in text
    assert app.SKIP_CHECK_ENV in text


def test_nothing_is_said_when_every_library_loads():
    assert app.missing_xcb_libraries(lambda soname: True) == []
    assert app.check_display_libraries("linux", {}, lambda soname: True) is None


def test_the_real_loader_finds_what_is_installed_and_names_what_is_not():
    # The real loader (ctypes): the C library is on every Linux machine; a library that exists nowhere is
    # reported. (Whether this machine has the xcb libraries themselves is the machine's business, not the test's.)
    real = (("libc.so.6", "libc6"), ("libnot-a-real-library.so.7", "not-real7"))
    assert app.missing_xcb_libraries(libraries=real) == [("libnot-a-real-library.so.7", "not-real7")]


@pytest.mark.parametrize(
    "platform, env, checked",
    [
        ("linux", {}, True),  # Qt's default on X11 is xcb
        ("linux", {"QT_QPA_PLATFORM": "xcb"}, True),
        ("linux", {"QT_QPA_PLATFORM": "xcb:nograb"}, True),
        ("linux", {"QT_QPA_PLATFORM": "offscreen"}, False),
        ("linux", {"QT_QPA_PLATFORM": "wayland"}, False),
        ("linux", {"WAYLAND_DISPLAY": "wayland-0"}, False),  # a Wayland session takes the wayland plugin
        ("linux", {app.SKIP_CHECK_ENV: "1"}, False),
        ("darwin", {}, False),
        ("win32", {}, False),
    ],
)
def test_the_check_runs_only_where_qt_would_load_xcb(platform, env, checked):
    assert app.will_use_xcb(platform, env) is checked
    text = app.check_display_libraries(platform, env, lacking(CURSOR))
    assert (text is not None) is checked


def test_studio_prints_the_command_and_exits_before_creating_the_window(monkeypatch, capsys):
    monkeypatch.setattr(app.sys, "platform", "linux")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.delenv(app.SKIP_CHECK_ENV, raising=False)
    monkeypatch.setattr(app, "can_load", lacking(CURSOR))  # this machine, minus libxcb-cursor0
    started = []
    import studio.session

    monkeypatch.setattr(studio.session.Session, "start_engine", lambda self: started.append(self))
    assert app.main(["--workspace", "/nonexistent-workspace"]) == 1
    err = capsys.readouterr().err
    assert "sudo apt-get install -y libxcb-cursor0" in err and not started


def test_the_readme_installs_every_library_the_check_looks_for():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    command = readme.split("sudo apt-get install -y ", 1)[1].split("```", 1)[0]
    assert command.replace("\\", " ").split() == [package for _, package in app.XCB_LIBRARIES]
