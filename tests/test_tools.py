"""babelclip_tools: the build tools of the shipped files (int8 and head training are tested in
test_babel_lite_image_speed.py and test_babel_lite.py, the language table in test_languages.py)."""
from __future__ import annotations

import bz2
import subprocess
import sys

from babelclip_tools.cli import main
from babelclip_tools.unicode_tables import generate_tables


def _tiny_ucd(root, *, compressed: bool):
    (root / "Scripts.txt").write_text(
        "# Scripts-15.0.0.txt\n"
        "0041..005A    ; Latin # L&  [26] A..Z\n"
        "0061..007A    ; Latin # L&  [26] a..z\n"   # not adjacent to A..Z: stays its own range
        "007B          ; Latin\n"                    # adjacent to a..z, same script: merged
        "0000..0040    ; Common\n"                   # out of order: sorted
        "4E00..9FFF    ; Han\n", encoding="utf-8")
    (root / "PropertyValueAliases.txt").write_text(
        "sc ; Latn ; Latin\nsc ; Zyyy ; Common\nsc ; Hani ; Han\ngc ; Lu ; Uppercase_Letter\n", encoding="utf-8")
    unihan = ("U+5934\tkTraditionalVariant\tU+982D\n"
              "U+982D\tkSimplifiedVariant\tU+5934\n"
              "U+53D1\tkTraditionalVariant\tU+767C U+9AEE<kMatthews\n"
              "U+5934\tkSemanticVariant\tU+5934\n")  # other fields are ignored
    if compressed:
        (root / "Unihan_Variants.txt.bz2").write_bytes(bz2.compress(unihan.encode()))
    else:
        (root / "Unihan_Variants.txt").write_text(unihan, encoding="utf-8")


def test_unicode_tables_from_a_ucd(tmp_path):
    for compressed in (False, True):  # Debian ships Unihan compressed
        ucd, out = tmp_path / f"ucd{compressed}", tmp_path / f"out{compressed}"
        ucd.mkdir()
        out.mkdir()
        _tiny_ucd(ucd, compressed=compressed)
        scripts, variants = generate_tables(ucd, out)
        lines = scripts.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "# Derived from the Unicode Character Database 15.0.0 (Scripts.txt, PropertyValueAliases.txt)."
        assert lines[2] == "# Regenerate: babelclip-tools unicode-tables UCD_DIR [OUT_DIR]"
        assert lines[3:] == ["0000\t0040\tZyyy", "0041\t005A\tLatn", "0061\t007B\tLatn", "4E00\t9FFF\tHani"]
        rows = [r for r in variants.read_text(encoding="utf-8").splitlines() if not r.startswith("#")]
        assert rows == ["发\t\t發 髮", "头\t\t頭", "頭\t头\t"]


def test_cli_errors_name_what_is_missing(capsys, tmp_path):
    assert main(["int8"]) == 1
    assert "pass --write" in capsys.readouterr().err
    assert main(["unicode-tables", str(tmp_path / "no-ucd"), str(tmp_path)]) == 1
    assert "Scripts.txt" in capsys.readouterr().err


def test_the_runtime_cli_has_no_build_commands():
    """Head training moved out of `babelclip` into `babelclip-tools`; `babelclip lite` is gone."""
    out = subprocess.run([sys.executable, "-m", "babelclip", "lite", "train-head", "--out", "x"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "invalid choice: 'lite'" in out.stderr
    out = subprocess.run([sys.executable, "-m", "babelclip_tools", "train-head", "--help"], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "seed 0 gives the shipped head" in out.stdout


def test_train_lite_adapters_rebuilds_its_base_when_asked(tmp_path, monkeypatch):
    """`--rebuild-base` builds babel-lite 2 into the work folder and trains the adapters on it (the
    whole default model in one command); without it the shipped babel-lite 2 is the base."""
    from babelclip_tools import lite_adapters, lite_muse

    calls = []
    monkeypatch.setattr(lite_muse, "build_v2", lambda out, seed=0: calls.append(("v2", out, seed)) or out)
    monkeypatch.setattr(lite_adapters, "build_v21",
                        lambda out, langs, recipe, base_dir=None, workers=2, work_dir=None:
                        calls.append(("v21", out, tuple(langs), recipe.steps, base_dir, workers)) or out)
    assert main(["train-lite-adapters", "--out", str(tmp_path / "m"), "--langs", "km,am", "--steps", "7",
                 "--rebuild-base", "--workers", "1"]) == 0
    base = tmp_path / "m" / "work" / "base"
    assert calls == [("v2", base, 0), ("v21", str(tmp_path / "m"), ("km", "am"), 7, base, 1)]
    calls.clear()
    assert main(["train-lite-adapters", "--out", str(tmp_path / "n")]) == 0
    assert calls == [("v21", str(tmp_path / "n"), lite_adapters.DEFAULT_LANGS, 250, None, 2)]
