"""The web API: JSON search, and thumbnails only of indexed files inside the indexed folders."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("fastapi")
from _search_encoder import ColourEncoder, write_images
from fastapi.testclient import TestClient

from babelclip.search import Searcher, build_index
from babelclip.search.server import create_app


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "photos"
    write_images(folder, {"red.png": "red", "sub/green.png": "green", "blue.png": "blue"})
    outside = tmp_path / "secret"
    write_images(outside, {"s.png": "yellow"})
    (tmp_path / "secret.txt").write_text("top secret")
    enc = ColourEncoder()
    build_index(folder, enc)
    s = Searcher([folder], enc)
    yield TestClient(create_app(s, "de")), folder, outside
    s.close()


def test_search_and_similar_json(app_env):
    client, _, _ = app_env
    r = client.get("/api/search", params={"q": "grün", "lang": "de", "k": 2}).json()
    assert r["lang"] == "de" and r["hits"][0]["rel"] == "sub/green.png" and len(r["hits"]) == 2
    thumb = client.get(r["hits"][0]["thumb"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png" and thumb.content[:4] == b"\x89PNG"
    sim = client.get("/api/similar", params={"folder": 0, "rel": "red.png", "k": 5}).json()
    assert "red.png" not in [h["rel"] for h in sim["hits"]] and len(sim["hits"]) == 2
    bad = client.get("/api/search", params={"q": "rot", "lang": "deutsch-xx"})
    assert bad.status_code == 400 and "closest known" in bad.json()["detail"]
    langs = client.get("/api/languages").json()
    assert langs["default"] == "de" and langs["declared"] is True  # ColourEncoder knows three languages
    assert langs["languages"] == [{"tag": "en", "name": "English"}, {"tag": "de", "name": "German"},
                                  {"tag": "ja", "name": "Japanese"}]
    assert "<select id=\"lang\"" in client.get("/").text


@pytest.mark.parametrize("url", [
    "/thumb/0/../secret.txt",
    "/thumb/0/..%2Fsecret.txt",
    "/thumb/0/%2e%2e/secret.txt",
    "/thumb/0/%2e%2e%2fsecret%2fs.png",
    "/thumb/0/sub/../../secret/s.png",
    "/thumb/0/sub%2F..%2F..%2Fsecret%2Fs.png",
    "/thumb/0//etc/passwd",
    "/thumb/0/%2Fetc%2Fpasswd",
    "/thumb/0/....//secret.txt",
    "/thumb/1/red.png",
    "/thumb/-1/red.png",
    "/thumb/0/not-indexed.png",
])
def test_no_path_traversal(app_env, url):
    client, _, _ = app_env
    r = client.get(url)
    assert r.status_code == 404 and b"top secret" not in r.content


def test_link_swapped_in_after_indexing_is_refused(app_env):
    client, folder, outside = app_env
    assert client.get("/thumb/0/blue.png").status_code == 200
    (folder / "blue.png").unlink()
    os.symlink(outside / "s.png", folder / "blue.png")  # same indexed name, now pointing out
    assert client.get("/thumb/0/blue.png").status_code == 404
    sim = client.get("/api/similar", params={"folder": 0, "rel": "blue.png"})
    assert sim.status_code == 404
    (folder / "extra.png").symlink_to(outside / "s.png")
    assert client.get("/thumb/0/extra.png").status_code == 404


def test_a_model_that_declares_no_languages_offers_all_and_says_so(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from babelclip.languages import all_languages

    class Undeclared(ColourEncoder):
        languages = None

    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path / "cache"))
    write_images(tmp_path / "p", {"red.png": "red"})
    enc = Undeclared()
    build_index(tmp_path / "p", enc)
    with Searcher([tmp_path / "p"], enc) as s:
        langs = TestClient(create_app(s, "de")).get("/api/languages").json()
    assert langs["declared"] is False and len(langs["languages"]) == len(all_languages())
