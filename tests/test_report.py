"""The report: self-contained HTML, valid PNGs, CSV that reads back, the CLI."""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image

from babelclip.cli import main as cli_main
from babelclip.eval.report import load_any, make_report, read_table_csv
from babelclip.eval.results import Result, save_results

LANGS = {"en": 0.61, "de": 0.52, "fr": 0.47, "ja": 0.38, "sw": 0.21, "yo": 0.09}


def _results() -> list[Result]:
    out = []
    for lang, acc in LANGS.items():
        out.append(
            Result(
                model="toy",
                fingerprint="fp",
                dataset="babel-imagenet-92",
                task="zeroshot_classification",
                language=lang,
                prompts="label",
                labels="babel-imagenet-92/raw",
                protocol="babel-imagenet",
                metrics={
                    "top1": acc,
                    "top5": min(1.0, acc + 0.2),
                    "chance": 0.01,
                    "top1_ci_low": acc - 0.03,
                    "top1_ci_high": acc + 0.03,
                    "mean_per_class_recall": acc - 0.01,
                },
                counts={"images": 100 + len(lang), "classes": 100},
                extra={"note": "x"},
            )
        )
        out.append(
            Result(
                model="toy",
                fingerprint="fp",
                dataset="xm3600",
                task="retrieval",
                language=lang,
                protocol="all-captions",
                metrics={
                    "t2i_r@1": acc / 2 + 0.1,
                    "t2i_r@1_ci_low": acc / 2 + 0.08,
                    "t2i_r@1_ci_high": acc / 2 + 0.12,
                    "i2t_r@1": acc / 3,
                    "t2i_chance@1": 1 / 3600,
                },
                counts={"images": 3600, "texts": 7200},
            )
        )
    return out


def _published() -> list[Result]:
    # two 'published' models on the same protocol (dataset babel-imagenet = babel-imagenet-92)
    return [
        Result(
            model=f"pub{i}",
            fingerprint=f"published:pub{i}",
            dataset="babel-imagenet",
            task="zeroshot_classification",
            language=lang,
            prompts="label",
            labels="babel-imagenet/raw",
            protocol="babel-imagenet",
            metrics={"top1": acc * (0.5 + i)},
        )
        for i in range(2)
        for lang, acc in LANGS.items()
    ]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    index = make_report(_results(), out, published=_published(), n_boot=100)
    return out, index


def test_html_is_self_contained_and_complete(report):
    out, index = report
    assert index == out / "index.html"
    page = index.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    assert 'src="file' not in page and "src='file" not in page
    srcs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in page and "<script" not in page
    for lang in LANGS:
        assert f"<td>{lang}</td>" in page
    assert "pub0" in page and "pub1" in page  # published numbers beside ours
    assert "Pearson r" in page or "pearson_r" in page


def test_tables_show_cis_of_both_tasks(report):
    _, index = report
    page = index.read_text(encoding="utf-8")
    retrieval_part = page[page.index("xm3600") :]
    for acc in LANGS.values():
        assert f"[{acc - 0.03:.4f}, {acc + 0.03:.4f}]" in page  # classification top1
        assert f"[{acc / 2 + 0.08:.4f}, {acc / 2 + 0.12:.4f}]" in retrieval_part  # retrieval t2i_r@1
    assert page.count("95% CI") >= 2


def test_chance_keys():
    from babelclip.eval.report_plots import _chance_key

    assert _chance_key("top1") == "chance" and _chance_key("top5") == "top5_chance"
    assert _chance_key("t2i_r@1") == "t2i_chance@1" and _chance_key("i2t_r@10") == "i2t_chance@10"
    assert _chance_key("mean_per_class_recall") == ""


def test_pngs_exist_and_are_valid_images(report):
    out, index = report
    pngs = sorted((out / "plots").glob("*.png"))
    # two settings (classification, retrieval) + one scatter
    assert len(pngs) == 3
    assert sum(p.name.startswith("scatter") for p in pngs) == 1
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(p) as im:
            im.verify()
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
    assert index.read_text(encoding="utf-8").count("<img") == len(pngs)


def test_csv_round_trip(report):
    out, _ = report
    back = read_table_csv(out / "results.csv")
    orig = _results()
    assert len(back) == len(orig)
    for a, b in zip(orig, back):
        for f in (
            "model",
            "fingerprint",
            "dataset",
            "task",
            "language",
            "prompts",
            "labels",
            "protocol",
        ):
            assert getattr(a, f) == getattr(b, f)
        assert b.metrics == pytest.approx(a.metrics)  # columns other rows have are not invented
        assert b.counts == a.counts and all(isinstance(v, int) for v in b.counts.values())
    corr = (out / "correlations.csv").read_text().splitlines()
    assert len(corr) == 2 and corr[0].startswith("model,classification,retrieval")
    groups = (out / "groups.csv").read_text()
    assert "all" in groups and "high" in groups


