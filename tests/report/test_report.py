"""`finbench report`: renders Markdown, CSV and valid PNGs from a store holding stored results.

The store is filled through the same `Store.register` / `Store.record` path the executors use,
with per-item classification results whose accuracy differs by mixture, so the tables, the
dev-selection and the paired tests have something real to find.
"""

from __future__ import annotations

import csv
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from eval_plugins import metrics as EM
from eval_plugins.parsers import MISSING
from finbench import sweep as SW
from finbench.report import build as RP
from finbench.report import data as RD
from finbench.report import parts as RPARTS

LABELS = ["negative", "neutral", "positive"]
MIXTURES = {  # name -> (components, accuracy on fpb, accuracy on tfns)
    SW.BASE: ({}, 0.30, 0.30),
    "fpb": ({"fpb": "fpb"}, 0.55, 0.35),
    "tfns": ({"tfns": "tfns"}, 0.35, 0.55),
    "fpb+tfns": ({"fpb": "fpb", "tfns": "tfns"}, 0.60, 0.56),
    "all": ({"fpb": "fpb", "tfns": "tfns", "openorca": None}, 0.80, 0.54),
    # the size-matched control of the pair fpb+tfns: fpb alone, as many rows as the pair
    "fpb@fpb+tfns": ({"fpb": "fpb"}, 0.50, 0.33),
}
N = {"dev": 60, "test": 150}


def _items(rng, split: str, acc: float, strict_loss: float) -> tuple[list, list]:
    gold_rng = np.random.default_rng(123 + N[split])  # the same documents for every run
    golds = [str(gold_rng.choice(LABELS)) for _ in range(N[split])]
    tol, strict = [], []
    for g in golds:
        pred = g if rng.random() < acc else str(rng.choice([x for x in LABELS if x != g]))
        tol.append(("", g, pred))
        strict.append(("", g, MISSING if rng.random() < strict_loss else pred))
    return tol, strict


def _fill(store_path: Path) -> None:
    runs = []
    ev = {"tasks": ["fpb", "tfns"], "general": ["gen"], "splits": ["dev", "test"], "limit": None,
          "backend": "hf", "batch_size": 4, "num_fewshot": None}
    for m, (comps, _, _) in MIXTURES.items():
        for seed in ([1] if m == SW.BASE else [1, 2]):
            key = f"k-{m}-{seed}"
            runs.append(SW.RunSpec(key=key, sweep="synthetic", recipe="r1", recipe_path="/r1.yaml", mixture=m,
                                   seed=seed, job="eval_only" if m == SW.BASE else "train_eval", eval=ev,
                                   components=comps, recipe_sha="x", mixture_sha=m))
    sw = SW.Sweep(name="synthetic", path=store_path.with_suffix(".yaml"), description="synthetic store",
                  recipes=["r1"], mixtures=[m for m in MIXTURES if m != SW.BASE], seeds=[1, 2],
                  base_eval=True, eval=ev, job="train_eval", ray={}, store=store_path, runs=runs)
    with SW.Store(store_path) as st:
        st.register(sw)
        for spec in runs:
            rng = np.random.default_rng([zlib.crc32(spec.mixture.encode()), spec.seed])
            comps, a_fpb, a_tfns = MIXTURES[spec.mixture]
            evals = {}
            for split in ("dev", "test"):
                scores, items = [], []
                for task, acc in (("fpb", a_fpb), ("tfns", a_tfns)):
                    tol, strict = _items(rng, split, acc, strict_loss=0.2)
                    for filt, its in (("tolerant", tol), ("strict", strict)):
                        scores.append({"task": task, "metric": "score", "filter": filt,
                                       "value": EM.score(its), "stderr": None})
                        items += [{"task": task, "filter": filt, "doc_id": i, "doc_hash": f"d{i}",
                                   "target": it[1], "prediction": it[2], "metrics": {"*": list(it)}}
                                  for i, it in enumerate(its)]
                    # the metric FinGPT's published rows use (peers.yaml `ours: f1_weighted,tolerant`)
                    scores.append({"task": task, "metric": "f1_weighted", "filter": "tolerant", "stderr": None,
                                   "value": float(f1_score([g for _, g, _ in tol], [p for _, _, p in tol],
                                                           average="weighted"))})
                # a general task with per-item numbers (lm-eval's default `mean` aggregation)
                gen = (rng.random(N[split]) < (0.7 if spec.mixture == SW.BASE else 0.6)).astype(float)
                scores.append({"task": "gen", "metric": "score", "filter": "tolerant",
                               "value": float(gen.mean()), "stderr": None})
                items += [{"task": "gen", "filter": "tolerant", "doc_id": i, "metrics": {"score": float(v)}}
                          for i, v in enumerate(gen)]
                evals[split] = {"scores": scores, "items": items, "aggregations": {
                    t: {"score": ["eval_plugins.metrics.score", True]} for t in ("fpb", "tfns")}}
            st.mark_running(spec)
            st.record(spec, {"evals": evals, "seconds": 1.0, "model_dir": "/m"})


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert len(data) > 2000
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    store = tmp / "sweep.sqlite"
    _fill(store)
    out = tmp / "report"
    assert RP.main([str(store), "--out", str(out), "--resamples", "300"]) == 0
    return store, out


