"""Tux Paint stamps as an offline multilingual benchmark (Debian ``tuxpaint-stamps-default``).

Each stamp is ``NAME.png`` (or ``NAME.svg``) with ``NAME.txt``: an English description on the
first line, then ``LOCALE.utf8=translation`` lines written by Tux Paint's human translators
(~75 locales). ``NAME_desc*.ogg`` sound files and ``NAME.dat`` flags are ignored.

Two tasks come out of it:

* **retrieval** — a caption set with one description per stamp per language (stamps without a
  translation in a language are left out of that language);
* **classification** — only where the class is honest: a stamp gets an ImageNet-1k class when
  its file name (digits dropped, ``-``/``_`` as spaces, e.g. ``zebra2`` → ``zebra``) is a
  WordNet 3.0 noun whose *most frequent* sense is an ImageNet-1k synset. Requiring the first
  sense rejects names whose everyday meaning is another thing (``kite``: the toy, not the bird
  class; ``mouse``: the animal, not the computer mouse class; at the price of some true
  matches: ``banana``'s first sense is the plant). With Debian's WordNet files this maps 58 of
  the 785 PNG stamps to 49 classes (``python -m babelclip.data.tuxpaint`` prints the list).

Images: PNGs are RGBA cut-outs. :func:`flatten_rgba` composites them on white, crops to the
alpha bounding box and pads to a square, here in the data pipeline rather than in one model's
preprocessing, so every model is scored on the same pixels. SVG-only stamps (~165) are used
when ``cairosvg`` is installed and otherwise skipped, counted and reported.

Locales map to BCP-47 through the language table's Tux Paint column (``zh_TW`` →
``zh-Hant``, ``sr@latin`` → ``sr-Latn``); English regional copies (``en_GB``, ``en_AU``) repeat
the first line and are dropped; locales the table does not know are skipped and logged.

**Mis-encoded descriptions** (:func:`check_text`). Some translations were committed in a legacy
encoding and decoded as Latin-1: every Tamil (``ta``) description of the Debian package is
TSCII bytes shown as Latin-1 (``ஒரு கை`` "a hand" reads ``´Õ ¨¸.``), and 19 Latvian ones carry
a stray C1 control character (``Pē\x93rļu``). A description is judged mis-encoded when it

* contains a C1 control character (U+0080–U+009F: never text, always a wrong decoding);
* belongs to a language whose script is not Latin, yet is made of Latin-1 characters only
  (U+0000–U+00FF) with at least one beyond ASCII — no letter of the expected script at all;
* or is changed by ``ftfy.fix_encoding`` (Speer 2019, ftfy: UTF-8 read as cp1252/Latin-1 and
  similar, e.g. ``cafÃ©``), when ftfy is installed.

It is *repaired* when ``ftfy.fix_encoding`` turns it into text that ftfy no longer finds bad,
without C1 characters, written in the language's script; the repaired text is used and the
original kept in :attr:`Stamp.repaired`; failing that, when deleting its C1 controls does (a
stray control that follows no UTF-8 lead byte read as Latin-1). Otherwise it is *dropped* for
that language and the reason kept in :attr:`Stamp.dropped`; :func:`text_problems` counts both
per language, and :func:`find_stamps` logs them. In the Debian package the Tamil texts are not
repairable (TSCII is not a codec ftfy or Python knows); the Latvian ones are, by deleting the
``\x93`` (ftfy would map it to a cp1252 quote, ``Pē“rļu``, not what the translator wrote).
ftfy's ``is_bad`` alone is not a reason to drop: it flags valid text too (the Romanian ``”Întoarcerea interzisă”.``, whose quotes follow Romanian usage).
"""
from __future__ import annotations

import io
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..languages import UnknownLanguageError, get_language

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from .images import ImageSource

log = logging.getLogger(__name__)

DEFAULT_ROOT = "/usr/share/tuxpaint/stamps"
WORDNET_INDEX = "/usr/share/wordnet/index.noun"
_LINE = re.compile(r"^\s*([A-Za-z]{2,3}(?:_[A-Za-z]{2})?(?:@[A-Za-z]+)?)\.utf8\s*=\s*(.*?)\s*$")


@dataclass
class Stamp:
    id: str  # path of the stamp without extension, relative to the stamps root
    image: str  # the .png (preferred) or .svg file
    category: str  # the folder, e.g. "animals/birds"
    texts: dict[str, str] = field(default_factory=dict)  # BCP-47 tag -> description
    dropped: dict[str, str] = field(default_factory=dict)  # tag -> why its description was left out
    repaired: dict[str, str] = field(default_factory=dict)  # tag -> the original text ftfy repaired


def parse_description(path: str | os.PathLike) -> tuple[str, dict[str, str]]:
    """``(english, {locale: text})`` from a stamp's ``.txt`` file."""
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    english = lines[0].strip() if lines else ""
    out: dict[str, str] = {}
    for line in lines[1:]:
        if (m := _LINE.match(line)) and m.group(2):
            out.setdefault(m.group(1), m.group(2))
    return english, out


