"""Incremental indexing and search over a folder (tiny colour encoder; no model weights)."""
from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pytest
from _search_encoder import ColourEncoder, write_images

from babelclip.search import IndexNotFoundError, Searcher, build_index, open_index
from babelclip.search.store import FileTable


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "photos"
    write_images(folder, {"red.png": "red", "sub/green.png": "green", "sub/deep/blue.png": "blue"})
    return folder, ColourEncoder()


def test_text_query_in_three_languages_finds_the_named_colour(env):
    folder, enc = env
    rep = build_index(folder, enc)
    assert (rep.files, rep.encoded, rep.scan.new) == (3, 3, 3)
    with Searcher([folder], enc) as s:
        for q, lang, want in [("red", "en", "red.png"), ("ein grünes Bild", "de", "sub/green.png"),
                              ("青い", "ja", "sub/deep/blue.png")]:
            hits = s.text(q, lang, k=3)
            assert hits[0].rel == want
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
            assert hits[0].path == str(folder.resolve() / want)


def test_reindex_moves_renames_deletes_and_changes(env):
    folder, enc = env
    build_index(folder, enc)
    again = build_index(folder, enc)
    assert (again.encoded, again.scan.unchanged, again.scan.new) == (0, 3, 0)  # nothing read by the model
    shutil.move(folder / "red.png", folder / "sub" / "renamed_red.png")  # moved + renamed: same bytes
    (folder / "sub" / "green.png").unlink()  # deleted
    write_images(folder, {"yellow.png": "yellow"})  # new
    rep = build_index(folder, enc)
    assert rep.scan.new == 2 and rep.scan.deleted == 2  # the moved file counts as new + gone
    assert rep.encoded == 1  # only yellow.png reached the model; the moved file kept its vector
    with Searcher([folder], enc) as s:
        assert len(s) == 3
        assert s.text("red", "en", 1)[0].rel == "sub/renamed_red.png"
        assert "sub/green.png" not in {h.rel for h in s.text("green", "en", 10)}
    # a changed file (new bytes, new mtime) is hashed and encoded again
    write_images(folder, {"sub/deep/blue.png": "red"})
    os.utime(folder / "sub/deep/blue.png", ns=(1, 1))
    rep = build_index(folder, enc)
    assert (rep.scan.changed, rep.encoded) == (1, 1)


def test_corrupt_file_is_skipped_counted_and_not_retried(env):
    folder, enc = env
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    rep = build_index(folder, enc)
    assert list(rep.failed) == ["broken.png"] and rep.encoded == 3 and rep.files == 4
    rep2 = build_index(folder, enc)
    assert list(rep2.failed) == ["broken.png"] and enc.images_encoded == 3  # remembered, not decoded again
    with Searcher([folder], enc) as s:
        assert len(s) == 3


def test_interrupted_index_resumes_where_it_stopped(env):
    folder, enc = env
    write_images(folder, {f"more/{i}.png": "red" for i in range(7)})  # 10 images, batches of 2
    enc.fail_after = 4
    with pytest.raises(KeyboardInterrupt):
        build_index(folder, enc, batch_size=2)
    enc2 = ColourEncoder()
    rep = build_index(folder, enc2, batch_size=2)
    assert rep.cached == 4 and rep.encoded == 6 and enc2.images_encoded == 6


def test_index_and_vectors_shared_with_the_eval_cache(env, tmp_path):
    from babelclip.cache_dir import embeddings_dir
    from babelclip.data.images import ImageItem
    from babelclip.eval.cache import EmbeddingCache

    folder, enc = env
    build_index(folder, enc)
    key = ImageItem("x", str(folder / "red.png")).identity(content_hash=True)  # eval's content key
    with EmbeddingCache(embeddings_dir(), enc.fingerprint.key, enc.dim) as cache:
        v = cache.get_images([key])[key]
    np.testing.assert_allclose(v, enc.encode_images([__import__("PIL.Image").Image.open(folder / "red.png")])[0],
                               atol=1e-6)


def test_image_query_leaves_itself_out_and_finds_the_nearest(env):
    folder, enc = env
    write_images(folder, {"red2.png": "red"})
    build_index(folder, enc)
    with Searcher([folder], enc) as s:
        hits = s.image(folder / "red.png", k=2)
        assert hits[0].rel == "red2.png" and "red.png" not in [h.rel for h in hits]
        assert [h.rel for h in s.similar(str(folder), "sub/green.png", 1)] != ["sub/green.png"]


def test_missing_or_empty_index_says_how_to_build_one(env, tmp_path):
    folder, enc = env
    with pytest.raises(IndexNotFoundError, match="babelclip index"):
        Searcher(None, enc)  # nothing indexed at all
    with pytest.raises(IndexNotFoundError, match=f"babelclip index {tmp_path / 'elsewhere'}"):
        Searcher([tmp_path / "elsewhere"], enc)
    empty = tmp_path / "empty"
    write_images(empty, {"a.png": "red"})
    (empty / "a.png").write_bytes(b"broken")
    build_index(empty, enc)
    with pytest.raises(IndexNotFoundError, match="empty.*babelclip index"):
        Searcher([empty], enc)
    build_index(folder, enc)
    with pytest.raises(IndexNotFoundError, match="not indexed with other.*--model other"):
        Searcher([folder], ColourEncoder("other"))


def test_unknown_language_names_the_closest_and_long_query_is_truncated_with_a_warning(env, caplog):
    folder, enc = env
    build_index(folder, enc)
    with Searcher([folder], enc) as s:
        with pytest.raises(KeyError, match=r"closest known: .*de \(German\)"):
            s.text("rot", "deu_Latm", 1)
        with caplog.at_level(logging.WARNING):
            hits = s.text("rot " + "sehr " * 50, "de", 1)
        assert hits[0].rel == "red.png"
        assert "truncated" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            s.text("rot", "de", 1)
        assert "truncated" not in caplog.text


def test_links_pointing_outside_are_not_indexed(env, tmp_path):
    folder, enc = env
    outside = tmp_path / "secret"
    write_images(outside, {"s.png": "yellow"})
    (folder / "link.png").symlink_to(outside / "s.png")
    rep = build_index(folder, enc)
    assert rep.scan.outside == 1 and rep.files == 3
    with FileTable() as t:
        assert "link.png" not in {r.rel for r in t.files()}


def test_default_searches_every_indexed_folder(env, tmp_path):
    folder, enc = env
    other = tmp_path / "other"
    write_images(other, {"y.png": "yellow"})
    build_index(folder, enc)
    build_index(other, enc)
    with open_index(None, enc) as s:
        assert len(s) == 4
        assert s.text("gelb", "de", 1)[0].folder == str(other.resolve())
    with open_index(folder, enc) as s:
        assert len(s) == 3
