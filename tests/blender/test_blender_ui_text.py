"""ui_text: labels wrapped to the region's width, never cut; progress text without repeats."""

from types import SimpleNamespace

from dposer_blender import ui_text


def test_wrap_fits_and_keeps_every_character() -> None:
    text = ("Ready on cpu (x86_64 (2 threads)), torch 2.13.0+cpu weights: "
            "/tmp/dposer-window-d4BhzH/extensions/user_default/dposer_blender/weights/dposer_cmu_bandai.pt")
    for chars in (16, 24, 31, 60):
        lines = ui_text.wrap(text, chars)
        assert all(len(ln) <= chars for ln in lines), (chars, lines)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    lines = ui_text.wrap("/a/very/long/path/to/some/file.pt", 12)
    assert all(ln.endswith("/") for ln in lines[:-1])  # a path breaks after its slashes


def test_chars_that_fit_follows_the_region_width() -> None:
    narrow = SimpleNamespace(region=SimpleNamespace(width=240), preferences=SimpleNamespace(view=SimpleNamespace(ui_scale=1.0)))
    wide = SimpleNamespace(region=SimpleNamespace(width=600), preferences=SimpleNamespace(view=SimpleNamespace(ui_scale=1.0)))
    big_ui = SimpleNamespace(region=SimpleNamespace(width=600), preferences=SimpleNamespace(view=SimpleNamespace(ui_scale=2.0)))
    assert ui_text.chars_that_fit(narrow, True) < ui_text.chars_that_fit(wide, True)
    assert ui_text.chars_that_fit(big_ui, True) < ui_text.chars_that_fit(wide, True)
    assert ui_text.chars_that_fit(SimpleNamespace(region=None), False) == 1000


def test_progress_text_does_not_repeat_the_request_name() -> None:
    p = SimpleNamespace(label="Denoising", fraction=0.93, message="denoise")
    assert ui_text.progress_text(p) == "Denoising 93%"
    p.message = "step 4/10"
    assert ui_text.progress_text(p) == "Denoising 93%, step 4/10"
