"""Sweeps: recipes x mixtures x seeds, run by a real scheduler, results in one SQLite store.

A sweep file (`recipes/sweeps/NAME.yaml`, or any .yaml path) names

    description: free text
    recipes: [phi3_cocktail, llama31_8b_cocktail]    # recipes/NAME.yaml ("models")
    mixtures: {design: paper55}                      # a design (mixtures/designs/NAME.yaml) ...
    # mixtures: [paper55/fpb, paper55/all, demo]     # ... or a list of mixture names / .yaml paths
    # mixtures: {design: paper55, include: [demo]}   # ... or both
    seeds: [1, 2, 3]                                 # training seeds (the recipe's `seed`)
    base_eval: true          # also score each recipe's untrained base model (general regression)
    eval:
      tasks: [fpb, fiqa_sa, headline]                # finance target tasks (lm-eval names)
      general: []                                    # general-ability tasks (regression check)
      splits: [dev, test]                            # dev selects mixtures, test reports them
      limit: null                                    # rows per task (null: all)
      backend: auto                                  # auto | hf | vllm
      batch_size: auto
      num_fewshot: null
    job: train_eval          # train_eval (Axolotl + lm-eval) | eval_only (base model, no training)
    ray: {num_cpus: 1, num_gpus: 0}                  # resources per run on a Ray cluster
    slurm: {partition: gpu, time: "04:00:00", gpus: 1, max_parallel: 16}  # per array task (executors/slurm.py)
    store: runs/sweeps/NAME/sweep.sqlite             # default (under FINBENCH_RUNS_DIR when set); a relative store: is under the project root
    share_engine: auto       # auto | true | false: one vLLM engine for all LoRA runs of a base model
    api_models:                                      # optional: API models scored as extra rows
      - name: gpt-4o                                 # report label "gpt-4o (API)"
        model: openai-chat-completions               # | local-chat-completions | local-completions
        model_args: {model: gpt-4o-2024-08-06, num_concurrent: 4, max_retries: 3}
        # base_url (local-*: the full .../v1/chat/completions or .../v1/completions URL)
        # gen_kwargs: {max_gen_toks: 64}              # optional answer budget for verbose models

An API model is ONE run (job api_eval, mixture `api`, not per seed: nothing is trained and
decoding is greedy), scored by lm-eval's own API backend with the chat template applied, on the
same tasks, splits and tolerant/strict parsers, and stored like any run. Keys come from the
environment (OPENAI_API_KEY), never from the sweep file: `api_key` in model_args is refused.
Chat backends have no log-probabilities, so `_mc` tasks are refused for them. See
finbench.eval.api_models.

Each run is (recipe, mixture, seed) and is keyed by a content hash of the recipe file's bytes, the
mixture's validated spec, the seed, the job and the eval settings. A run is written to the store
in ONE transaction with all its scores and per-item predictions when it finishes, so a sweep that
is killed loses only the runs in flight: `finbench sweep run` again skips the finished keys and
re-runs the rest (a run's `attempts` counts how often it was started).

Trained LoRA runs keep their adapter only (no merged copy: 660 merged 7B models would need
~10 TB); scoring applies the adapter (hf: merged in memory; vLLM: served as a LoRA request).
With the vLLM backend, the LoRA runs of one base model are scored through ONE engine
(`share_engine`): they are trained first, then one job per base model starts an engine and scores
every run as a LoRA request (see engine.py).

Layout: model.py (RunSpec, RunResult, Sweep), load.py (the sweep file), store.py (SQLite),
scoring.py (the split loop shared with API models), jobs.py (train + score one run), engine.py
(shared vLLM engine), executors/ (one module per executor behind `Executor`, and REGISTRY),
run.py (run_sweep), cli.py.

Executors: `local` runs the pending runs one after another in this process; `ray` submits them as
Ray tasks (`ray.init()`: a local cluster, or `--address`/RAY_ADDRESS for an existing one). Only
the driver writes to the store; Ray workers return their results. On a real cluster, submit the
driver itself with Ray Jobs:

    ray job submit --address http://HEAD:8265 --working-dir . -- finbench sweep run SWEEP --executor ray

`slurm` submits the pending runs as ONE `sbatch` job array (one task per run, resources from the
sweep's `slurm:` block: partition, account, time, cpus_per_task, gpus, mem, max_parallel, extra);
each task writes its result to a spool folder beside the store, and the driver, polling `squeue`
(no accounting database needed), records them. A killed driver resumes: results already on disk
are recorded and a still-queued array job is adopted, never resubmitted. `sbatch`, `scontrol ping`
and `sbatch --test-only` of the `slurm:` options are checked before anything is submitted. Run
the driver where `sbatch` works, in a project folder the compute nodes share. See
executors/slurm.py.
"""

from __future__ import annotations

from finbench.sweep import engine
from finbench.sweep.cli import add_cli, main
from finbench.sweep.engine import PhaseStore, _PhaseStore, group_spec, lora_group_job, lora_groups, run_shared
from finbench.sweep.executors import REGISTRY
from finbench.sweep.executors.base import Executor, pending
from finbench.sweep.executors.local import run_local
from finbench.sweep.executors.ray import check_reachable, connect_ray, run_ray
from finbench.sweep.jobs import run_job, run_recipe, train_job
from finbench.sweep.load import expand, load_sweep, sweep_path
from finbench.sweep.model import (
    ANY_METRIC,
    BASE,
    GROUP,
    RunResult,
    RunSpec,
    SplitEval,
    Sweep,
    SweepError,
    eval_tasks,
    run_key,
)
from finbench.sweep.run import driver_lock, pending_count, run_sweep
from finbench.sweep.scoring import collect, evaluate_split, score_splits
from finbench.sweep.store import Store

__all__ = [
    "eval_tasks",
    "ANY_METRIC", "BASE", "GROUP", "REGISTRY", "Executor", "PhaseStore", "RunResult", "RunSpec", "SplitEval",
    "Store", "Sweep", "SweepError", "_PhaseStore", "add_cli", "check_reachable", "collect", "connect_ray",
    "driver_lock", "engine", "evaluate_split", "expand", "group_spec", "load_sweep",
    "lora_group_job", "lora_groups", "main", "pending", "pending_count", "run_job", "run_key", "run_local",
    "run_ray", "run_recipe", "run_shared", "run_sweep", "score_splits", "sweep_path", "train_job",
]
