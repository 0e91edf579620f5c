"""Image sources: folders, ImageNet val layouts, webdataset shards, Tux Paint; broken files skipped."""
from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from _tiny_encoder import TinyEncoder
from PIL import Image

from babelclip.data import tuxpaint
from babelclip.data.imagenet import imagenet_wnids
from babelclip.data.images import image_folder, imagenet_val, load_image, webdataset_shards
from babelclip.eval.cache import EmbeddingCache
from babelclip.eval.encode import encode_images

STAMPS = Path("/usr/share/tuxpaint/stamps")


def _img(path: Path, color=(200, 30, 30), size=(12, 10), fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path


def test_folder_skips_corrupt_truncated_and_non_images(tmp_path):
    _img(tmp_path / "a.png")
    _img(tmp_path / "sub" / "b.jpg", (0, 90, 10))
    good = _img(tmp_path / "sub" / "deep" / "c.png", (5, 5, 250))
    (tmp_path / "sub" / "trunc.png").write_bytes(good.read_bytes()[:40])  # truncated PNG
    (tmp_path / "notanimage.jpg").write_text("hello, I am text")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "readme.txt").write_text("ignored: not an image extension")
    src = image_folder(tmp_path)
    assert [it.id for it in src.items] == ["a.png", "empty.png", "notanimage.jpg", "sub/b.jpg", "sub/deep/c.png", "sub/trunc.png"]
    enc = TinyEncoder()
    with EmbeddingCache(tmp_path / "cache", enc.fingerprint.key, enc.dim) as cache:
        emb = encode_images(enc, src, cache, batch_size=2)
        assert emb.ids == ["a.png", "sub/b.jpg", "sub/deep/c.png"]
        assert set(emb.failed) == {"empty.png", "notanimage.jpg", "sub/trunc.png"}
        assert enc.image_forwards == 3
        np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, rtol=1e-6)
        # a warm run neither encodes nor re-decodes anything, and still reports the failures
        emb2 = encode_images(enc, src, cache, batch_size=2)
        assert enc.image_forwards == 3 and set(emb2.failed) == set(emb.failed)
        assert np.array_equal(emb.vectors, emb2.vectors)


def test_imagenet_val_subfolders_and_flat_with_ground_truth(tmp_path):
    wnids = imagenet_wnids()
    a, b = wnids[0], wnids[417]
    _img(tmp_path / "tree" / a / "x1.JPEG")
    _img(tmp_path / "tree" / b / "x2.JPEG")
    src = imagenet_val(tmp_path / "tree")
    assert [(it.id, it.label) for it in src.items] == [(f"{a}/x1.JPEG", 0), (f"{b}/x2.JPEG", 417)]
    assert src.classes[417] == b

    flat = tmp_path / "flat"
    _img(flat / "ILSVRC2012_val_00000001.JPEG")
    _img(flat / "ILSVRC2012_val_00000002.JPEG")
    _img(flat / "ILSVRC2012_val_00000003.JPEG")
    (tmp_path / "LOC_val_solution.csv").write_text(
        f"ImageId,PredictionString\nILSVRC2012_val_00000001,{b} 1 2 3 4\nILSVRC2012_val_00000002,{a} 5 6 7 8 {a} 1 1 2 2\n")
    src = imagenet_val(flat, tmp_path / "LOC_val_solution.csv")
    assert [(it.id, it.label) for it in src.items] == [("ILSVRC2012_val_00000001.JPEG", 417), ("ILSVRC2012_val_00000002.JPEG", 0)]
    assert src.skipped == {"ILSVRC2012_val_00000003.JPEG": "no ground-truth label"}

    (tmp_path / "list.txt").write_text(f"ILSVRC2012_val_00000003.JPEG {b}\n")
    src = imagenet_val(flat, tmp_path / "list.txt")
    assert [(it.id, it.label) for it in src.items] == [("ILSVRC2012_val_00000003.JPEG", 417)]

    lone = tmp_path / "elsewhere" / "flat2"
    _img(lone / "z.jpg")
    with pytest.raises(ValueError, match="no ground-truth file"):
        imagenet_val(lone)


