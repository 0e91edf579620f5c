"""What `babelclip eval` wires together: skipped languages in the meta, --verify-images, image
tasks as a task kind (--tasks), the paper protocol (issue 17), nllb-raw prompts (CLIP_benchmark's
raw templates), the protocol results carry, and the leakage guard with --adapters."""
from __future__ import annotations

import json
import os
import shutil
from typing import ClassVar

import numpy as np
import pytest
from _paths import BABEL_IMAGENET
from _tiny_encoder import TinyEncoder, fewer_emoji, patch_create_model
from PIL import Image

from babelclip.cli import main
from babelclip.data.imagenet import imagenet_wnids, openai_templates
from babelclip.data.labels import LabelSet
from babelclip.data.prompts import PromptSet, label_only, load_nllb_prompts
from babelclip.errors import UnsupportedLanguageError
from babelclip.eval.cache import EmbeddingCache
from babelclip.eval.classification import classifier_weights, zero_shot_classification
from babelclip.eval.encode import ImageEmbeddings
from babelclip.eval.results import load_results
from babelclip.eval.run import evaluate, prompt_sets, select_tasks

NLLB = BABEL_IMAGENET / "nllb_dist13b_prompts.json"


class NoJapanese(TinyEncoder):
    """A model that cannot encode Japanese (as NLLB-CLIP without a FLORES code for a language)."""

    def _text_features(self, texts, lang):
        if lang.tag == "ja":
            raise UnsupportedLanguageError("ja", "no language token for ja")
        return super()._text_features(texts, lang)


@pytest.fixture
def created(monkeypatch):
    """``create_model`` replaced: returns the tiny model and records each call."""
    return patch_create_model(monkeypatch)


def _imagenet_folder(tmp_path, classes=(0, 1, 2), per_class=2):
    """ImageNet-style folders; the images of a class are copies of one picture."""
    wnids = imagenet_wnids()
    rng = np.random.default_rng(0)
    for c in classes:
        d = tmp_path / "val" / wnids[c]
        d.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(d / "0.png")
        for j in range(1, per_class):
            shutil.copy(d / "0.png", d / f"{j}.png")
    labels = {"DE": [list(classes), ["Schleie", "Goldfisch", "Weißer Hai"][: len(classes)]]}
    (tmp_path / "names.json").write_text(json.dumps(labels, ensure_ascii=False))
    return tmp_path / "val", tmp_path / "names.json"


def _captions(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "imgs").mkdir()
    for n in ("a.png", "b.png", "c.png"):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "imgs" / n)
    doc = {"images": ["a.png", "b.png", "c.png"],
           "captions": {"de": [["ein Hund"], ["eine Katze"], ["ein Haus"]], "ja": [["犬"], ["猫"], ["家"]]}}
    (tmp_path / "caps.json").write_text(json.dumps(doc, ensure_ascii=False))
    return tmp_path / "caps.json"


# -- a language the model cannot handle never stops a run -----------------------------------------
@pytest.mark.parametrize("workers", [1, 2])
def test_an_unsupported_language_is_skipped_and_recorded(tmp_path, workers):
    caps = _captions(tmp_path)
    res = evaluate(NoJapanese(), dataset="mine", captions=caps, images=tmp_path / "imgs", out=tmp_path / "out",
                   cache_dir=tmp_path / "cache", language_workers=workers, n_boot=0, quiet=True)
    assert {r.language for r in res} == {"de"}
    meta = json.loads((tmp_path / "out" / "results.json").read_text())["meta"]
    assert meta["languages_skipped"] == {"ja": "no language token for ja"}


# -- --verify-images: the cache keyed by the bytes -------------------------------------------------
def test_verify_images_catches_a_rewrite_with_the_same_size_and_mtime(tmp_path, created):
    caps = _captions(tmp_path)
    target = tmp_path / "imgs" / "b.png"

    def rewrite(seed):  # other pixels, the same byte count and mtime
        st = target.stat()
        Image.new("RGB", (8, 8), (seed, 0, 0)).save(tmp_path / "new.bmp")  # a BMP of 8x8: fixed size
        data = (tmp_path / "new.bmp").read_bytes()
        target.write_bytes(data + b"\0" * (st.st_size - len(data)) if len(data) < st.st_size else data)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        return st.st_size

    base = ["-q", "eval", "--captions", str(caps), "--images", str(tmp_path / "imgs"), "--cache-dir",
            str(tmp_path / "cache"), "--language-workers", "1", "--overwrite"]

    def encoded(*extra):
        assert main([*base, "--out", str(tmp_path / "o"), *extra]) == 0
        return json.loads((tmp_path / "o" / "results.json").read_text())["meta"]["images_encoded_now"]

    size = rewrite(10)
    assert target.stat().st_size == size
    assert encoded() == 3 and encoded("--verify-images") == 3  # a hash key is another key: all once
    rewrite(200)
    assert encoded() == 0  # path + size + mtime unchanged: the stale embedding is reused
    assert encoded("--verify-images") == 1  # the bytes changed: that image is encoded again


