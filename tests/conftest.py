"""Fixtures shared by several test modules."""
from __future__ import annotations

import shutil

import pytest

from babelclip.train.sources import CLDR_ANNOTATIONS


@pytest.fixture(scope="module")
def cldr_dir(tmp_path_factory):
    if not (CLDR_ANNOTATIONS / "en.xml").is_file():
        pytest.skip("Debian unicode-cldr-core is not installed (scripts/setup.sh installs it)")
    d = tmp_path_factory.mktemp("cldr")
    for name in ("en", "de", "sw", "root"):
        shutil.copy(CLDR_ANNOTATIONS / f"{name}.xml", d / f"{name}.xml")
    return d


@pytest.fixture(scope="module")
def small_cldr_dir(cldr_dir, tmp_path_factory):
    """The same locales cut to their first 40 emoji: a build runs in seconds."""
    import xml.etree.ElementTree as ET

    d = tmp_path_factory.mktemp("cldr-small")
    keep = [el.get("cp") for el in ET.parse(cldr_dir / "en.xml").getroot().iter("annotation")][:80]
    for f in cldr_dir.glob("*.xml"):
        tree = ET.parse(f)
        for parent in tree.getroot().iter("annotations"):
            for el in list(parent):
                if el.get("cp") not in keep:
                    parent.remove(el)
        tree.write(d / f.name, encoding="utf-8")
    return d
