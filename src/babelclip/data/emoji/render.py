"""Emoji pictures: Noto Color Emoji (Debian ``fonts-noto-color-emoji``) drawn with Pillow.

The font holds one colour bitmap strike (CBDT, 109 ppem, 136×128 pixels per glyph), so drawing at
size 109 with ``embedded_color=True`` decodes that bitmap: no scaling, no hinting, the same
pixels on every machine with the same font file. Sequences (ZWJ, ``❤‍🔥``) are ligatures of the
font's GSUB table, shaped by libraqm (Pillow's RAQM layout); without raqm a sequence would come
out as several glyphs and is refused (:func:`render_emoji` checks for exactly one glyph).

Each emoji is drawn on a transparent 136×136 canvas at the origin (the glyph's own margins
kept), composited on white and saved as an RGB PNG. The pictures are rendered once into a
folder of the cache, named by the font's SHA-256 and :data:`RENDER_VERSION`
(``~/.cache/babelclip/emoji/<sha16>-r1/<emoji id>.png``), written to a temporary folder and
renamed when complete, so a killed run leaves nothing half-written and a changed font or
renderer gets a new folder (and so new embedding-cache keys, which hold path and mtime).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ...cache_dir import emoji_dir

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

FONT_PATH = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
FONT_LICENCE = "Apache-2.0 (Noto Color Emoji images), OFL-1.1 (font)"
FONT_SIZE = 109  # the font's only bitmap strike
CANVAS = 136  # one glyph's advance; the canvas is square
RENDER_VERSION = "r1"  # bump when the drawing changes: a new folder, new cache keys
MANIFEST = "manifest.json"


def font_path(path: str | os.PathLike | None = None) -> Path:
    """The font file: ``path``, ``$BABELCLIP_EMOJI_FONT``, else Debian's."""
    p = Path(path or os.environ.get("BABELCLIP_EMOJI_FONT", FONT_PATH))
    if not p.is_file():
        raise FileNotFoundError(
            f"emoji font not found: {p}; install Debian's fonts-noto-color-emoji "
            "(apt-get install fonts-noto-color-emoji) or pass the path of NotoColorEmoji.ttf "
            "(or set BABELCLIP_EMOJI_FONT)"
        )
    return p


def _font(path: str):
    from PIL import ImageFont, features

    if not features.check("raqm"):
        raise RuntimeError("emoji sequences need Pillow built with libraqm (features.check('raqm') is False)")
    return ImageFont.truetype(path, FONT_SIZE, layout_engine=ImageFont.Layout.RAQM)


def render_emoji(text: str, font) -> Image.Image | None:
    """``text`` drawn as one colour glyph on white (RGB, CANVAS×CANVAS), or None when the font has
    no single glyph for it (nothing drawn, or several glyphs side by side)."""
    import numpy as np
    from PIL import Image, ImageDraw

    left, _, right, _ = font.getbbox(text, mode="RGBA")
    if right - left > CANVAS:  # more than one advance: not a ligature of the font
        return None
    im = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    ImageDraw.Draw(im).text((0, 0), text, font=font, embedded_color=True)
    if not np.asarray(im.getchannel("A")).any():  # no glyph: nothing drawn
        return None
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, im).convert("RGB")


def font_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render_folder(font: str | os.PathLike | None = None, cache: str | os.PathLike | None = None) -> Path:
    """Where the pictures of this font and renderer live (not created)."""
    p = font_path(font)
    return (Path(cache) / "emoji" if cache else emoji_dir()) / f"{font_sha256(p)[:16]}-{RENDER_VERSION}"


def render_all(
    texts: dict[str, str], font: str | os.PathLike | None = None, cache: str | os.PathLike | None = None
) -> tuple[Path, dict[str, str]]:
    """Render ``{emoji id: characters}`` once into the cache; ``(folder, {id: why not rendered})``.

    A complete folder whose manifest lists the same ids is reused as it is (ids it lacks are
    rendered into a new folder that replaces it).
    """
    fp = font_path(font)
    folder = render_folder(fp, cache)
    manifest = folder / MANIFEST
    if manifest.exists():
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        if set(texts) <= set(doc["rendered"]) | set(doc["failed"]):
            return folder, {k: v for k, v in doc["failed"].items() if k in texts}
    f = _font(str(fp))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    rendered, failed = [], {}
    try:
        for eid, text in sorted(texts.items()):
            im = render_emoji(text, f)
            if im is None:
                failed[eid] = "the font has no single colour glyph for it"
                continue
            im.save(tmp / f"{eid}.png", optimize=False, compress_level=6)
            rendered.append(eid)
        doc = {"font": str(fp), "font_sha256": font_sha256(fp), "render": RENDER_VERSION, "size": FONT_SIZE,
               "canvas": CANVAS, "rendered": rendered, "failed": failed}
        (tmp / MANIFEST).write_text(json.dumps(doc, ensure_ascii=False, indent=0), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("rendered %d emoji into %s (%d without a colour glyph)", len(rendered), folder, len(failed))
    return folder, failed


def rendered_ids(folder: Path, ids: Iterable[str]) -> list[str]:
    """Those of ``ids`` with a picture in ``folder``, in the given order."""
    return [i for i in ids if (folder / f"{i}.png").is_file()]
