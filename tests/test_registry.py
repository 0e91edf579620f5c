import subprocess
import sys

import numpy as np
import pytest

import babelclip
from babelclip.models.base import Fingerprint, l2_normalize
from babelclip.models.registry import FAMILIES, split_name


def test_split_name_families():
    assert split_name("openclip:xlm-roberta-base-ViT-B-32@laion5b_s13b_b90k") == (
        "openclip",
        "xlm-roberta-base-ViT-B-32@laion5b_s13b_b90k",
    )
    assert split_name("hf:google/siglip-base-patch16-256-multilingual")[0] == "hf"
    assert split_name("babel-lite") == ("babel-lite", "")


@pytest.mark.parametrize("bad", ["nope:model", "openclip:", "ViT-B-32", ""])
def test_unknown_name_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="FAMILY:ID") as e:
        split_name(bad)
    assert all(p in str(e.value) for p in ("openclip", "hf", "mclip", "st"))


def test_local_directory_without_known_files(tmp_path):
    with pytest.raises(ValueError, match="cannot tell which model family"):
        split_name(str(tmp_path))


def test_local_directory_detection(tmp_path):
    (tmp_path / "open_clip_config.json").write_text("{}")
    assert split_name(str(tmp_path))[0] == "openclip"


@pytest.mark.parametrize(("files", "family"), [
    ({"babel_lite.json": "{}", "config.json": "{}"}, "babel-lite"),
    ({"open_clip_config.json": "{}", "config.json": "{}"}, "openclip"),
    ({"modules.json": "[]", "config.json": "{}"}, "st"),  # a SentenceTransformer holds config.json too
    ({"mclip_config.json": "{}"}, "mclip"),
    ({"config.json": '{"model_type": "M-CLIP"}'}, "mclip"),  # a published M-CLIP snapshot
    ({"config.json": '{"model_type": "clip"}'}, "hf"),
])
def test_each_family_recognises_its_own_directories(tmp_path, files, family):
    """The registry asks the families in order; each family module decides what is its own."""
    import importlib

    from babelclip.models.registry import LOCAL_DIR_ORDER

    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert split_name(str(tmp_path)) == (family, str(tmp_path))
    recognising = [p for p in LOCAL_DIR_ORDER if importlib.import_module(FAMILIES[p].module).recognises(tmp_path)]
    assert recognising[0] == family  # the first asked that says yes, as the registry picks


def test_every_family_is_asked_about_local_directories():
    from babelclip.models.registry import LOCAL_DIR_ORDER

    assert sorted(LOCAL_DIR_ORDER) == sorted(FAMILIES)


def test_list_models_filters_and_starts_with_default():
    names = babelclip.list_models()
    assert names[0] == babelclip.DEFAULT_MODEL
    assert all(n.startswith("openclip:") for n in babelclip.list_models("openclip:*"))
    assert babelclip.list_models("no-such-*") == []


def test_every_family_module_exists_and_has_create():
    import importlib

    for fam in FAMILIES.values():
        mod = importlib.import_module(fam.module)
        assert callable(mod.create), fam.prefix


def test_fingerprint_key_changes_with_any_field():
    base = Fingerprint("openclip", "ViT-B-32@x", "abc", "224/bicubic")
    variants = [
        Fingerprint("hf", "ViT-B-32@x", "abc", "224/bicubic"),
        Fingerprint("openclip", "ViT-B-32@y", "abc", "224/bicubic"),
        Fingerprint("openclip", "ViT-B-32@x", "abd", "224/bicubic"),
        Fingerprint("openclip", "ViT-B-32@x", "abc", "256/bicubic"),
        Fingerprint("openclip", "ViT-B-32@x", "abc", "224/bicubic", dtype="float16"),
    ]
    keys = {v.key for v in variants}
    assert base.key not in keys and len(keys) == len(variants)
    assert base.key == Fingerprint("openclip", "ViT-B-32@x", "abc", "224/bicubic").key


def test_l2_normalize_rows_and_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    y = l2_normalize(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[0], [0.6, 0.8], rtol=1e-6)
    assert not np.isnan(y).any() and (y[1] == 0).all()


def test_import_is_light():
    code = "import sys, babelclip; print(sorted(m for m in ('torch','open_clip','transformers','scipy','matplotlib','pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_version_and_models():
    out = subprocess.run([sys.executable, "-m", "babelclip", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and babelclip.__version__ in out.stdout
    out = subprocess.run([sys.executable, "-m", "babelclip", "models"], capture_output=True, text=True)
    assert out.returncode == 0 and "babel-lite" in out.stdout and "pip install 'babelclip[openclip]'" in out.stdout