def test_correlation_in_scatter_matches_data(report):
    out, _ = report
    from scipy import stats

    x = list(LANGS.values())
    y = [a / 2 + 0.1 for a in x]
    row = (out / "correlations.csv").read_text().splitlines()[1].split(",")
    header = (out / "correlations.csv").read_text().splitlines()[0].split(",")
    rec = dict(zip(header, row))
    assert float(rec["pearson_r"]) == pytest.approx(stats.pearsonr(x, y)[0])
    assert int(rec["n"]) == len(LANGS)


def test_load_any_reads_files_folders_and_clip_benchmark(tmp_path):
    save_results(_results()[:2], tmp_path / "a.json")
    (tmp_path / "cb.json").write_text(
        json.dumps(
            {
                "dataset": "babel_imagenet",
                "model": "ViT-B-32",
                "pretrained": "laion2b",
                "task": "zeroshot_classification",
                "metrics": {"acc1": 0.5, "acc5": 0.8, "mean_per_class_recall": 0.49},
                "language": "de",
            }
        )
    )
    rs = load_any(tmp_path)
    assert len(rs) == 3
    cb = next(r for r in rs if r.model == "openclip:ViT-B-32@laion2b")
    assert cb.metrics == {"top1": 0.5, "top5": 0.8, "mean_per_class_recall": 0.49}
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="neither a babelclip results file"):
        load_any(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="no results"):
        make_report([], tmp_path / "r")


def test_cli_report(tmp_path, capsys):
    save_results(_results(), tmp_path / "res.json")
    rc = cli_main(
        [
            "report",
            str(tmp_path / "res.json"),
            "--out",
            str(tmp_path / "rep"),
            "--clip-benchmark-out",
            str(tmp_path / "cb"),
        ]
    )
    assert rc == 0
    assert (tmp_path / "rep" / "index.html").exists()
    assert len(list((tmp_path / "cb").glob("*.json"))) == len(_results())
    assert (
        cli_main(["report", str(tmp_path / "missing.json"), "--out", str(tmp_path / "rep2")]) == 1
    )
    assert "does not exist" in capsys.readouterr().err


def _variant(fingerprint: str, scale: float, dataset: str = "babel-imagenet-92", task: str = "zeroshot_classification"):
    metric = "top1" if task == "zeroshot_classification" else "t2i_r@1"
    return [Result("babel-lite", fingerprint, dataset, task, lang, {metric: acc * scale},
                   prompts="label" if task == "zeroshot_classification" else "")
            for lang, acc in LANGS.items()]


def test_models_sharing_a_name_are_never_merged(tmp_path):
    """babel-lite float32 and int8: one ``model`` name, two fingerprints — two bars, two means."""
    import pandas as pd

    f32, i8 = _variant("babel-lite-f32-0a1b2c3d", 1.0), _variant("babel-lite-int8-9f8e7d6c", 0.5)
    make_report(f32 + i8, tmp_path, n_boot=50)
    groups = pd.read_csv(tmp_path / "groups.csv")
    means = groups[groups["group"] == "all"]["mean"].tolist()
    assert sorted(means) == pytest.approx(sorted([sum(LANGS.values()) / 6, 0.5 * sum(LANGS.values()) / 6]))
    assert len(list((tmp_path / "plots").glob("*.png"))) == 2
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    # the two display names differ and each says which fingerprint it is
    assert "babel-lite [babel-lite-f32-0a1b2c3d]" in page and "babel-lite [babel-lite-int8-9f8e7d6c]" in page


def test_a_single_fingerprint_keeps_the_plain_name(tmp_path):
    make_report(_variant("fp-one", 1.0), tmp_path, n_boot=20)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "babel-lite — " in page and "[fp-one]" not in page


def test_cross_task_correlation_pairs_the_same_model_only(tmp_path):
    from babelclip.eval.analysis import classification_vs_retrieval

    rs = (_variant("fp-a", 1.0) + _variant("fp-a", 0.8, "xm3600", "retrieval")
          + _variant("fp-b", 0.5) + _variant("fp-b", 0.3, "xm3600", "retrieval"))
    corr = classification_vs_retrieval(rs)
    assert sorted(c.fingerprint for c in corr) == ["fp-a", "fp-b"]  # never fp-a against fp-b


@pytest.mark.parametrize("dataset", ["babel-emoji", "multi30k", "xm3600", "some-new-benchmark"])
def test_any_benchmark_reports_without_special_cases(tmp_path, dataset):
    rs = _variant("fp", 1.0, dataset) + _variant("fp", 0.7, dataset, "retrieval")
    index = make_report(rs, tmp_path, n_boot=20)
    page = index.read_text(encoding="utf-8")
    assert page.count(f"<h2>babel-lite — {dataset}") == 2  # one section per task, no dataset special case
