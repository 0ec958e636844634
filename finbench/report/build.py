"""`finbench report SWEEP`: Markdown + CSV + PNG from a sweep's store.

What it writes (default runs/sweeps/NAME/report/):

- report.md            everything below, with the sweep's settings and how numbers were made
- per_task.csv         recipe, mixture, split, task, filter, metric: seed mean, seed sd, 95% CI
- cocktail_effect.csv  per recipe and target task: every mixture vs the single-task mixture of
                       that task on the same test items (paired bootstrap CI + p, permutation p)
- pair_transfer.csv    score on task A of the pair {A, B} minus the single {A} (test)
- general_regression.csv  general tasks: each mixture minus the untrained base model
- size_matched.csv     each pair A+B minus its size-matched single A@A+B on A's task (design kind
                       matched_singles): more tasks vs more steps
- references.csv       peers' published numbers (finbench/report/peers.yaml); like-for-like rows carry ours
- PNGs                 pair_transfer_<recipe>.png (9x9 heatmap), cocktail_effect_<recipe>.png,
                       general_regression_<recipe>.png (when the sweep has general tasks)

Rigour: a mixture is SELECTED for a target task on the dev split (highest seed-mean dev score)
and REPORTED on test; the best test number in a column is only marked, never selected. Scores are
averaged over seeds; CIs are percentile bootstraps over test items with seeds averaged inside each
resample (finbench.report.stats). Both the format-tolerant and the strict parser are reported, so a
format penalty is visible; API models (sweep `api_models:`, finbench.eval.api_models) are extra rows
of the per-task and format-penalty tables, left out of selection, cocktail effect and heatmaps.
Every paired comparison (cocktail effect, general regression, size-matched) is one family: its
paired-bootstrap p-values get Holm and Benjamini-Hochberg corrections (p_holm, p_bh) together.
Published numbers on exactly our split (peers.yaml `split_match: true`) are printed beside ours, in
their metric, with their source; the others, obtained with other prompts, shots or splits, are a
separate context-only table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from finbench import sweep as SW
from finbench.core.files import write_atomic
from finbench.report.data import Ctx, Data
from finbench.report.parts import CSV_FIELDS, Part, Plan, write_csv
from finbench.report.plan import make_plan, recipe_view
from finbench.report.sections import HEADER, MULTIPLE_COMPARISONS, RECIPE_SECTIONS, REPORT_SECTIONS


def build_report(store_path: Path | str, out_dir: Path | str, *, metric: str = "score",
                 filt: str = "tolerant", resamples: int = 1000, seed: int = 0) -> Path:
    data = Data.load(Path(store_path))
    try:
        return _build(data, Path(out_dir), Ctx(data, metric, filt, resamples, seed))
    finally:
        data.store.close()


def _recipe_sections(plan: Plan, recipe: str) -> Part:
    view, rows = recipe_view(plan, recipe)
    part = Part(rows={"per_task.csv": rows})
    for section in RECIPE_SECTIONS:
        part += section(plan, view)
    return part


def _build(data: Data, out: Path, ctx: Ctx) -> Path:
    """The report as a list of sections, in order (references last: they quote the best scores)."""
    plan = make_plan(data, ctx, out)
    report = Part()
    report += HEADER(plan)
    for recipe in plan.recipes:
        report += _recipe_sections(plan, recipe)
    report += MULTIPLE_COMPARISONS(report)  # after every comparison, before anything is written
    for section in REPORT_SECTIONS:
        report += section(plan)
    for name, fields in CSV_FIELDS.items():
        write_csv(out / name, report.rows.get(name, []), fields)
    path = out / "report.md"
    write_atomic(path, "\n".join(map(str, report.md)) + "\n", newline="")
    return path


def _cmd_report(args: argparse.Namespace) -> int:
    if args.sweep.endswith((".sqlite", ".db")):
        store = Path(args.sweep)
        out = Path(args.out) if args.out else store.parent / "report"
    else:
        sweep = SW.load_sweep(args.sweep)
        store = sweep.store
        out = Path(args.out) if args.out else store.parent / "report"
    path = build_report(store, out, metric=args.metric, filt=args.filter, resamples=args.resamples, seed=args.seed)
    print(f"report: {path}")
    for p in sorted(out.glob("*")):
        if p.suffix in (".csv", ".png"):
            print(f"  {p}")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="Markdown + CSV + PNG report of a sweep's store")
    p.add_argument("sweep", help="sweep name / file, or the path of a sweep store (.sqlite)")
    p.add_argument("--out", default=None, help="output folder (default: next to the store, report/)")
    p.add_argument("--metric", default="score")
    p.add_argument("--filter", default="tolerant", help="parser filter for the headline tables")
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="finbench")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        print(f"finbench: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
