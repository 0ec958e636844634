"""Why a score moved: one computed line per task whose score fell after training (`make demo`).

A small model trained for a few steps often answers one label for everything; on a task that was
not in the training mixture that label is usually the most common answer of a trained task with
the same labels (FPB's 'neutral' carried over to FiQA-SA). The line is read from lm-eval's
per-sample logs (`samples_<task>.jsonl`: each classification sample logs its (group, gold,
prediction) item under every metric) and from the training mixture's answers, never canned.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

Item = tuple[str, str, str]  # (group, gold, prediction), as eval_plugins.metrics logs it
DROP = 0.05  # a score falling by more than this after training needs a word
COLLAPSE = 0.8  # one label answered for at least this share of the rows


def scored_items(out_dir: Path, task: str, filt: str = "tolerant") -> dict[int, Item]:
    """{doc_id: (group, gold, prediction)} of `task` under filter `filt`, from lm-eval's per-sample
    log in an eval folder (the demo pairs base and tuned rows by doc_id)."""
    items = {}
    with (Path(out_dir) / f"samples_{task}.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            s = json.loads(line)
            if s.get("filter", filt) != filt:
                continue
            item = next((s[m] for m in s.get("metrics", []) if isinstance(s.get(m), list) and len(s[m]) == 3),
                        None)
            if item is not None:
                items[int(s["doc_id"])] = (str(item[0]), str(item[1]), str(item[2]))
    return items


def read_items(out_dir: Path, task: str, filt: str = "tolerant") -> list[Item]:
    """The (group, gold, prediction) items of `task` under filter `filt` in an eval folder."""
    return list(scored_items(out_dir, task, filt).values())


def training_answers(jsonl: Path, labels: Sequence[str]) -> dict[str, Counter]:
    """{training task: Counter of its answers that name exactly one of `labels`} in a mixture file."""
    # a label as a whole phrase ('no' not in 'know'; topic labels have several words)
    patterns = {lab: re.compile(rf"(?<![a-z]){re.escape(lab.lower())}(?![a-z])") for lab in labels}
    out: dict[str, Counter] = {}
    with Path(jsonl).open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            answer = next((m["content"] for m in reversed(row["messages"]) if m["role"] == "assistant"), "")
            named = [lab for lab, pat in patterns.items() if pat.search(str(answer).lower())]
            if len(named) == 1:
                out.setdefault(str(row.get("task", "?")), Counter())[named[0]] += 1
    return out


def surprising(base: float, tuned: float) -> bool:
    """A drop worth explaining: more than DROP, or to less than half the base score."""
    return base - tuned > DROP or (base > 0 and tuned < base / 2)


def _counts(values: Iterable[str], top: int = 4) -> str:
    """'12 positive, 10 negative, ...': the `top` most common, then how many labels are left out."""
    ranked = sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))
    more = f", {len(ranked) - top} more labels" if len(ranked) > top else ""
    return ", ".join(f"{n} {lab}" for lab, n in ranked[:top]) + more


def _prior_source(task: str, label: str, trained: Mapping[str, Counter]) -> str:
    """Where a collapsed label comes from, from the training answers."""
    own = trained.get(task)
    if own:
        share = own[label] / sum(own.values())
        return (f"'{label}' is {own[label]}/{sum(own.values())} ({share:.0%}) of {task}'s own training "
                "answers: the model learned the label prior, not yet the text")
    holders = {t: c for t, c in trained.items() if c[label]}
    if not holders:
        return f"{task} had no training rows and no trained task answers '{label}'"
    src = max(holders, key=lambda t: (holders[t][label] / sum(holders[t].values()), t))
    c = holders[src]
    return (f"{task} had no training rows; '{label}' is {c[label]}/{sum(c.values())} "
            f"({c[label] / sum(c.values()):.0%}) of {src}'s training answers: a label prior carried over "
            f"from {src}, not broken training")


def explain(task: str, base: float, tuned: float, base_items: Sequence[Item], tuned_items: Sequence[Item],
            trained: Mapping[str, Counter], missing: str = "missing") -> str | None:
    """One line on why `task` went from `base` to `tuned`, or None when the move is unsurprising."""
    if not surprising(base, tuned) or not tuned_items:
        return None
    n = len(tuned_items)
    head = f"{task}: {base:.3f} -> {tuned:.3f}:"
    preds = Counter(p for _, _, p in tuned_items)
    golds = f"gold: {_counts(g for _, g, _ in tuned_items)}"
    before = Counter(p for _, _, p in base_items)
    if preds[missing] / n >= COLLAPSE:
        return (f"{head} after training {preds[missing]}/{n} answers name no label (before: {before[missing]}/"
                f"{len(base_items)}); the trained model stopped answering in the label format")
    answered = {lab: c for lab, c in preds.items() if lab != missing}
    top, k = max(answered.items(), key=lambda kv: (kv[1], kv[0]))
    if k / sum(answered.values()) >= COLLAPSE:  # one label for (nearly) every answer given
        none = f" and {preds[missing]} name no label" if preds[missing] else ""
        return (f"{head} after training {k}/{n} answers are '{top}'{none} ({golds}; before training: "
                f"{_counts(p for _, _, p in base_items)}) - {_prior_source(task, top, trained)}")
    right = sum(g == p for _, g, p in tuned_items)
    right0 = sum(g == p for _, g, p in base_items)
    shift = Counter((g, p) for _, g, p in tuned_items if g != p) - Counter((g, p) for _, g, p in base_items if g != p)
    worst = ""
    if shift:
        (g, p), d = max(shift.items(), key=lambda kv: (kv[1], kv[0]))
        worst = f"; most new errors: gold '{g}' answered '{p}' (+{d})"
    return (f"{head} correct answers {right0}/{len(base_items)} -> {right}/{n}, answers now {_counts(preds)} "
            f"({golds}){worst}")
