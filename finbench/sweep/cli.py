"""`finbench sweep plan|run SWEEP` (also `python -m finbench.sweep plan|run SWEEP`)."""

from __future__ import annotations

import argparse
import json
import sys

from finbench.core import validate as V
from finbench.sweep.executors import REGISTRY
from finbench.sweep.load import load_sweep
from finbench.sweep.run import run_sweep
from finbench.sweep.store import Store


def _cmd_plan(args: argparse.Namespace) -> int:
    sweep = load_sweep(args.sweep)
    status = {}
    if sweep.store.is_file():
        with Store(sweep.store) as store:
            status = store.status()
    if args.json:
        print(json.dumps([{**r.to_dict(), "status": status.get(r.key, "pending")} for r in sweep.runs],
                         indent=1))
        return 0
    for r in sweep.runs:
        seed = "-" if r.api else r.seed  # API models are not trained: no seed
        data = "" if r.data_seed is None else f" data_seed={r.data_seed} mixture_sha={r.mixture_sha[:12]}"
        print(f"{r.key}  {status.get(r.key, 'pending'):<8} {r.recipe:<22} {r.mixture:<36} seed={seed} job={r.job}{data}")
    done = sum(status.get(r.key) == "done" for r in sweep.runs)
    print(f"# {len(sweep.runs)} runs = {len(sweep.recipes)} recipes x "
          f"{len(sweep.mixtures)} mixtures x {len(sweep.seeds)} seeds"
          f"{' + 1 base-model run per recipe' if sweep.base_eval else ''}"
          f"{f' + {len(sweep.api_models)} API-model run(s)' if sweep.api_models else ''}; "
          f"{done} done; store {sweep.store}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    counts = run_sweep(args.sweep, args.executor, address=args.address)
    print(f"# done {counts['done']}, failed {counts['failed']}, skipped (finished before) {counts['skipped']}")
    return 1 if counts["failed"] else 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="plan and run sweeps (recipes/sweeps/*.yaml)")
    ssub = p.add_subparsers(dest="sweep_command", required=True)
    pl = ssub.add_parser("plan", help="list the runs of a sweep with their keys and status")
    pl.add_argument("sweep", help="sweep name (recipes/sweeps/NAME.yaml) or path")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=_cmd_plan)
    r = ssub.add_parser("run", help="run the unfinished runs of a sweep")
    r.add_argument("sweep")
    r.add_argument("--executor", choices=list(REGISTRY), default="local")
    r.add_argument("--address", default=None, help="Ray cluster address (default: RAY_ADDRESS or a local cluster)")
    r.set_defaults(func=_cmd_run)


def main(argv: list[str] | None = None) -> int:
    """`python -m finbench.sweep plan|run SWEEP` (the handlers `finbench sweep` uses)."""
    parser = argparse.ArgumentParser(prog="finbench")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sweep", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except ValueError as err:  # SweepError, RecipeError, MixtureError: one clear line
        print(f"finbench: error: {V.one_line(str(err))}", file=sys.stderr)
        return 2
