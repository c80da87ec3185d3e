"""``amodal app`` end to end in headless Chromium: load the bundled example, click an object, run, download.

The server runs in this process on 127.0.0.1 (a free port), with the one-step bundled models on
the example's first 4 frames so the run takes seconds. Selenium drives Debian's ``chromium`` and
``chromedriver`` (never Selenium Manager, which would download a browser); without them the test
skips and says why.

With ``AMODAL_APP_SCREENSHOTS=docs/images`` it also saves the screenshots of ``docs/app.md``,
from a run as a user would see it: the default models on the example's 16 frames, two more
objects (one of them partly hidden) and 2 samples of 25 stage-1 steps, so that the uncertainty map
has something to show.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app]'")
pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[test]'")

from amodal.apps import webapp  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

SCREENSHOTS = os.environ.get("AMODAL_APP_SCREENSHOTS")
# Longest wait for one step of the page (a run on a busy 2-core machine included).
WAIT_S = 600 if SCREENSHOTS else 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    fast = dict(example_frames=4, layer_size=64, model="default-regression", completion_model="default-completion-regression")
    config = webapp.AppConfig(port=_free_port(), work_dir=str(tmp_path_factory.mktemp("app-runs")),
                              **({} if SCREENSHOTS else fast))
    demo, url = webapp.start(config)
    try:
        assert url.startswith("http://127.0.0.1:")
        yield url, config
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("headless Chromium not found: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,2400"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # the page's requests, to check it stays local
    # An explicit driver path: Selenium Manager is never asked to find (download) one.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _inner_pixel(mask: np.ndarray) -> tuple[int, int]:
    """``(x, y)`` of a pixel deep inside ``mask``: the last survivor of repeated erosion."""
    from amodal.viz.overlay import erode

    while True:
        smaller = erode(mask)
        if not smaller.any():
            ys, xs = np.nonzero(mask)
            return int(xs[len(xs) // 2]), int(ys[len(ys) // 2])
        mask = smaller


def _click_pixel(driver, image, x: float, y: float) -> None:
    """Click the point of ``image`` (an ``<img>``) that shows its natural pixel ``(x, y)``, wherever the page scaled it."""
    from selenium.webdriver.common.action_chains import ActionChains

    width, height, natural_w, natural_h = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [r.width, r.height, arguments[0].naturalWidth, arguments[0].naturalHeight];", image)
    scale = min(width / natural_w, height / natural_h)  # object-fit keeps the aspect, centred
    left = (width - natural_w * scale) / 2 + x * scale
    top = (height - natural_h * scale) / 2 + y * scale
    ActionChains(driver).move_to_element_with_offset(image, int(left - width / 2), int(top - height / 2)).click().perform()


def _status(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "status").text


def _shot(element, name: str) -> None:
    """Save a screenshot of ``element`` as ``$AMODAL_APP_SCREENSHOTS/app-<name>.png``, palette-compressed."""
    from PIL import Image

    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB")
    image.quantize(colors=128, dither=Image.Dither.NONE).save(folder / f"app-{name}.png", optimize=True)


def test_example_click_run_and_download(app, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, config = app
    started = time.perf_counter()
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(url)

    # 1. The bundled example.
    wait.until(ec.element_to_be_clickable((By.ID, "load-example"))).click()
    wait.until(lambda d: "Loaded" in _status(d))
    clip = webapp.load_example(webapp.DEMO_EXAMPLE, config)
    assert f"{clip.num_frames} frames" in _status(browser)

    # 2. Click the largest object of the first frame, where the page shows it.
    scale = webapp.view_scale(clip)

    def pick(object_id: int) -> None:
        x, y = _inner_pixel(clip.modal_masks[clip.object_ids.index(object_id), 0])
        image = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#first-frame img"))  # found afresh: the page may swap it
        wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image))
        _click_pixel(browser, image, (x + 0.5) * scale, (y + 0.5) * scale)
        wait.until(lambda d: f"Object {object_id} selected" in _status(d))

    object_id = clip.object_ids[int(np.argmax(clip.modal_masks[:, 0].sum(axis=(1, 2))))]
    pick(object_id)
    checked = browser.find_elements(By.CSS_SELECTOR, "#objects input[type=checkbox]:checked")
    assert len(checked) == 1
    if SCREENSHOTS:
        # Two more objects (object 2 is partly hidden from the start), the selection outlined, then two samples.
        for other in (2, 4):
            pick(other)
        time.sleep(2.0)  # the outlined first frame replaces the plain one
        _shot(browser.find_element(By.ID, "inputs"), "pick")
        browser.find_element(By.CSS_SELECTOR, "#settings button").click()  # open the settings accordion
        samples = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#samples input[type=number]"))
        browser.execute_script("arguments[0].scrollIntoView()", samples)
        samples.clear()
        samples.send_keys("2\t")
        steps = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#steps input"))
        steps.clear()
        steps.send_keys("25\t")
        time.sleep(1.0)

    # 3. Run both stages; the result appears in the page.
    browser.find_element(By.ID, "run").click()
    wait.until(lambda d: "Done" in _status(d) or "Error" in _status(d))
    assert "Done" in _status(browser), _status(browser)
    amodal = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#view-amodal img"))
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", amodal))
    assert browser.find_element(By.CSS_SELECTOR, "#view-completed img").get_attribute("src")

    # 4. The download link serves the zip of every output.
    link = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#download a[href]"))
    href = link.get_attribute("href")
    assert href.startswith(url.rstrip("/")), href  # served by this server, on 127.0.0.1
    with urllib.request.urlopen(href, timeout=30) as response:
        payload = response.read()
    names = set(zipfile.ZipFile(io.BytesIO(payload)).namelist())
    root = webapp.ZIP_ROOT
    first = clip.frame_names[0]
    for member in ("summary.json", "segmentation/amodal.json", "segmentation/predictions_sailvos.json",
                   "segmentation/overlay.mp4", "segmentation/summary.json", f"segmentation/masks/{object_id}/{first}.png",
                   f"completion/{object_id}/rgba/{first}.png", f"layers/{object_id}/rgba/{first}.png"):
        assert f"{root}/{member}" in names, member

    if SCREENSHOTS:
        frame = browser.find_element(By.CSS_SELECTOR, "#frame input[type=number]")
        frame.clear()
        frame.send_keys("11\t")  # the frame where the samples disagree most
        time.sleep(2.0)
        _shot(browser.find_element(By.ID, "results"), "results")
    # The page asked nothing of any other host: it works offline.
    requests = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    urls = {m["params"]["request"]["url"] for m in requests if m.get("method") == "Network.requestWillBeSent"}
    assert urls and not [u for u in urls if not u.startswith((url.rstrip("/"), "data:", "blob:"))]
    assert time.perf_counter() - started < 3 * WAIT_S


def test_a_bad_upload_is_one_line_in_the_page(app, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = app
    wait = WebDriverWait(browser, WAIT_S)
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"not a video" * 100)
    masks = tmp_path / "masks.zip"
    with zipfile.ZipFile(masks, "w") as archive:
        archive.writestr("0.png", b"")
    browser.get(url)
    wait.until(lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text == "Upload"])[0].click()
    for elem_id, path in (("upload-video", video), ("upload-masks", masks)):
        field = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=file]"))
        field.send_keys(str(path))
        wait.until(lambda d: path.stem in d.find_element(By.ID, elem_id).text)  # uploaded: the page names the file
    browser.find_element(By.ID, "load-upload").click()
    wait.until(lambda d: "Error" in _status(d))
    status = _status(browser)
    assert status.startswith("Error: broken.mp4: cannot open this video"), status
    assert "\n" not in status and "Traceback" not in browser.page_source
