"""Audit (collisions, disambiguators, scripts) and the cleaning policies with their diff."""

from __future__ import annotations

import pytest
from _paths import REFERENCE

from babelclip.data.audit import audit, collision_key, format_audit, totals
from babelclip.data.clean import POLICIES, clean, format_diff
from babelclip.data.labels import LabelSet, load_babel_imagenet
from babelclip.data.scripts_unicode import (
    char_script,
    han_variant,
    label_script,
    serbian_latin_to_cyrillic,
    to_simplified,
    to_traditional,
)

REF = REFERENCE
BI = REF / "babel-imagenet"
needs_ref = pytest.mark.skipif(
    not BI.is_dir(), reason="reference files of the Babel-ImageNet release not present"
)
W = tuple(f"n0{i:07d}" for i in range(6))  # wnids are only carried along in these tests


def mini(labels: dict[str, dict[int, str]]) -> LabelSet:
    return LabelSet("mini", W, labels, {t: {i: "src" for i in d} for t, d in labels.items()})


def test_scripts():
    assert [char_script(c) for c in "aж猫ねア한ا1"] == [
        "Latn",
        "Cyrl",
        "Hani",
        "Hira",
        "Kana",
        "Hang",
        "Arab",
        "Zyyy",
    ]
    assert (
        han_variant("貓頭鷹") == "Hant"
        and han_variant("猫头鹰") == "Hans"
        and han_variant("金魚") == "Hant"
    )
    assert han_variant("狗") == "neutral"
    assert to_simplified("貓頭鷹") == "猫头鹰" and to_traditional("猫头鹰") == "貓頭鷹"
    assert label_script("貓頭鷹", "Hans") == "Hant" and label_script("猫头鹰", "Hans") == "Hans"
    assert (
        label_script("ねこ猫", "Jpan") == "Jpan" and label_script("Tinca tinca", "Cyrl") == "Latn"
    )
    assert label_script("123", "Latn") == "none"
    assert (
        serbian_latin_to_cyrillic("Njegoš, ljubav i džep u Čačku") == "Његош, љубав и џеп у Чачку"
    )


def test_audit_counts_on_a_hand_made_set():
    ls = mini(
        {
            "en": {0: "crane", 1: "Crane", 2: "jay", 3: "owl"},
            "de": {0: "Kranich", 1: "Kran", 2: "Jay (Vogel)", 3: "owl", 4: "Eule"},
            "zh-Hans": {0: "鹤", 1: "起重機", 3: "猫头鹰"},
            "sr-Cyrl": {0: "ждрал", 1: "Kran"},
        }
    )
    rows = {r.lang: r for r in audit(ls)}
    assert rows["en"].collisions == 1 and rows["en"].collision_groups == [
        [0, 1]
    ]  # case-insensitive
    assert rows["de"].disambiguators == 1 and rows["de"].same_as_english == 1  # 'owl'
    assert rows["de"].coverage == pytest.approx(5 / 6)
    assert rows["zh-Hans"].off_script == 1 and rows["zh-Hans"].scripts["Hant"] == 1
    assert rows["sr-Cyrl"].off_script == 1 and rows["sr-Cyrl"].scripts == {"Cyrl": 1, "Latn": 1}
    t = totals(list(rows.values()))
    assert (t["collisions"], t["disambiguators"], t["off_script"]) == (1, 1, 2)
    assert "TOTAL" in format_audit(list(rows.values()), ls, examples=1)


@needs_ref
def test_reference_readme_counts_hold_on_the_raw_92_release():
    """214 collisions and 685 disambiguators: 92-language file, all 93 entries (English too),
    collisions = classes beyond the first per case-insensitive group, disambiguator = any '(...)'."""
    ls = load_babel_imagenet(BI / "babel_imagenet.json")
    t = totals(audit(ls))
    assert t["languages"] == 93 and t["collisions"] == 214 and t["disambiguators"] == 685
    assert t["same_as_english"] == 0  # the paper's rule: no label equal to an English lemma
    rows = {r.lang: r for r in audit(ls)}
    assert rows["zh-Hans"].scripts.get("Hant", 0) > 200  # Traditional labels in the Simplified set


