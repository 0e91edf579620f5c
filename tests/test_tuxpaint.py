"""Tux Paint descriptions: mis-encoded translations are repaired when ftfy can, else dropped and counted."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from babelclip.data import tuxpaint

STAMPS = Path("/usr/share/tuxpaint/stamps")
# The Debian package's Tamil "a hand" (ஒரு கை in TSCII bytes, shown as Latin-1), verbatim.
TSCII_AS_LATIN1 = "´Õ ¨¸."


def _stamp(root: Path, name: str, lines: list[str]) -> None:
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    Image.new("RGBA", (4, 4), (255, 0, 0, 255)).save(root / f"{name}.png")
    (root / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_check_text_rules():
    # UTF-8 bytes read as cp1252 / Latin-1: ftfy recovers the text, in the language's script
    assert tuxpaint.check_text("café".encode().decode("cp1252"), "fr")[0] == "café"
    assert tuxpaint.check_text("молоко".encode().decode("latin-1"), "ru")[0] == "молоко"
    # 'р' is D1 80 in UTF-8: read as Latin-1 it holds a C1 control (U+0080); still repairable
    text, note = tuxpaint.check_text("привет".encode().decode("latin-1"), "ru")
    assert text == "привет" and note.startswith("repaired")
    # repairable, but into Cyrillic: not French, so dropped rather than "repaired"
    assert tuxpaint.check_text("молоко".encode().decode("latin-1"), "fr")[0] is None
    # a legacy 8-bit encoding ftfy does not know: Latin-1 only in a Tamil text
    text, note = tuxpaint.check_text(TSCII_AS_LATIN1, "ta")
    assert text is None and "Latin-1 characters only" in note and "Taml" in note
    # a stray C1 control that ftfy would turn into a cp1252 quote ("Pē“rļu"): deleted instead
    text, note = tuxpaint.check_text("Pē\x93rļu vistiņa.", "lv")
    assert text == "Pērļu vistiņa." and "stray control" in note
    # ... but not after a UTF-8 lead byte read as Latin-1: that is mojibake ftfy could not mend
    text, note = tuxpaint.check_text("Pē\xe2\x80rļu", "lv")
    assert text is None and "C1 control" in note
    # valid text stays as it is: ASCII in a non-Latin language, Latin-1 in a Latin one, Romanian
    # quotes that ftfy's is_bad flags, curly quotes and full-width punctuation ftfy.fix_text would change
    for text, tag in [("UFO", "ta"), ("Une pièce appelée “quarter”.", "fr"), ("”Întoarcerea interzisă”.", "ro"),
                      ("ஒரு கை.", "ta"), ("このマークは すてないこと！", "ja"), ("", "ta")]:
        assert tuxpaint.check_text(text, tag) == (text, "")


def test_find_stamps_drops_repairs_and_counts(tmp_path, caplog):
    _stamp(tmp_path / "a", "hand", [
        "A hand.",
        f"ta.utf8={TSCII_AS_LATIN1}",
        "de.utf8=Eine Hand.",
        "lv.utf8=Pē\x93rļu vistiņa.",
        "fr.utf8=" + "Une main à café".encode().decode("cp1252"),
        "ru.utf8=" + "рука".encode().decode("latin-1"),
        "ro.utf8=”Întoarcerea interzisă”.",
    ])
    _stamp(tmp_path / "a", "star", ["A star.", "ta.utf8=ஒரு நட்சத்திரம்", "lv.utf8=Zvaigzne."])
    with caplog.at_level(logging.WARNING, logger="babelclip.data.tuxpaint"):
        stamps, skipped = tuxpaint.find_stamps(tmp_path)
    assert skipped == {}
    hand, star = sorted(stamps, key=lambda s: s.id)
    assert hand.texts == {"en": "A hand.", "de": "Eine Hand.", "fr": "Une main à café", "ru": "рука",
                          "ro": "”Întoarcerea interzisă”.", "lv": "Pērļu vistiņa."}
    assert set(hand.dropped) == {"ta"} and TSCII_AS_LATIN1 in hand.dropped["ta"]
    assert hand.repaired == {"fr": "Une main à café".encode().decode("cp1252"), "ru": "рука".encode().decode("latin-1"),
                             "lv": "Pē\x93rļu vistiņa."}
    assert star.texts["ta"] == "ஒரு நட்சத்திரம்" and not star.dropped and not star.repaired
    assert tuxpaint.text_problems(stamps) == {
        "fr": {"dropped": 0, "repaired": 1}, "lv": {"dropped": 0, "repaired": 1},
        "ru": {"dropped": 0, "repaired": 1}, "ta": {"dropped": 1, "repaired": 0},
    }
    assert "1 dropped as mis-encoded, 3 repaired" in caplog.text
    caps = tuxpaint.tuxpaint_captions(stamps)
    assert caps.captions["ta"] == [[], ["ஒரு நட்சத்திரம்"]]  # the hand has no Tamil caption left
    assert caps.captions["lv"] == [["Pērļu vistiņa."], ["Zvaigzne."]]


@pytest.mark.skipif(not STAMPS.is_dir(), reason="Debian tuxpaint-stamps-default not installed")
def test_real_debian_descriptions():
    stamps, _ = tuxpaint.find_stamps(STAMPS)
    problems = tuxpaint.text_problems(stamps)
    # every Tamil description of the package is TSCII read as Latin-1: all dropped, none kept
    assert problems["ta"]["dropped"] >= 50 and not any("ta" in s.texts for s in stamps)
    assert problems["lv"] == {"dropped": 0, "repaired": problems["lv"]["repaired"]}
    assert 10 <= problems["lv"]["repaired"] <= 30  # the stray-\x93 Latvian ones, nothing more
    assert set(problems) <= {"ta", "lv"}, problems  # no other language loses or changes text
    assert sum(len(s.texts) for s in stamps) > 40_000
    for s in stamps:
        for tag, text in s.texts.items():
            assert not any(0x80 <= ord(c) < 0xA0 for c in text), (s.id, tag)
            script = tuxpaint._expected_script(tag)
            if script != "Latn" and max(map(ord, text)) < 0x100:
                assert text.isascii(), (s.id, tag, text)  # Latin-1 beyond ASCII: the mojibake pattern
