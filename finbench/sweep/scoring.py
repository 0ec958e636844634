"""Scoring a run: one split loop for every kind of model, and the store's view of an eval folder.

A trained run, a base model and an API model are each scored split by split into one folder per
split (`finbench.eval.evaluate.write_results`: results.json + samples_<task>.jsonl); `collect` turns
such a folder into a `SplitEval`, and `score_splits` builds the run's `RunResult`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from finbench.data import tasks as T
from finbench.eval import evaluate as E
from finbench.sweep.model import ANY_METRIC, RunResult, RunSpec, SplitEval, split_limit

ScoreSplit = Callable[[str, Path], None]  # (split, out_dir): write that split's eval folder


def score_splits(spec: RunSpec, score_split: ScoreSplit, out_dir_for: Callable[[str], Path], *,
                 model_dir: str, info: dict[str, Any], t0: float) -> RunResult:
    """Score every split of the sweep with `score_split` and collect the run's result."""
    evals = {}
    for split in spec.eval["splits"]:
        out_dir = out_dir_for(split)
        score_split(split, out_dir)
        evals[split] = collect(out_dir, spec.tasks_for(split))
    return RunResult(key=spec.key, model_dir=model_dir, evals=evals, info=info,
                     seconds=round(time.perf_counter() - t0, 2))


def score_target(spec: RunSpec, target: E.Target, info: dict[str, Any], t0: float, lm: Any = None) -> RunResult:
    """Evaluate a model `target` (trained run or base model) on every split of the sweep."""
    def split_dir(split: str) -> Path:
        return target.out_dir.parent / f"{target.out_dir.name}-{split}"

    def score(split: str, out_dir: Path) -> None:
        evaluate_split(target, out_dir, split, spec.tasks_for(split), spec.eval, lm=lm)

    return score_splits(spec, score, split_dir, model_dir=target.model_dir, info=info, t0=t0)


def evaluate_split(target: E.Target, out_dir: Path, split: str, tasks: list[str], ev: dict[str, Any],
                   lm: Any = None) -> None:
    """Score `target` on one split of `tasks` into out_dir (results.json + samples_*.jsonl).

    The sweep's eval settings are the run's: they replace the recipe's own eval block, so a
    `limit: null` sweep scores every row of dev and test alike.
    """
    settings = {**target.settings, **{k: ev[k] for k in ("backend", "num_fewshot", "batch_size")},
                "limit": split_limit(ev, split)}
    E.evaluate(replace(target, out_dir=out_dir, settings=settings), tasks=tasks, lm=lm, split=split)


def _aggregation_names(task: str, known: dict[str, T.TaskInfo]) -> dict[str, tuple[str, bool | None]]:
    """metric -> (dotted aggregation function or lm-eval aggregation name, higher_is_better)."""
    info = known.get(task)
    out: dict[str, tuple[str, bool | None]] = {}
    if info is None:
        return out
    for m in info.config.get("metric_list", []) or []:
        agg = m.get("aggregation")
        if isinstance(agg, str):
            # `!function` left unresolved reads '<yaml dir>/<module.function>'
            out[str(m["metric"])] = (Path(agg).name, m.get("higher_is_better"))
    return out


def _scores(results: dict[str, Any]) -> list[dict[str, Any]]:
    scores = []
    for row in E.flat_rows(results):
        name, filt = row["metric"].split(",", 1)
        value = row["value"]
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        se = row["stderr"]
        scores.append({"task": row["task"], "metric": name, "filter": filt, "value": float(value),
                       "stderr": float(se) if isinstance(se, int | float) else None})
    return scores


def _item(task: str, s: dict[str, Any]) -> dict[str, Any]:
    metrics = {m: s[m] for m in s.get("metrics", []) if m in s}
    if len(metrics) > 1 and len({json.dumps(v) for v in metrics.values()}) == 1:
        # classification logs one (group, gold, pred) item under every metric: store once
        metrics = {ANY_METRIC: next(iter(metrics.values()))}
    fr = s.get("filtered_resps")
    return {
        "task": task, "filter": s.get("filter", "none"), "doc_id": int(s["doc_id"]),
        "doc_hash": (s.get("doc_hash") or "")[:16] or None, "target": _text(s.get("target")),
        "prediction": _text(fr[0] if isinstance(fr, list) and fr else fr),
        "metrics": metrics,
    }


def collect(out_dir: Path, tasks: list[str]) -> SplitEval:
    """Scores and per-item predictions from an eval folder written by finbench.eval.evaluate."""
    results = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    known = T.discover()
    items = []
    aggs = {}
    for samples in sorted(out_dir.glob("samples_*.jsonl")):
        task = samples.stem.removeprefix("samples_")
        aggs[task] = _aggregation_names(task, known)
        with samples.open(encoding="utf-8") as fh:
            items += [_item(task, json.loads(line)) for line in fh]
    return SplitEval(scores=_scores(results), items=items, aggregations=aggs)


def _text(v: Any) -> str | None:
    return None if v is None else v if isinstance(v, str) else json.dumps(v)