def _locale_tag(locale: str, unknown: set[str]) -> str | None:
    if locale.lower().startswith("en_"):
        return None  # English regional copies repeat the first line
    try:
        return get_language(locale).tag
    except UnknownLanguageError:
        unknown.add(locale)
        return None


_C1 = re.compile("[\x80-\x9f]")
_C1_AFTER_LEAD = re.compile("[\xc2-\xf4][\x80-\x9f]")


def _expected_script(tag: str) -> str:
    return get_language(tag).script or "Latn"


def _in_script(text: str, script: str) -> bool:
    """Every script-bearing character of ``text`` is of ``script`` (none at all also passes)."""
    from .scripts_unicode import label_script

    return label_script(text, script) in (script, "none")


def _encoding_problem(text: str, script: str) -> str:
    """Why ``text`` looks mis-encoded for a language written in ``script`` ("" if it does not)."""
    if _C1.search(text):
        return "C1 control characters (decoded in the wrong encoding)"
    if script != "Latn" and max(map(ord, text)) < 0x100 and any(ord(c) > 0x7F for c in text):
        return f"Latin-1 characters only, no {script} letter (a legacy encoding read as Latin-1)"
    try:
        import ftfy
    except ImportError:
        return ""
    if ftfy.fix_encoding(text) != text:
        return "mis-decoded text that ftfy.fix_encoding changes"
    return ""


def check_text(text: str, tag: str) -> tuple[str | None, str]:
    """``(text to use, note)`` for a description in language ``tag`` (see the module docstring).

    ``(text, "")``: fine as it is; ``(repaired, "repaired: <why>")``: ftfy recovered text of the
    language's script; ``(None, "mis-encoded: <why>")``: left out.
    """
    if not text:
        return text, ""
    script = _expected_script(tag)
    problem = _encoding_problem(text, script)
    if not problem:
        return text, ""
    try:
        import ftfy
        from ftfy.badness import is_bad
    except ImportError:
        return None, f"mis-encoded: {problem}"
    def sound(candidate: str) -> bool:
        return (candidate != text and not _C1.search(candidate) and not is_bad(candidate)
                and not _encoding_problem(candidate, script) and _in_script(candidate, script))

    fixed = ftfy.fix_encoding(text)
    if sound(fixed):
        return fixed, f"repaired: {problem}"
    # A stray C1 control inside otherwise valid text (Latvian "Pē\x93rļu"): ftfy reads it as a
    # cp1252 quote, wrongly. Delete it, unless it follows a UTF-8 lead byte read as Latin-1
    # (U+00C2-U+00F4), the mark of real mojibake.
    if not _C1_AFTER_LEAD.search(text) and sound(stripped := _C1.sub("", text)):
        return stripped, f"repaired: {problem}; stray control characters removed"
    return None, f"mis-encoded: {problem}"


def text_problems(stamps: list[Stamp]) -> dict[str, dict[str, int]]:
    """``{tag: {"dropped": n, "repaired": m}}`` over the stamps, for languages with any."""
    out: dict[str, dict[str, int]] = {}
    for s in stamps:
        for kind, per_tag in (("dropped", s.dropped), ("repaired", s.repaired)):
            for tag in per_tag:
                out.setdefault(tag, {"dropped": 0, "repaired": 0})[kind] += 1
    return dict(sorted(out.items()))


def svg_supported() -> bool:
    try:
        import cairosvg  # noqa: F401
    except Exception:  # ImportError, or OSError when libcairo is missing
        return False
    return True


