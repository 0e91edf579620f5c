"""The search page in a real headless browser (Debian chromium + chromium-driver, driven by
Selenium): type a query in two languages, see the expected image first, click through to
similar images. Once with the tiny colour encoder, once with the real default model (babel-lite)
on Tux Paint stamps."""
from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("selenium")
pytest.importorskip("uvicorn")

from _search_encoder import ColourEncoder, write_images

from babelclip.search import Searcher, build_index
from babelclip.search.server import create_app

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
STAMPS = Path("/usr/share/tuxpaint/stamps")
pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and DRIVER.exists()),
                                reason="chromium + chromium-driver not installed (scripts/setup.sh dev installs them)")
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """uvicorn in a thread on 127.0.0.1 and a free port, stopped on exit."""

    def __init__(self, app):
        import uvicorn

        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the search server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in (*CHROMIUM_ARGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _query(driver, text: str, lang: str) -> list[str]:
    """Type ``text``, pick ``lang``, submit; the relative paths shown, in order."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.wait import WebDriverWait

    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys(text)
    Select(driver.find_element(By.ID, "lang")).select_by_value(lang)
    driver.find_element(By.ID, "go").click()
    WebDriverWait(driver, 60).until(lambda d: f"({lang})" in d.find_element(By.ID, "status").text
                                    and text in d.find_element(By.ID, "status").text)
    return _shown(driver)


def _shown(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.get_attribute("data-rel") for e in driver.find_elements(By.CSS_SELECTOR, "#results .hit")]


def _click_first_image_and_wait(driver) -> tuple[str, list[str]]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    first = driver.find_element(By.CSS_SELECTOR, "#results .hit")
    rel = first.get_attribute("data-rel")
    first.find_element(By.TAG_NAME, "img").click()
    WebDriverWait(driver, 60).until(lambda d: f"similar to {rel}" in d.find_element(By.ID, "status").text)
    return rel, _shown(driver)


def _open(driver, url: str) -> None:
    from selenium.webdriver.support.wait import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")


def _picker(driver) -> tuple[list[str], str]:
    """The language picker's entries as shown, and the note under the search box."""
    from selenium.webdriver.common.by import By

    return ([o.text for o in driver.find_elements(By.CSS_SELECTOR, "#lang option")],
            driver.find_element(By.ID, "langnote").text)


def _thumbnails_loaded(driver) -> bool:
    return bool(driver.execute_script(
        "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"))


def test_page_with_colour_encoder(tmp_path, monkeypatch, browser):
    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "photos"
    write_images(folder, {"red.png": "red", "dark/red2.png": "red", "green.png": "green", "blue.png": "blue"})
    write_images(tmp_path / "secret", {"s.png": "yellow"})
    (folder / "dark" / "out.png").symlink_to(tmp_path / "secret" / "s.png")
    enc = ColourEncoder()
    build_index(folder, enc)
    with Searcher([folder], enc) as s, _Server(create_app(s, "en")) as url:
        _open(browser, url)
        assert _picker(browser) == (["English (en)", "German (de)", "Japanese (ja)"], "colour handles 3 languages")
        assert _query(browser, "grün", "de")[0] == "green.png"
        assert _query(browser, "青", "ja")[0] == "blue.png"
        assert _query(browser, "rot", "de")[0] in ("red.png", "dark/red2.png")
        rel, similar = _click_first_image_and_wait(browser)
        assert rel not in similar and similar[0] in ("red.png", "dark/red2.png")
        assert _thumbnails_loaded(browser)
        # raw requests reach uvicorn unnormalised (http.client sends the path as given)
        for path in ("/thumb/0/../secret/s.png", "/thumb/0/dark/../../secret/s.png", "/thumb/0/%2e%2e/secret/s.png",
                     "/thumb/0/..%2fsecret%2fs.png", "/thumb/0/%2Fetc%2Fpasswd", "/thumb/0//etc/passwd"):
            assert _raw_get(url, path)[0] == 404, path
        assert _raw_get(url, "/thumb/0/dark/out.png")[0] == 404  # a link pointing out of the folder
        assert _raw_get(url, "/thumb/0/dark/red2.png") == (200, "image/png")


def _raw_get(url: str, path: str) -> tuple[int, str]:
    import http.client

    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("content-type", "")
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.skipif(not STAMPS.is_dir(), reason="Tux Paint stamps not installed (scripts/setup.sh installs them)")
def test_page_with_babel_lite_on_tux_paint_stamps(tmp_path, monkeypatch, browser):
    """The real offline default model: honest queries in English, German and Japanese."""
    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "stamps"
    for rel in ("food/fruit/banana.png", "food/pizza.png", "food/vegetables/carrot.png", "food/fruit/pineapple.png",
                "household/dishes/teapot.png", "household/toilet.png", "hobbies/music/string/guitar_classical.png",
                "animals/mammals/equines/horse.png", "animals/mammals/elephant.png",
                "animals/mammals/bovines/sheep.png"):
        (folder / Path(rel).parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(STAMPS / rel, folder / Path(rel).parent.name / Path(rel).name)
    build_index(folder, "babel-lite")
    with Searcher([folder], "babel-lite") as s, _Server(create_app(s, "en")) as url:
        _open(browser, url)
        from babelclip.languages import get_language, xlmr_languages

        names, note = _picker(browser)  # XLM-R's CC-100 languages, which multilingual-e5 was trained on
        assert sorted(names) == sorted(f"{get_language(t).name} ({t})" for t in xlmr_languages())
        assert {"Swahili (sw)", "Japanese (ja)", "Simplified Chinese (zh-Hans)"} <= set(names) and "Zulu (zu)" not in names
        assert note == f"babel-lite handles {len(xlmr_languages())} languages"
        assert _query(browser, "a teapot", "en")[0] == "dishes/teapot.png"
        assert _query(browser, "eine Gitarre", "de")[0] == "string/guitar_classical.png"
        assert _query(browser, "バナナ", "ja")[0] == "fruit/banana.png"
        rel, similar = _click_first_image_and_wait(browser)
        assert rel == "fruit/banana.png" and rel not in similar and len(similar) == 9
        assert _thumbnails_loaded(browser)
        # a query longer than babel-lite's 128-token context: truncated with a warning, never an error
        from babelclip.search.query import warn_if_truncated

        assert warn_if_truncated(s.encoder, "a teapot " + "on a table " * 100, "en")
        assert not warn_if_truncated(s.encoder, "a teapot", "en")
        assert s.text("a teapot " + "on a table " * 100, "en", 1)[0].rel == "dishes/teapot.png"