def test_webdataset_shard_offsets_labels_and_pixels(tmp_path):
    shard = tmp_path / "shard-000.tar"
    originals = {}
    with tarfile.open(shard, "w") as tf:
        for key, color, cls in [("s/0001", (255, 0, 0), 3), ("s/0002", (0, 255, 0), 1)]:
            buf = io.BytesIO()
            Image.new("RGB", (9, 7), color).save(buf, format="PNG")
            originals[key] = color
            for ext, data in [("png", buf.getvalue()), ("cls", str(cls).encode())]:
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("s/0003.json")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"{}"))
    src = webdataset_shards([shard])
    assert [(it.id, it.label) for it in src.items] == [("shard-000.tar/s/0001", 3), ("shard-000.tar/s/0002", 1)]
    assert src.skipped == {"shard-000.tar/s/0003": "no image member"}
    assert src.classes == ("0", "1", "2", "3")
    for it in src.items:
        im = load_image(it)
        assert im.size == (9, 7) and im.getpixel((4, 3)) == originals[it.id.split("/", 1)[1]]
    with pytest.raises(ValueError, match="not an uncompressed tar"):
        bad = tmp_path / "bad.tar"
        bad.write_bytes(b"not a tar at all" * 100)
        webdataset_shards([bad])


def test_flatten_rgba_composites_crops_and_pads():
    im = Image.new("RGBA", (40, 30), (0, 0, 0, 0))  # fully transparent black
    im.paste(Image.new("RGBA", (10, 20), (0, 0, 255, 255)), (5, 5))  # opaque blue 10x20 at (5,5)
    out = tuxpaint.flatten_rgba(im)
    assert out.mode == "RGB" and out.size == (20, 20)  # cropped to 10x20, padded to square
    assert out.getpixel((0, 0)) == (255, 255, 255)  # padding is white, not black
    assert out.getpixel((10, 10)) == (0, 0, 255)


@pytest.mark.skipif(not STAMPS.is_dir(), reason="Debian tuxpaint-stamps-default not installed")
def test_real_tuxpaint_stamps(tmp_path):
    picks = ["symbols/money/us/coins/025quarter", "animals/mammals/equines/zebra", "animals/mammals/rodents/mouse",
             "food/fruit/lemon"]
    picks = [p for p in picks if (STAMPS / f"{p}.txt").exists()]
    assert len(picks) >= 3, "expected stamps missing from the Debian package"
    for p in picks:
        for f in (STAMPS / p).parent.glob((STAMPS / p).name + ".*"):
            if f.suffix in (".png", ".txt", ".svg"):
                (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, tmp_path / p.rsplit("/", 1)[0] / f.name)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "vector.svg").write_text(
        "<svg xmlns='http://www.w3.org/2000/svg' width='20' height='10'><rect width='20' height='10' fill='red'/></svg>")
    (tmp_path / "x" / "vector.txt").write_text("A vector stamp.\nde.utf8=Ein Vektorbild.\n")
    (tmp_path / "x" / "orphan.txt").write_text("No image.\n")
    stamps, skipped = tuxpaint.find_stamps(tmp_path)
    ids = [s.id for s in stamps]
    assert skipped["x/orphan"] == "no image file"
    if tuxpaint.svg_supported():  # rendered with cairosvg, like every SVG-only Debian stamp
        assert sorted(ids) == sorted([*picks, "x/vector"])
    else:
        assert sorted(ids) == sorted(picks) and "SVG only" in skipped["x/vector"]
    quarter = next(s for s in stamps if s.id.endswith("025quarter"))
    assert quarter.texts["en"] == "A US 25 cent piece ($.25) called a quarter."
    assert quarter.texts["de"].startswith("Eine 25-Cent-Münze")
    assert quarter.texts["ja"] == "アメリカの２５セント（クォーター）"
    src = tuxpaint.tuxpaint_images(stamps, skipped)
    ims = [load_image(it, src.loader) for it in src.items]
    assert all(im.mode == "RGB" and im.width == im.height for im in ims)
    if tuxpaint.svg_supported():  # the red rectangle, on the same white square as PNG cut-outs
        vec = ims[[s.id for s in stamps].index("x/vector")]
        r, g, b = vec.getpixel((vec.width // 2, vec.height // 2))
        assert r > 200 and g < 60 and b < 60
    mapping = tuxpaint.imagenet_classes_of(stamps)
    if Path(tuxpaint.WORDNET_INDEX).exists():
        assert mapping.get("animals/mammals/equines/zebra") == "n02391049"
        assert mapping.get("food/fruit/lemon") == "n07749582"
        # the animal: ImageNet's only "mouse" is the computer mouse, which a lemma match would give
        assert "animals/mammals/rodents/mouse" not in mapping
        assert not any(k.endswith("025quarter") for k in mapping)


def test_stamp_name_rule():
    assert tuxpaint.stamp_name("animals/mammals/zebra2") == "zebra"
    assert tuxpaint.stamp_name("household/trash_can") == "trash can"
    assert tuxpaint.stamp_name("x/Washing-machine") == "washing machine"
