"""The standard multilingual retrieval sets, each read from a tiny fixture written in its release's
own on-disk layout (docs/benchmarks.md), fetched through babelclip.fetch when allowed, and
refused at once offline with a message saying what to place where."""
from __future__ import annotations

import gzip
import io
import json
import tarfile
import urllib.request
import zipfile

import numpy as np
import pytest
from _tiny_encoder import TinyEncoder
from PIL import Image

from babelclip.cli import main
from babelclip.data.benchmarks import Inputs, get_benchmark
from babelclip.eval.run import evaluate

KEYS = ["000411001ff7dd4f", "00324c3b5fbbd3b1", "0a4a8a3e1e1c6a01"]


@pytest.fixture
def tiny(monkeypatch):
    enc = TinyEncoder()
    monkeypatch.setattr("babelclip.models.registry.create_model", lambda name, **kw: enc)
    return enc


@pytest.fixture
def no_network(monkeypatch):
    def refuse(url, *a, **k):
        raise AssertionError(f"network access attempted: {url}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def png_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        (folder / n).write_bytes(png_bytes(i))


def lines(path, rows, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(r + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(data) if gz else data)


def xm3600_jsonl(path):
    rows = []
    for i, k in enumerate(KEYS):
        doc = {"image/key": k, "image/locale": "en",
               "en": {"caption": [f"a photo {i}", f"another view {i}"], "caption/tokenized": ["x"]},
               "de": {"caption": [f"ein Foto {i}", f"Bild {i}"]}}
        if i != 1:
            doc["fil"] = {"caption": [f"larawan {i}"]}
        rows.append(json.dumps(doc, ensure_ascii=False))
    lines(path, rows)


def run(name, root, **kw):
    kw.setdefault("download", False)
    return evaluate("tiny", dataset=name, root=root, cache_dir="none", language_workers=1, n_boot=0, quiet=True,
                    **kw)


def by(results):
    return {(r.language, r.protocol): r.counts for r in results}


def test_xm3600_release_layout_both_protocols(tmp_path, tiny, no_network):
    xm3600_jsonl(tmp_path / "captions.jsonl")
    images(tmp_path / "images", [f"{k}.jpg" for k in KEYS])
    res = run("xm3600", tmp_path, out=tmp_path / "out")
    got = by(res)
    assert got[("en", "all-captions")] == {"images": 3, "texts": 6}
    assert got[("en", "first-caption")] == {"images": 3, "texts": 3}
    assert got[("fil", "all-captions")] == {"images": 2, "texts": 2}  # image 1 has no Filipino caption
    meta = json.loads((tmp_path / "out" / "results.json").read_text())["meta"]
    assert meta["benchmark"] == "xm3600" and meta["licence"].startswith("captions: CC BY 4.0")
    assert run("crossmodal3600", tmp_path, languages="de") and {r.language for r in run("xm3600", tmp_path, languages="de")} == {"de"}


def test_xtd10_and_multilingual_mscoco_read_the_adobe_layout(tmp_path, tiny, no_network):
    names = ["COCO_val2014_000000000042.jpg", "COCO_val2014_000000000073.jpg", "COCO_val2014_000000000074.jpg"]
    lines(tmp_path / "XTD10" / "test_image_names.txt", names)
    for code, folder in [("es", "XTD10"), ("en", "XTD10"), ("de", "MIC"), ("jp", "STAIR")]:
        lines(tmp_path / folder / f"test_1kcaptions_{code}.txt", [f"{code} caption {i}" for i in range(3)])
    images(tmp_path / "images", names)
    for name in ("xtd10", "multilingual-mscoco"):
        res = run(name, tmp_path)
        assert by(res) == {(t, "first-caption"): {"images": 3, "texts": 3} for t in ("de", "en", "es", "ja")}
        assert {r.dataset for r in res} == {name}
    with pytest.raises(ValueError, match=r"xtd10 has none of the languages sw; it has 11: de, en, es, fr, it, ja"):
        run("xtd10", tmp_path, languages="sw")
    lines(tmp_path / "MIC" / "test_1kcaptions_de.txt", ["only one line"])
    with pytest.raises(ValueError, match=r"test_1kcaptions_de.txt: 1 lines for the 3 images .*one caption per line"):
        run("xtd10", tmp_path, languages="de")


@pytest.mark.parametrize("name, index", [("xtd200", "test_image_names.txt"), ("flickr30k-200", "filenames.txt")])
def test_nllb_clip_sets_use_flores_file_names(tmp_path, tiny, no_network, name, index):
    names = ["1000092795.jpg", "10002456.jpg", "1000268201.jpg"]
    lines(tmp_path / index, names)
    for code in ("deu_Latn", "zho_Hant", "ace_Arab"):
        lines(tmp_path / f"{code}.txt", [f"{code} {i}" for i in range(3)])
    lines(tmp_path / "eng_captions.txt", ["not a FLORES file"] * 7)  # flickr30k-200's English: not read
    images(tmp_path / "images", names[:2])  # one listed image missing: skipped and counted
    res = run(name, tmp_path, out=tmp_path / "out")
    assert by(res) == {(t, "first-caption"): {"images": 2, "texts": 2} for t in ("ace-Arab", "de", "zh-Hant")}
    meta = json.loads((tmp_path / "out" / "results.json").read_text())["meta"]
    assert list(meta["images_skipped"]) == ["1000268201.jpg"]


def test_multi30k_reads_gzipped_and_plain_files_and_only_listed_images(tmp_path, tiny, no_network):
    names = ["1007129816.jpg", "1009434119.jpg", "101362133.jpg"]
    lines(tmp_path / "data/task1/image_splits/test_2016_flickr.txt", names)
    for code in ("en", "de", "cs"):
        lines(tmp_path / f"data/task1/raw/test_2016_flickr.{code}.gz", [f"{code} {i}" for i in range(3)], gz=True)
    lines(tmp_path / "data/task1/raw/test_2016_flickr.fr", [f"fr {i}" for i in range(3)])  # unzipped copy
    images(tmp_path / "flickr30k-images", [*names, "999999999.jpg"])  # all of Flickr30k: one more
    res = run("multi30k", tmp_path)
    assert by(res) == {(t, "first-caption"): {"images": 3, "texts": 3} for t in ("cs", "de", "en", "fr")}
    assert tiny.image_forwards == 3  # the unlisted image is never read


def test_missing_files_offline_say_what_to_place_where(tmp_path, tiny, no_network, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError) as err:
        run("xm3600", tmp_path / "xm", download=True)
    msg = str(err.value)
    assert "HF_HUB_OFFLINE" in msg and str(tmp_path / "xm") in msg and "captions.jsonl" in msg
    assert "crossmodal-3600/web-data/captions.zip" in msg
    lines(tmp_path / "m30k/data/task1/image_splits/test_2016_flickr.txt", ["1.jpg"])
    lines(tmp_path / "m30k/data/task1/raw/test_2016_flickr.en", ["x"])
    assert main(["-q", "eval", "--dataset", "multi30k", "--root", str(tmp_path / "m30k"), "--cache-dir", "none",
                 "--out", str(tmp_path / "o"), "--no-download"]) == 1
    err = capsys.readouterr().err
    assert "flickr30k-images" in err and "DenotationGraph" in err
    bad = tmp_path / "bad"
    lines(bad / "captions.jsonl", ['{"image/key": "k", "en": {"caption": ["x"]}}', '{"en": {"caption": ["y"]}}'])
    with pytest.raises(ValueError, match=r"captions.jsonl:2: no 'image/key'; expected the layout captions.jsonl"):
        run("xm3600", bad)


def test_download_fetches_and_unpacks_the_release(tmp_path, tiny, monkeypatch):
    """captions.zip and images.tgz as released, served from file:// URLs, land in the layout."""
    import babelclip.data.benchmarks.xm3600 as xm

    src = tmp_path / "src"
    xm3600_jsonl(src / "captions.jsonl")
    with zipfile.ZipFile(src / "captions.zip", "w") as zf:
        zf.write(src / "captions.jsonl", "captions.jsonl")
    with tarfile.open(src / "images.tgz", "w:gz") as tf:
        for i, k in enumerate(KEYS):
            data = png_bytes(i)
            info = tarfile.TarInfo(f"{k}.jpg")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(xm, "CAPTIONS_URL", (src / "captions.zip").as_uri())
    monkeypatch.setattr(xm, "IMAGES_URL", (src / "images.tgz").as_uri())
    root = tmp_path / "data"
    res = run("xm3600", root, download=True, languages="de")
    assert by(res)[("de", "all-captions")] == {"images": 3, "texts": 6}
    assert (root / "captions.jsonl").is_file() and len(list((root / "images").glob("*.jpg"))) == 3
    assert not list(root.glob(".*.part"))  # archives removed after unpacking
    assert get_benchmark("xm3600").prepare(Inputs(root=root, download=False)).languages() == ["en", "de", "fil"]


def test_every_benchmark_leaves_as_clip_benchmark_and_mteb_json_and_one_report(tmp_path, tiny, no_network):
    from babelclip.eval.clip_benchmark_compat import read_clip_benchmark
    from babelclip.eval.report import make_report

    xm = tmp_path / "xm"
    xm3600_jsonl(xm / "captions.jsonl")
    images(xm / "images", [f"{k}.jpg" for k in KEYS])
    nl = tmp_path / "nl"
    lines(nl / "test_image_names.txt", ["a.jpg", "b.jpg"])
    lines(nl / "deu_Latn.txt", ["ein Hund", "eine Katze"])
    images(nl / "images", ["a.jpg", "b.jpg"])
    res = run("xm3600", xm, out=tmp_path / "o1", formats="clip-benchmark,mteb")
    res += run("xtd200", nl, out=tmp_path / "o2", formats=["clip-benchmark", "mteb"])
    cb = {(d["dataset"], d["language"]) for d in
          (json.loads(p.read_text()) for p in [*(tmp_path / "o1").glob("clip_benchmark/*.json"),
                                              *(tmp_path / "o2").glob("clip_benchmark/*.json")])}
    assert {("crossmodal3600", "fil"), ("crossmodal3600", "en"), ("xtd200", "deu_Latn")} <= cb
    assert {r.language for r in read_clip_benchmark(tmp_path / "o2" / "clip_benchmark")} == {"de"}
    mteb = sorted((tmp_path / "o1" / "mteb").rglob("*.json"))
    assert [p.name for p in mteb] == ["xm3600.retrieval.all-captions.json", "xm3600.retrieval.first-caption.json"]
    doc = json.loads(mteb[0].read_text())
    rows = {row["hf_subset"]: row for row in doc["scores"]["test"]}
    assert set(rows) == {"en", "de", "fil"} and rows["de"]["languages"] == ["deu-Latn"]
    assert rows["fil"]["main_score"] == rows["fil"]["t2i_r@1"]
    with pytest.raises(ValueError, match="unknown output format"):
        run("xm3600", xm, formats="csv2")
    make_report(res, tmp_path / "report", n_boot=20)  # generic over benchmarks: no dataset is special there
    html = (tmp_path / "report" / "index.html").read_text()
    assert "xm3600" in html and "xtd200" in html