def test_strip_disambiguators_only_without_new_collision():
    ls = mini({"de": {0: "Jay (Vogel)", 1: "Kran (Maschine)", 2: "Kran", 3: "orang-utan(g)"}})
    out, diff = clean(ls, ["strip-disambiguators"])
    assert out.labels["de"] == {0: "Jay", 1: "Kran (Maschine)", 2: "Kran", 3: "orang-utan(g)"}
    assert out.id == "mini/strip-disambiguators"
    kept = [c for c in diff if c.index == 1]
    assert kept and "would collide with class 2" in kept[0].note
    assert ls.labels["de"][0] == "Jay (Vogel)"  # input untouched
    assert out.provenance["de"][0] == "src; strip-disambiguators"


def test_drop_and_resolve_collisions():
    from babelclip.data.imagenet import imagenet_wnids

    wn = (
        imagenet_wnids()
    )  # 0 tench, 1 goldfish, 5 electric ray; 134 crane (bird), 517 crane (machine)
    ls = LabelSet(
        "m", wn, {"de": {134: "Kran", 517: "kran", 5: "Rochen"}, "ja": {134: "ツル", 517: "ツル"}}
    )
    dropped, diff = clean(ls, ["drop-collisions"])
    assert dropped.labels == {"de": {5: "Rochen"}}  # ja left empty -> removed, and said so
    assert any(c.lang == "ja" and c.policy == "empty" for c in diff)
    assert dropped.id == "m/drop-collisions"
    resolved, _ = clean(ls, ["resolve-collisions"])
    assert resolved.labels["de"] == {134: "Kran", 5: "Rochen"}  # lowest index when no lemma decides
    # 'goldfish' is a WordNet lemma of class 1 only: the label stays there, not with class 0
    en = LabelSet("m", wn, {"en": {0: "Goldfish", 1: "goldfish"}})
    out, diff = clean(en, ["resolve-collisions"])
    assert out.labels["en"] == {1: "goldfish"} and "English WordNet lemma" in diff[0].note
    with pytest.raises(ValueError, match="not both"):
        clean(ls, ["resolve-collisions", "drop-collisions"])


def test_normalise_script_and_canonical_order():
    ls = mini(
        {
            "zh-Hans": {0: "貓頭鷹", 1: "狗"},
            "sr-Cyrl": {0: "ждрал", 1: "Električna raža"},
            "de": {0: "Eule"},
        }
    )
    out, diff = clean(ls, ["strip-disambiguators", "normalise-script"])
    assert out.labels["zh-Hans"] == {0: "猫头鹰", 1: "狗"}
    assert out.labels["sr-Cyrl"] == {0: "ждрал", 1: "Електрична ража"}
    assert out.labels["de"] == {0: "Eule"}
    assert (
        out.cleaning == "normalise-script+strip-disambiguators"
    )  # fixed order, whatever the input order
    assert len(diff) == 2 and "'貓頭鷹' -> '猫头鹰'" in format_diff(diff)
    with pytest.raises(ValueError, match="allowed: " + ", ".join(POLICIES)):
        clean(ls, ["tidy"])


@needs_ref
def test_cleaning_the_release_removes_the_counted_defects():
    ls = load_babel_imagenet(BI / "babel_imagenet.json")
    out, _ = clean(ls, ["normalise-script", "strip-disambiguators", "drop-collisions"])
    t = totals(audit(out))
    assert t["collisions"] == 0
    assert t["disambiguators"] < 100  # left: stripping would collide, or no space before '('
    assert {r.lang: r for r in audit(out)}["zh-Hans"].scripts.get("Hant", 0) == 0
    assert out.id == "babel-imagenet-92/normalise-script+strip-disambiguators+drop-collisions"
    assert collision_key(" Ｊay ") == "jay"


@needs_ref
def test_cli_audit_and_clean(tmp_path, capsys):
    from babelclip.cli import main
    from babelclip.data.labels import load_labelset

    f = str(BI / "babel_imagenet.json")
    assert main(["labels", "audit", "--file", f]) == 0
    out = capsys.readouterr().out
    assert "collisions=214" in out and "disambiguators=685" in out
    dest = tmp_path / "clean.json"
    assert (
        main(["labels", "clean", "--file", f, "--policy", "drop-collisions", "-o", str(dest)]) == 0
    )
    out = capsys.readouterr().out
    assert "[drop-collisions]" in out and "babel-imagenet-92/drop-collisions" in out
    assert load_labelset(dest).id == "babel-imagenet-92/drop-collisions"
    assert (
        main(["labels", "clean", "--file", f, "--policy", "tidy"]) == 1
    )  # clear error, no traceback
    assert "unknown cleaning policy 'tidy'" in capsys.readouterr().err