def find_stamps(root: str | os.PathLike = DEFAULT_ROOT) -> tuple[list[Stamp], dict[str, str]]:
    """Every stamp under ``root`` with its descriptions, and ``{id: why}`` for those left out."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"no Tux Paint stamps at {str(root)!r}; install them with "
            "'apt-get install --no-install-recommends tuxpaint-stamps-default' or pass the folder"
        )
    use_svg = svg_supported()
    stamps: list[Stamp] = []
    skipped: dict[str, str] = {}
    unknown: set[str] = set()
    for txt in sorted(root.rglob("*.txt")):
        sid = txt.relative_to(root).with_suffix("").as_posix()
        png, svg = txt.with_suffix(".png"), txt.with_suffix(".svg")
        if png.exists():
            image = png
        elif svg.exists():
            if not use_svg:
                skipped[sid] = "SVG only (pip install cairosvg to include it)"
                continue
            image = svg
        else:
            skipped[sid] = "no image file"
            continue
        english, locales = parse_description(txt)
        stamp = Stamp(sid, str(image), txt.parent.relative_to(root).as_posix())
        for tag, raw in [("en", english)] + [(_locale_tag(loc, unknown), t) for loc, t in locales.items()]:
            if not tag or not raw or tag in stamp.texts:
                continue
            text, note = check_text(raw, tag)
            if text is None:
                stamp.dropped.setdefault(tag, f"{note}: {raw!r}")
                continue
            if note:
                stamp.repaired[tag] = raw
            stamp.texts[tag] = text
            stamp.dropped.pop(tag, None)  # another locale of the same language was fine
        stamps.append(stamp)
    if unknown:
        log.info("Tux Paint locales not in the language table, skipped: %s", ", ".join(sorted(unknown)))
    problems = text_problems(stamps)
    if problems:
        log.warning(
            "Tux Paint descriptions: %d dropped as mis-encoded, %d repaired (%s); see Stamp.dropped",
            sum(p["dropped"] for p in problems.values()), sum(p["repaired"] for p in problems.values()),
            ", ".join(f"{t}: {p['dropped']} dropped/{p['repaired']} repaired" for t, p in problems.items()))
    if skipped:
        log.warning("%d Tux Paint stamps skipped (%s)", len(skipped), "; ".join(sorted(set(skipped.values()))))
    return stamps, skipped


def flatten_rgba(im: Image.Image) -> Image.Image:
    """Composite on white, crop to the alpha bounding box, pad to a centred white square (RGB)."""
    from PIL import Image

    if im.mode != "RGBA":
        im = im.convert("RGBA") if "transparency" in im.info or im.mode in ("LA", "PA", "P") else im
    if im.mode == "RGBA":
        bbox = im.getchannel("A").getbbox()
        if bbox:
            im = im.crop(bbox)
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im).convert("RGB")
    else:
        im = im.convert("RGB")
    side = max(im.size)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    return square


def load_stamp_image(path: str, data: bytes) -> Image.Image:
    """Decode a stamp (PNG, or SVG through cairosvg) and flatten it; see :func:`flatten_rgba`."""
    from PIL import Image

    if path.lower().endswith(".svg"):
        import cairosvg

        data = cairosvg.svg2png(bytestring=data, output_width=512)
    im = Image.open(io.BytesIO(data))
    im.load()
    return flatten_rgba(im)


def tuxpaint_images(stamps: list[Stamp], skipped: dict[str, str] | None = None) -> ImageSource:
    """The stamps as an :class:`~babelclip.data.images.ImageSource` (ids = stamp ids)."""
    from .images import ImageItem, ImageSource

    items = [ImageItem(s.id, s.image) for s in stamps]
    return ImageSource("tuxpaint", items, (), dict(skipped or {}), loader=load_stamp_image)


def tuxpaint_captions(stamps: list[Stamp]):
    """A :class:`~babelclip.data.captions.CaptionSet`: per language, one description per stamp.

    Stamps without a description in a language get an empty caption list there; retrieval
    drops them for that language.
    """
    from .captions import CaptionSet

    tags = sorted({t for s in stamps for t in s.texts})
    captions = {t: [[s.texts[t]] if t in s.texts else [] for s in stamps] for t in tags}
    return CaptionSet("tuxpaint", [s.id for s in stamps], captions)


def _first_noun_senses(index_path: str) -> dict[str, str]:
    """WordNet 3.0 noun lemma → wnid of its most frequent sense (first offset in index.noun)."""
    out: dict[str, str] = {}
    with open(index_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(" "):
                continue  # licence header
            parts = line.split()
            n_synsets, n_ptrs = int(parts[2]), int(parts[3])
            offsets = parts[4 + n_ptrs + 2 :]
            if len(offsets) == n_synsets and offsets:
                out[parts[0]] = "n" + offsets[0]
    return out


def stamp_name(stamp_id: str) -> str:
    """``animals/mammals/zebra2`` → ``zebra``; ``household/trash_can`` → ``trash can``."""
    stem = stamp_id.rsplit("/", 1)[-1]
    return re.sub(r"\s+", " ", re.sub(r"\d+", "", stem).replace("-", " ").replace("_", " ")).strip().lower()


def imagenet_classes_of(stamps: list[Stamp], wordnet_index: str = WORDNET_INDEX) -> dict[str, str]:
    """``{stamp id: ImageNet-1k wnid}`` under the first-sense rule of the module docstring.

    Empty (with a warning) when the WordNet index file is not installed (Debian ``wordnet-base``).
    """
    from .imagenet import imagenet_wnids

    if not os.path.exists(wordnet_index):
        log.warning("WordNet index %s not found (apt-get install wordnet-base): no Tux Paint classification", wordnet_index)
        return {}
    first = _first_noun_senses(wordnet_index)
    in1k = set(imagenet_wnids())
    out = {}
    for s in stamps:
        wnid = first.get(stamp_name(s.id).replace(" ", "_"))
        if wnid in in1k:
            out[s.id] = wnid
    return out


if __name__ == "__main__":  # pragma: no cover - a listing for humans
    st, _ = find_stamps()
    mapping = imagenet_classes_of(st)
    for sid, w in sorted(mapping.items()):
        print(w, sid)
    print(f"{len(mapping)} stamps, {len(set(mapping.values()))} classes")