def test_markdown_has_every_section(rendered) -> None:
    _, out = rendered
    md = (out / "report.md").read_text()
    for needle in ("## r1: test scores", "cocktail effect", "pair transfer", "general-task regression",
                   "Format penalty", "Published reference scores", "BloombergGPT-50B", "| fpb | BloombergGPT-50B | 0.51",
                   "5-shot", "arXiv:2303.17564", "data seed: `fixed`"):
        assert needle in md, needle
    table = md.split("## r1: test scores")[1].split("###")[0]
    all_row = next(line for line in table.splitlines() if line.startswith("| all |"))
    assert "**" in all_row and "†" in all_row  # best on fpb test, and selected on fpb dev
    assert "[" in all_row  # a CI


def test_cocktail_effect_is_paired_and_significant(rendered) -> None:
    _, out = rendered
    rows = list(csv.DictReader((out / "cocktail_effect.csv").open()))
    sel = [r for r in rows if r["task"] == "fpb" and r["selected_on_dev"] == "True"]
    assert len(sel) == 1 and sel[0]["mixture"] == "all" and sel[0]["baseline"] == "fpb"
    assert float(sel[0]["delta"]) > 0.1 and float(sel[0]["delta_low"]) > 0
    assert float(sel[0]["p_bootstrap"]) < 0.01 and float(sel[0]["p_permutation"]) < 0.01
    assert {r["mixture"] for r in rows if r["task"] == "tfns"} == {"fpb+tfns", "all"}


def test_per_task_csv_and_regression(rendered) -> None:
    _, out = rendered
    rows = list(csv.DictReader((out / "per_task.csv").open()))
    test_all = [r for r in rows if r["mixture"] == "all" and r["split"] == "test" and r["task"] == "fpb"]
    assert {r["filter"] for r in test_all} == {"tolerant", "strict"}
    tol = next(r for r in test_all if r["filter"] == "tolerant")
    assert tol["n_seeds"] == "2" and tol["n_items"] == "150"
    assert float(tol["low"]) <= float(tol["mean"]) <= float(tol["high"])
    reg = list(csv.DictReader((out / "general_regression.csv").open()))
    assert {r["mixture"] for r in reg} == {"fpb", "tfns", "fpb+tfns", "all", "fpb@fpb+tfns"}
    assert all(float(r["delta"]) < 0 for r in reg)  # the synthetic cocktails lose 0.1 on `gen`
    pairs = list(csv.DictReader((out / "pair_transfer.csv").open()))
    assert {(r["target"], r["partner"]) for r in pairs} == {("fpb", "tfns"), ("tfns", "fpb")}


def test_pngs_are_valid_non_empty_images(rendered) -> None:
    import matplotlib.image as mpimg

    _, out = rendered
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} == {"cocktail_effect_r1.png", "pair_transfer_r1.png", "general_regression_r1.png"}
    for p in pngs:
        w, h = _png_size(p)
        assert w > 200 and h > 150
        img = mpimg.imread(p)
        assert img.shape[:2] == (h, w) and float(img.std()) > 0.01  # not a blank canvas