# -- image→image retrieval and k-NN as a task kind ----------------------------------------------------
def test_image_tasks_run_with_the_benchmark_and_can_be_selected(tmp_path, created):
    val, names = _imagenet_folder(tmp_path)
    kw = {"dataset": "babel-imagenet", "images": val, "labels": names, "cache_dir": "none", "language_workers": 1,
          "n_boot": 0, "quiet": True}
    res = evaluate("tiny", out=tmp_path / "all", formats="clip-benchmark,mteb", **kw)
    image = {r.task: r for r in res if r.language == "zxx"}
    assert set(image) == {"image_retrieval", "knn_classification"}
    # each image's twin is a copy: found first, and it wins the vote
    assert image["image_retrieval"].metrics["i2i_r@1"] == 1.0 and image["knn_classification"].metrics["top1"] == 1.0
    assert image["image_retrieval"].counts == {"images": 6, "classes": 3, "queries": 6}
    assert {r.task for r in res if r.language == "de"} == {"zeroshot_classification"}
    meta = json.loads((tmp_path / "all" / "results.json").read_text())["meta"]
    assert meta["tasks"] == ["zeroshot_classification", "image"] and meta["protocol"] == "default"
    # MTEB-style JSON has them (language zxx-Zxxx); CLIP_benchmark has no such task: left out
    mteb = {p.name: json.loads(p.read_text()) for p in (tmp_path / "all" / "mteb").rglob("*.json")}
    knn = next(d for name, d in mteb.items() if "knn_classification" in name)
    assert knn["scores"]["test"][0]["languages"] == ["zxx-Zxxx"] and knn["scores"]["test"][0]["main_score"] == 1.0
    assert len(list((tmp_path / "all" / "clip_benchmark").rglob("*.json"))) == 1  # German classification
    only = evaluate("tiny", out=tmp_path / "img", tasks="image", **kw)
    assert {(r.task, r.language) for r in only} == {("image_retrieval", "zxx"), ("knn_classification", "zxx")}
    without = evaluate("tiny", out=tmp_path / "txt", tasks="-image", **kw)
    assert {r.task for r in without} == {"zeroshot_classification"}
    with pytest.raises(ValueError, match="none of the task kinds retrieval is offered; it has zeroshot_classification, image"):
        evaluate("tiny", out=tmp_path / "r", tasks="retrieval", **kw)


def test_knn_queries_are_the_images_with_another_of_their_class():
    from babelclip.eval.image_tasks import image_task_results

    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.95, 0.05]], np.float32)
    # image 4 is alone in class 2: a voter, never a query (it could only be classified wrong)
    _, knn = image_task_results(x, [0, 0, 1, 1, 2], model="m", fingerprint="f", dataset="d", knn_k=1, n_boot=0)
    assert knn.counts == {"images": 5, "classes": 3, "queries": 4}
    assert knn.metrics["top1"] == 0.5  # images 0 and 1 have image 4 nearest (misses), 2 and 3 each other


def test_task_kinds_are_checked():
    assert select_tasks(None) == select_tasks("all") == ["zeroshot_classification", "retrieval", "keyword_retrieval",
                                                         "image"]
    assert select_tasks("image,retrieval") == ["retrieval", "image"]
    with pytest.raises(ValueError, match="unknown task kind.*'pictures'.*allowed: all, zeroshot_classification"):
        select_tasks("pictures")
    with pytest.raises(ValueError, match="not both"):
        select_tasks("image,-retrieval")


def test_no_image_tasks_where_every_class_has_one_image(tmp_path, created):
    val, names = _imagenet_folder(tmp_path, per_class=1)
    res = evaluate("tiny", dataset="babel-imagenet", images=val, labels=names, cache_dir="none", language_workers=1,
                   n_boot=0, quiet=True)
    assert {r.task for r in res} == {"zeroshot_classification"}


