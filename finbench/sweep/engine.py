"""Multi-LoRA serving: the LoRA runs of one base model are scored through one vLLM engine.

Phase 1 trains them (any executor; a run's DONE.json is its record); phase 2 runs one job per
group (a `RunSpec` whose `group` holds the member runs) that starts one engine and scores every
run of the group (finbench.eval.engines.LoRAEngine).
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from finbench.data import tasks as T
from finbench.eval import engines as EN
from finbench.sweep.jobs import train_job, trained_target
from finbench.sweep.model import RunSpec, Sweep
from finbench.sweep.scoring import score_target
from finbench.sweep.store import Store
from finbench.train import recipe as R

Log = Callable[[str], None]


def _cpu_vllm_refuses(sweep: Sweep, log: Log) -> bool:
    """vLLM's CPU build serves LoRA for generation only (FIELD-NOTES: loglikelihood + LoRA fails)."""
    import torch  # heavy: only when vLLM is the backend

    if torch.cuda.is_available():
        return False
    known = T.discover()
    tasks = list(sweep.eval["tasks"]) + list(sweep.eval.get("general", []))
    if any(known.get(t) is None or known[t].config.get("output_type") != "generate_until" for t in tasks):
        log("share_engine: auto: vLLM on CPU serves LoRA for generation only; scoring runs one by one")
        return True
    return False


def lora_groups(sweep: Sweep, store: Store, *, log: Log = print) -> list[list[RunSpec]]:
    """The unfinished LoRA runs that share an engine, grouped by base model and tokenizer setup.

    `share_engine: auto` shares when the sweep's backend resolves to vLLM here and at least two
    runs share a base model; not on vLLM's CPU build when a task is multiple choice.
    """
    if sweep.share_engine is False or sweep.job != "train_eval" or sweep.eval["backend"] == "hf":
        return []
    if sweep.share_engine == "auto" and (
        EN.choose_backend(sweep.eval["backend"]) != "vllm" or _cpu_vllm_refuses(sweep, log)
    ):
        return []
    status = store.status(r.key for r in sweep.runs)
    groups: dict[str, list[RunSpec]] = {}
    for spec in sweep.runs:
        if spec.job != "train_eval" or spec.api or status[spec.key] == "done":
            continue
        # the mapping the sweep validated when it loaded the recipe: nothing is read again
        recipe = R.from_mapping(spec.recipe_path, spec.recipe_data) if spec.recipe_data else R.load(spec.recipe_path)
        if recipe.method != "lora":
            continue
        d = recipe.data
        gkey = json.dumps([recipe.base_model, d.get("chat_template"), d.get("special_tokens"), d.get("tokens")],
                          sort_keys=True, default=str)
        groups.setdefault(gkey, []).append(spec)
    minimum = 1 if sweep.share_engine is True else 2
    return [g for g in groups.values() if len(g) >= minimum]


def group_spec(specs: list[RunSpec]) -> RunSpec:
    """One spec that carries a whole group (so any executor can run it as one job)."""
    return replace(specs[0], group=tuple(specs))


def lora_group_job(spec_dict: dict[str, Any]) -> dict[str, Any]:
    """Phase 2: score every trained run of one group through one vLLM engine.

    Returns {"results": {key: run result}, "errors": {key: message}}. If vLLM cannot serve LoRA
    for this model, each run is scored on its own (merged model), as without sharing.
    """
    specs = RunSpec.from_dict(spec_dict).members
    t_start = time.perf_counter()
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    members = []
    for spec in specs:
        try:
            members.append((spec, *trained_target(spec)))
        except Exception as err:
            errors[spec.key] = f"{type(err).__name__}: {err}"
    engine = None
    if members:
        try:
            engine = EN.LoRAEngine(members[0][1], max_lora_rank=max(t.lora_r or 16 for _, t, _ in members),
                                  batch_size=members[0][0].eval["batch_size"])
        except Exception as err:  # the model has no LoRA support in vLLM: score one by one
            print(f"share_engine: vLLM cannot serve these adapters ({type(err).__name__}: {err}); "
                  "scoring each run on its own", file=sys.stderr)
    engine_s = round(time.perf_counter() - t_start, 2)
    for spec, target, info in members:
        t0 = time.perf_counter()
        try:
            lm = engine.serve(target) if engine else None
            info["engine"] = {"shared": engine is not None, "runs": len(members), "start_s": engine_s}
            results[spec.key] = score_target(spec, target, info, t0, lm=lm).to_dict()
        except Exception as err:
            errors[spec.key] = f"{type(err).__name__}: {err}\n{traceback.format_exc()}"
    return {"key": spec_dict["key"], "results": results, "errors": errors,
            "seconds": round(time.perf_counter() - t_start, 2)}


class PhaseStore:
    """The store as the executors see it during the shared-engine phases.

    Status and failures go to the real store (for every member of a group job); results go to
    `on_result`, because a training result or a group result is not one run's record.
    """

    def __init__(self, store: Store, on_result: Callable[[RunSpec, dict[str, Any]], None], *,
                 starts: bool = True) -> None:
        self.store, self.on_result, self.starts = store, on_result, starts

    @staticmethod
    def _members(spec: RunSpec) -> list[RunSpec]:
        return spec.members

    def status(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        return self.store.status(keys)

    def mark_running(self, spec: RunSpec) -> None:
        if self.starts:  # the scoring phase continues the attempt the training phase started
            for m in spec.members:
                self.store.mark_running(m)

    def mark_failed(self, spec: RunSpec, error: str) -> None:
        for m in spec.members:
            self.store.mark_failed(m, error)

    def record(self, spec: RunSpec, result: dict[str, Any]) -> None:
        self.on_result(spec, result)


_PhaseStore = PhaseStore  # the name tests and older code use
Execute = Callable[[Sweep, Any, Callable[[dict[str, Any]], dict[str, Any]]], dict[str, int]]


def run_shared(groups: list[list[RunSpec]], sweep: Sweep, store: Store, execute: Execute,
               log: Log = print, group_job: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
               ) -> dict[str, int]:
    """Train the grouped runs, then score each group through one engine; record each run."""
    counts = {"done": 0, "failed": 0, "skipped": 0}
    trained: set[str] = set()
    runs = [s for g in groups for s in g]
    log(f"share_engine: {len(runs)} LoRA run(s) in {len(groups)} group(s): training, then one vLLM engine per group")
    execute(replace(sweep, runs=runs), PhaseStore(store, lambda spec, _r: trained.add(spec.key)), train_job)
    heads = [group_spec([s for s in g if s.key in trained]) for g in groups if any(s.key in trained for s in g)]
    counts["failed"] += len(runs) - len(trained)

    def on_group(head: RunSpec, result: dict[str, Any]) -> None:
        by_key = {m.key: m for m in head.members}
        for key, res in result["results"].items():
            store.record(by_key[key], res)
            counts["done"] += 1
        for key, error in result["errors"].items():
            store.mark_failed(by_key[key], error)
            counts["failed"] += 1
            log(f"  failed {by_key[key].label}: {error.splitlines()[0][:300]}")

    if heads:
        execute(replace(sweep, runs=heads), PhaseStore(store, on_group, starts=False), group_job or lora_group_job)
    return counts
