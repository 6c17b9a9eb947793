"""The web page at `/`, driven in headless Chromium (Debian's `chromium`, through playwright's Python API).

CI installs the browser with ``apt-get install -y chromium``; with CI=true a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.inference.conftest import SERVE_TOKEN, small_video
from viva.data.video_io import write_video

pytestmark = pytest.mark.integration
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = "Debian's chromium is not installed (apt-get install -y chromium)"
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    return path


def test_upload_edit_and_play(server, tmp_path) -> None:
    browser_path = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (test extra) drives the browser")
    url, _ = server
    clip = tmp_path / "clip.mp4"
    write_video(clip, small_video(frames=6, height=32, width=48), fps=8, codec="libx264")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(url + "/")
            assert page.title().startswith("viva")
            page.set_input_files("#video", str(clip))
            page.fill("#instruction", "make the ball red")
            page.fill("#num_steps", "2")
            page.fill("#token", SERVE_TOKEN)
            page.click("#submit")
            page.wait_for_function("document.getElementById('status').textContent !== 'idle'")
            page.wait_for_selector("#result:not([hidden])", timeout=60_000)
            assert page.text_content("#status") == "done"
            assert page.eval_on_selector("#progress", "p => p.value") == 1
            assert page.text_content("#error") == ""
            # the result is a playable video: its metadata loads in the browser
            page.wait_for_function("document.getElementById('result').readyState >= 1", timeout=20_000)
            size = page.eval_on_selector("#result", "v => [v.videoWidth, v.videoHeight]")
            assert size == [48, 32]
            # a refused request shows the server's reason
            page.fill("#token", "wrong")
            page.click("#submit")
            page.wait_for_function("document.getElementById('error').textContent.includes('401')")
        finally:
            browser.close()