# -- the protocol results carry ---------------------------------------------------------------------
def test_paper_protocol_is_recorded_and_reaches_the_model_factory(tmp_path, created):
    val, names = _imagenet_folder(tmp_path)
    kw = {"dataset": "babel-imagenet", "images": val, "labels": names, "cache_dir": "none", "language_workers": 1,
          "n_boot": 0, "quiet": True}
    default = evaluate("tiny", out=tmp_path / "d", **kw)
    paper = evaluate("tiny", out=tmp_path / "p", protocol="paper", **kw)
    assert created.create_kwargs == [{"device": "cpu"}, {"device": "cpu", "protocol": "paper"}]
    assert {r.protocol for r in default if r.task == "zeroshot_classification"} == {"babel-imagenet"}
    assert {r.protocol for r in paper} == {"babel-imagenet/paper", "leave-one-out/paper", "leave-one-out k=20/paper"}
    assert json.loads((tmp_path / "p" / "results.json").read_text())["meta"]["protocol"] == "paper"
    with pytest.raises(ValueError, match="unknown protocol 'published'; allowed: default, paper"):
        evaluate("tiny", out=tmp_path / "x", protocol="published", **kw)


def _two_class_case():
    """Text embeddings as a model that does not normalise returns them: class 0's is long (norm
    5) and points away from the second image; class 1's is unit-norm and close to it. The first
    image is class 0 (right either way), the second class 1."""
    texts = {"A": np.array([5.0, 0.0], np.float32), "B": np.array([0.6, 0.8], np.float32)}
    images = np.array([[1.0, -0.2], [0.3, 1.0]], np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    return texts, ImageEmbeddings(["x", "y"], images, np.array([0, 1]))


class _Fixed:
    """An encoder stub returning fixed text vectors (the template decides nothing)."""

    text_language_agnostic = True

    def __init__(self, texts):
        from babelclip.models.base import Fingerprint

        self.texts, self.dim, self.device = texts, 2, "cpu"
        self.fingerprint = Fingerprint("test", "fixed", "w", "p")

    def encode_texts(self, texts, lang, batch_size=256):
        return np.stack([self.texts[t.split()[-1]] for t in texts])


@pytest.mark.parametrize("scoring, templates, top1", [
    ("default", ("{}",), 1.0),  # normalised: class 1 is closer to the second image
    ("paper", ("{}",), 0.5),  # one prompt, unnormalised: class 0's length wins (the reference's scoring)
    ("paper", ("{}", "a {}"), 1.0),  # several prompts: the mean is normalised
])
def test_paper_scoring_keeps_single_prompt_embeddings_unnormalised(scoring, templates, top1):
    texts, images = _two_class_case()
    labels = LabelSet("two", ("c0", "c1"), {"en": {0: "A", 1: "B"}})
    with EmbeddingCache(None, "fixed", 2) as cache:
        [r] = zero_shot_classification(_Fixed(texts), images, ["c0", "c1"], labels,
                                       [PromptSet("p", default=templates)], cache, n_boot=0, scoring=scoring)
    assert r.metrics["top1"] == top1


class LongShark(TinyEncoder):
    """Text embeddings not unit-norm (as M-CLIP's under the paper protocol): "Weißer Hai" is 50 long."""

    def encode_texts(self, texts, lang, batch_size=256):
        vecs = super().encode_texts(texts, lang, batch_size=batch_size)
        return vecs * np.array([50.0 if t == "Weißer Hai" else 1.0 for t in texts], np.float32)[:, None]


def test_evaluate_scores_unnormalised_text_only_under_the_paper_protocol(tmp_path):
    from babelclip.models.base import l2_normalize

    val, names = _imagenet_folder(tmp_path)
    enc = LongShark()
    kw = {"dataset": "babel-imagenet", "images": val, "labels": names, "cache_dir": "none", "language_workers": 1,
          "n_boot": 0, "quiet": True, "tasks": "zeroshot_classification", "languages": "de"}
    [default] = evaluate(enc, **kw)
    [paper] = evaluate(enc, protocol="paper", **kw)
    images = enc.encode_images([Image.open(p) for p in sorted(val.rglob("*.png"))])
    text = enc.encode_texts(["Schleie", "Goldfisch", "Weißer Hai"], "de")
    truth = np.repeat([0, 1, 2], 2)
    expect_default = float(((images @ l2_normalize(text).T).argmax(1) == truth).mean())
    expect_paper = float(((images @ text.T).argmax(1) == truth).mean())
    assert expect_paper != expect_default  # the long text vector wins the images it has a positive cosine with
    assert (default.metrics["top1"], paper.metrics["top1"]) == (expect_default, expect_paper)


class RawText(TinyEncoder):
    """Declares raw text rows (``text_normalized = False``): "B" comes back 5 long."""

    text_normalized = False
    ROWS: ClassVar = {"A": [1.0, 0.0], "B": [2.5, 4.33]}  # B: 5 x (0.5, 0.866)

    def encode_texts(self, texts, lang, batch_size=256):
        return np.array([self.ROWS[t] for t in texts], np.float32)


@pytest.mark.parametrize("scoring, i2t", [("default", 1.0), ("paper", 0.5)])
def test_retrieval_normalises_raw_text_rows_except_under_paper_scoring(scoring, i2t):
    from babelclip.data.captions import CaptionSet
    from babelclip.eval.retrieval import retrieval

    images = np.array([[1.0, 0.0], [0.6, 0.8]], np.float32)
    emb = ImageEmbeddings(["a.png", "b.png"], images, np.array([-1, -1]))
    caps = CaptionSet("two", ["a.png", "b.png"], {"en": [["A"], ["B"]]})
    enc = RawText(dim=2)
    with EmbeddingCache(None, "raw", 2) as cache:
        [r] = retrieval(enc, emb, caps, cache, protocols=("first-caption",), n_boot=0, scoring=scoring)
    # image a: "A" scores 1, "B" 0.5 as a unit row but 2.5 raw; text→image never depends on a text's length
    assert (r.metrics["i2t_r@1"], r.metrics["t2i_r@1"]) == (i2t, 1.0)


# -- nllb-raw: CLIP_benchmark's templates, as released ----------------------------------------------
@pytest.mark.skipif(not NLLB.is_file(), reason="reference NLLB prompts not present")
def test_nllb_raw_keeps_the_release_and_builds_clip_benchmarks_classifier():
    import torch
    from clip_benchmark.metrics.zeroshot_classification import zero_shot_classifier

    doc = json.loads(NLLB.read_text(encoding="utf-8"))
    code = next(c for c, t in doc.items() if len(set(t)) < len(t) and c != "EN")  # a language with duplicates
    raw = load_nllb_prompts(NLLB, raw=True)
    tag = next(t for t in raw.per_language if raw.templates(t) == doc[code])
    assert raw.name == "nllb-raw" and raw.templates(tag) == doc[code]  # no normalisation, no de-duplication
    assert len(load_nllb_prompts(NLLB).templates(tag)) < len(doc[code])
    classnames = ["Hund", "Katze", "Auto"]
    # CLIP_benchmark 1.6.2's own classifier on the same text embeddings (random, one per distinct text)
    cb_templates = [t.replace("{}", "{c}") for t in doc[code]]
    texts = sorted({t.format(c=c) for t in cb_templates for c in classnames})
    rng = np.random.default_rng(0)
    table = torch.tensor(rng.standard_normal((len(texts), 8)), dtype=torch.float32)
    row = {t: i for i, t in enumerate(texts)}

    class Model:
        def encode_text(self, ids):
            return table[ids]

    cb = zero_shot_classifier(Model(), lambda ts: torch.tensor([row[t] for t in ts]), classnames, cb_templates,
                              "cpu", amp=False)
    ours = classifier_weights({t: table[i].numpy() for t, i in row.items()}, classnames, raw.templates(tag))
    np.testing.assert_allclose(ours, cb.T.numpy(), atol=1e-6)


def test_paper_prompts_skip_a_language_without_nllb_templates(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"DE": ["ein Foto von {}.", "ein Foto von {}."]}))
    [nllb] = prompt_sets("nllb", tmp_path / "p.json", protocol="paper")
    assert nllb.name == "nllb-raw" and nllb.templates("de") == ["ein Foto von {}.", "ein Foto von {}."]
    assert nllb.templates("br") == [] and nllb.fallbacks == {"br": "skip"}
    assert nllb.templates("en") == list(openai_templates())  # the reference's English, not the file's
    [default] = prompt_sets("nllb", tmp_path / "p.json")
    assert default.templates("de") == ["ein Foto von {}."] and len(default.templates("br")) == 80
    labels = LabelSet("two", ("c0", "c1"), {"de": {0: "Hund", 1: "Katze"}, "br": {0: "ki", 1: "kazh"}})
    enc = TinyEncoder()
    images = ImageEmbeddings(["a", "b"], enc.encode_texts(["Hund", "Katze"], "de"), np.array([0, 1]))
    with EmbeddingCache(None, "tiny", enc.dim) as cache:
        res = zero_shot_classification(enc, images, ["c0", "c1"], labels, [label_only(), nllb], cache, n_boot=0)
    assert sorted((r.language, r.prompts) for r in res) == [("br", "label"), ("de", "label"), ("de", "nllb-raw")]