def test_report_is_deterministic(rendered, tmp_path) -> None:
    store, out = rendered
    again = tmp_path / "again"
    RP.build_report(store, again, resamples=300)
    for name in ("report.md", "per_task.csv", "cocktail_effect.csv", "pair_transfer_r1.png"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_missing_store_is_a_clear_error(tmp_path, capsys) -> None:
    assert RP.main([str(tmp_path / "none.sqlite")]) == 2
    assert "no sweep store" in capsys.readouterr().err


def _floats(rows: list[dict], key: str) -> np.ndarray:
    return np.array([float(r[key]) for r in rows])


def test_corrected_pvalues_cover_the_whole_family(rendered) -> None:
    from finbench.report import stats as S
    _, out = rendered
    family = [row for name in RPARTS.FAMILY for row in csv.DictReader((out / name).open())]
    n_effect = len(list(csv.DictReader((out / "cocktail_effect.csv").open())))
    assert n_effect >= 4 and len(family) > n_effect  # regression and size-matched rows are in it too
    raw, holm, bh = _floats(family, "p_bootstrap"), _floats(family, "p_holm"), _floats(family, "p_bh")
    # the CSVs hold the adjustment of the whole family at once, not of each file or recipe alone
    assert np.allclose(holm, S.adjust_pvalues(raw.tolist(), "holm"), rtol=1e-5, atol=1e-6)
    assert np.allclose(bh, S.adjust_pvalues(raw.tolist(), "bh"), rtol=1e-5, atol=1e-6)
    assert (holm >= raw - 1e-9).all() and (bh >= raw - 1e-9).all() and (holm >= bh - 1e-9).all()
    assert (holm > raw).any()
    md = (out / "report.md").read_text()
    assert f"family: all {len(family)} paired comparisons" in md and "Holm (family-wise" in md
    effect = md.split("cocktail effect (dev-selected")[1].split("![")[0]
    assert "| p Holm | p BH |" in effect
    sel = next(r for r in family if r.get("selected_on_dev") == "True" and r["task"] == "fpb")
    line = next(x for x in effect.splitlines() if x.startswith("| fpb |"))
    assert line.endswith(f"| {float(sel['p_holm']):.3f} | {float(sel['p_bh']):.3f} |")
    regression = md.split("general-task regression")[1].split("![")[0]
    assert "p Holm" in regression and "BH" in regression


def test_pair_is_compared_with_its_size_matched_single(rendered) -> None:
    _, out = rendered
    rows = list(csv.DictReader((out / "size_matched.csv").open()))
    assert [(r["task"], r["pair_mixture"], r["matched_mixture"]) for r in rows] == [("fpb", "fpb+tfns", "fpb@fpb+tfns")]
    assert float(rows[0]["delta"]) > 0.05 and float(rows[0]["delta_low"]) > 0  # 0.60 vs 0.50 accuracy
    md = (out / "report.md").read_text()
    assert "pair vs size-matched single" in md and "| fpb | fpb+tfns | fpb@fpb+tfns |" in md
    # a control is neither a cocktail, nor the single-task baseline, nor a pair-transfer cell
    effect = list(csv.DictReader((out / "cocktail_effect.csv").open()))
    assert all(r["mixture"] != "fpb@fpb+tfns" and r["baseline"] == r["task"] for r in effect)


def test_peers_on_our_split_are_printed_beside_ours(rendered) -> None:
    store, out = rendered
    md = (out / "report.md").read_text()
    like, context = md.split("## Published numbers on our splits (like-for-like)")[1].split(
        "## Published reference scores (context only")
    assert "FinGPT v3.3 (Llama-2-13B LoRA)" in like and "BloombergGPT" not in like
    assert "BloombergGPT-50B" in context and "FinGPT" not in context
    # ours: the dev-selected mixture (`all` on fpb), test seed mean in the peer's metric
    data = RD.Data.load(store)
    try:
        ours = np.mean(data.seed_values(data.cells[("r1", "all")], "test", "fpb", "f1_weighted", "tolerant"))
    finally:
        data.store.close()
    row = next(x for x in like.splitlines() if "| fpb |" in x and "v3.3" in x)
    assert f"| {ours:.3f} (r1 / all) |" in row and "FinGPT README.md @ 5d010c6f" in row and "test (1212)" in row
    assert "| finqa |" in like and "not scored" in like.split("| finqa |")[1].splitlines()[0]
    # FinBen's leaderboard rows only where the sweep evaluates a finben_* task (this one does not)
    assert "| finben_" not in md and "published rows of suites this sweep does not evaluate" in md
    refs = list(csv.DictReader((out / "references.csv").open()))
    fpb = [r for r in refs if r["task"] == "fpb" and r["split_match"] == "True"]
    assert fpb and all(r["mixture_here"] == "all" and abs(float(r["value_here"]) - ours) < 1e-5 for r in fpb)


def test_lower_is_better_metric_selects_and_marks_the_lowest(rendered, tmp_path) -> None:
    """The direction comes from the metric's declaration (recorded with its aggregation): for a
    lower-is-better metric, dev selects and the table marks the LOWEST score."""
    import shutil
    import sqlite3

    store = tmp_path / "sweep.sqlite"
    shutil.copy(rendered[0], store)
    with sqlite3.connect(store) as db:
        db.execute("UPDATE aggregations SET higher_is_better=0 WHERE task='fpb' AND metric='score'")
    out = tmp_path / "report"
    RP.build_report(store, out, resamples=50)
    rows = [r for r in csv.DictReader((out / "per_task.csv").open()) if r["task"] == "fpb" and r["filter"] == "tolerant"]
    dev = {r["mixture"]: float(r["mean"]) for r in rows if r["split"] == "dev" and not RD.is_control(r["mixture"])}
    test = {r["mixture"]: float(r["mean"]) for r in rows if r["split"] == "test"}
    table = (out / "report.md").read_text().split("## r1: test scores")[1].split("###")[0]
    fpb_cell = {line.split("|")[1].strip(): line.split("|")[2] for line in table.splitlines()
                if line.startswith("| ") and not line.startswith("| mixture")}
    assert [m for m, cell in fpb_cell.items() if "†" in cell] == [min(dev, key=dev.get)]
    assert [m for m, cell in fpb_cell.items() if "**" in cell] == [min(test, key=test.get)]
    assert min(dev, key=dev.get) != max(dev, key=dev.get)
