"""FinBen (PIXIU / Open FinLLM Leaderboard) English datasets: one loader for the shared hub layout.

Every `tasks/finben_*` folder names this loader (`custom_dataset: !function finbench.data.finben_load.load`)
and declares, in `metadata.source`, what the evidence says about its hub copy (see
docs/finben.md; each fact re-checked against its cited source):

- `hub: {path, revision}`: the hub id PIXIU loads (The-FinAI/PIXIU src/tasks/flare.py @da45ac46);
- `splits`: the hub's own split names (`valid` for some sets, `validation` for others: never
  hard-coded here), keyed by the role lm-eval gives them;
- `columns`: the columns the evidence shows; `exact_columns: true` when a card or printed row gives
  the full schema (then any other column set stops the load), false when only the columns PIXIU
  reads are known (those must be present);
- `rows`: the expected count per hub split (`finbench data check` compares them);
- `gated`: set for gated copies; a refused load names the gate and how to accept it.

Rows are handed to lm-eval as the hub serves them, in the hub's order, plus `finben_score`
naming the task's leaderboard metric (the `score` metric reports that one) and, for sequence
labelling, `finben_tags` (the tags PIXIU accepts in an answer, `metadata.finben.tags`).
FinBen's own `query` is the prompt and its `answer` the target, for evaluation and training alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from finbench.data import raw as D

GATE_HINT = (
    "accept its terms at https://huggingface.co/datasets/{path} with your account, then log in "
    "(`huggingface-cli login`) or set HF_TOKEN"
)
_PLACEHOLDER = re.compile(r"\{answer(\d+)\}")


def _gate_refused(err: BaseException) -> bool:
    seen = 0
    while err is not None and seen < 10:
        text = f"{type(err).__name__} {err}".lower()
        if "gatedrepo" in text or "gated" in text or " 401" in text or " 403" in text:
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def _load_hub(hub: Mapping[str, Any], gated: Any) -> Any:
    from finbench.data import hub as H
    path, revision = hub["path"], str(hub.get("revision", "main"))
    try:
        return H.load_dataset(path, revision=revision, split=None)
    except D.DataError as err:
        if gated and _gate_refused(err):
            raise D.DataError(
                f"hub dataset {path} is gated ({gated}): {GATE_HINT.format(path=path)}"
            ) from err
        raise


def check_layout(ds: Mapping[str, Any], source: Mapping[str, Any]) -> None:
    """Splits and columns as the evidence declares them, else one line naming what differs."""
    path = source["hub"]["path"]
    expected = sorted(set(source["splits"].values()))
    found = sorted(ds)
    if found != expected:
        raise D.DataError(f"hub dataset {path}: splits {found}, expected {expected} (task metadata.source.splits)")
    want = list(source["columns"])
    exact = bool(source.get("exact_columns", True))
    for split in expected:
        cols = list(ds[split].column_names)
        bad = set(cols) != set(want) if exact else not set(want) <= set(cols)
        if bad:
            rule = "expected columns" if exact else "expected at least columns"
            raise D.DataError(f"hub dataset {path}, split {split!r}: {rule} {sorted(want)}, found {sorted(cols)}")


def fill_history(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ConvFinQA: `{answerN}` in a later turn's query is turn N's answer. PIXIU fills it with the
    model's own earlier answer (`ConvFinQA.reformulate_turn_req`, a multi-turn replay stock lm-eval
    cannot do); here it is the gold answer of turn N of the same dialogue (teacher forcing)."""
    answers = {(r.get("dialogue_id"), r.get("turn")): str(r["answer"]) for r in rows}

    def fill(row: dict[str, Any]) -> dict[str, Any]:
        def sub(m: re.Match) -> str:
            return answers.get((row.get("dialogue_id"), int(m.group(1))), m.group(0))

        return dict(row, query=_PLACEHOLDER.sub(sub, row["query"]))

    return [fill(r) for r in rows]


def load(source: Mapping[str, Any], finben: Mapping[str, Any] | None = None, **_: Any):
    """The hub copy as a DatasetDict keyed by the hub's split names (lm-eval's `custom_dataset`)."""
    import datasets

    finben = dict(finben or {})
    ds = _load_hub(source["hub"], source.get("gated"))
    check_layout(ds, source)
    sink = D._UPSTREAM_COUNTS.get()
    if sink is not None:  # `finbench data check` compares these with `source.rows`
        sink[source["hub"]["path"]] = {split: len(ds[split]) for split in sorted(ds)}
    out = {}
    for split in sorted(ds):
        rows = ds[split].to_list()
        if not rows:
            raise D.DataError(f"hub dataset {source['hub']['path']}, split {split!r}: no rows")
        if finben.get("fill_history"):
            rows = fill_history(rows)
        for row in rows:
            row["finben_score"] = str(finben.get("score", ""))
            if "tags" in finben:  # sequence labelling: PIXIU's LMAP keys (valid answer tags)
                row["finben_tags"] = [str(t) for t in finben["tags"]]
        out[split] = datasets.Dataset.from_list(rows)
    return datasets.DatasetDict(out)