# -- --adapters: the output folder is checked before the model is built ------------------------------
def _adapter_dir(tmp_path, base_name, method="lora", lang="sw"):
    from babelclip.train.distill import ADAPTER_META

    d = tmp_path / "adapters" / lang
    d.mkdir(parents=True)
    (d / ADAPTER_META).write_text(json.dumps({"lang": lang, "method": method, "base_fingerprint": {"name": base_name}}))
    return d


def test_eval_with_adapters_refuses_another_runs_out_before_building_the_model(tmp_path, created, capsys):
    sw = _adapter_dir(tmp_path, created.fingerprint.name)
    out = tmp_path / "o"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"meta": {"model": "another-model", "benchmark": "babel-emoji"}}))
    rc = main(["-q", "eval", "--dataset", "babel-emoji", "--languages", "sw", "--adapters", str(sw),
               "--out", str(out), "--cache-dir", "none"])
    err = capsys.readouterr().err
    assert rc == 1 and created.create_calls == []  # refused with no model load
    assert f"{created.fingerprint.name}+adapters on babel-emoji" in err and "--overwrite" in err


def test_adapted_name_comes_from_the_adapters_meta(tmp_path):
    from babelclip.train.adapters import adapted_name

    assert adapted_name([_adapter_dir(tmp_path / "a", "m"), _adapter_dir(tmp_path / "a", "m", lang="de")]) == "m+adapters"
    assert adapted_name([_adapter_dir(tmp_path / "b", "m", method="full")]) == "m+full-sw"
    assert adapted_name([_adapter_dir(tmp_path / "c", "m"), _adapter_dir(tmp_path / "c", "n", lang="de")]) is None
    from babelclip.train.distill import ADAPTER_META

    d = _adapter_dir(tmp_path / "d", "m")
    (d / ADAPTER_META).write_text(json.dumps({"lang": "sw", "method": "lora"}))
    assert adapted_name([d]) is None  # a meta that names no base model: known only once loaded


def test_a_model_built_later_must_carry_the_planned_name(tmp_path, monkeypatch):
    from babelclip.eval.model_source import BuildLater
    from babelclip.eval.run import evaluate

    fewer_emoji(monkeypatch)
    enc = TinyEncoder()
    with pytest.raises(ValueError, match=f"built is {enc.fingerprint.name}, not planned-name"):
        evaluate(BuildLater("planned-name", lambda: enc), dataset="babel-emoji", languages="de",
                 out=tmp_path / "o", cache_dir="none", language_workers=1)
    assert not (tmp_path / "o" / "results.json").exists()
    res = evaluate(BuildLater(enc.fingerprint.name, lambda: enc), dataset="babel-emoji", languages="de",
                   out=tmp_path / "o", cache_dir="none", language_workers=1, n_boot=0)
    assert res and load_results(tmp_path / "o" / "results.json")[0].model == enc.fingerprint.name


# -- the leakage guard in the CLI path -----------------------------------------------------------------
def test_eval_with_cldr_trained_adapters_marks_babel_emoji_results(tmp_path, created, monkeypatch):
    from babelclip.train import adapters
    from babelclip.train.distill import ADAPTER_META
    from babelclip.train.sources import EMOJI_META

    fewer_emoji(monkeypatch)
    loaded = []
    monkeypatch.setattr(adapters, "load_adapters", lambda base, dirs: loaded.append(list(dirs)) or base)
    sw = tmp_path / "adapters" / "sw"
    sw.mkdir(parents=True)
    (sw / ADAPTER_META).write_text(json.dumps({"lang": "sw", "method": "lora",
                                               "data": {"source": "cldr:names", EMOJI_META: "train"}}))
    assert main(["-q", "eval", "--dataset", "babel-emoji", "--languages", "de,sw", "--adapters", str(sw),
                 "--out", str(tmp_path / "o"), "--cache-dir", "none", "--language-workers", "1"]) == 0
    assert loaded == [[str(sw)]]
    res = load_results(tmp_path / "o" / "results.json")
    marked = {(r.language, r.labels) for r in res if "leakage" in r.extra}
    assert marked == {("sw", "babel-emoji-all/raw"), ("sw", "babel-emoji-keywords-all")}
    # not Babel-ImageNet's protocol; and one picture per emoji: no image→image tasks
    assert {r.protocol for r in res if r.task == "zeroshot_classification"} == {"zero-shot"}
    assert all(r.language != "zxx" for r in res)
