"""`finbench train NAME`: recipe -> mixture -> compiled Axolotl config -> `axolotl train`.

Everything that can be checked cheaply is checked before anything expensive starts: the recipe
(strictly), the hardware (a GPU profile on a machine without one), the mixture spec, the base model
path, and finally the compiled config through Axolotl's own validator. Then:

    runs/NAME/
      recipe.yaml              the recipe as given
      axolotl.yaml             the complete compiled Axolotl config (absolute paths)
      mixture.manifest.json    the manifest of the mixture it trains on
      logs/preprocess.log      `axolotl preprocess` output
      logs/train.log           `axolotl train` output, written by Axolotl itself and appended
                               per attempt (`===== attempt N` header), so a killed attempt's
                               output survives
      output/                  Axolotl's output_dir: checkpoints, final model or LoRA adapter
      output/merged/           LoRA/QLoRA: merged model with the TRAINED tokenizer + chat template
      DONE.json                written last: what was trained, where the model is
      eval/                    `finbench eval NAME` results

A finished run (DONE.json for the same compiled config) is a no-op unless --force. An unfinished
run resumes from its last checkpoint (Axolotl's `auto_resume_from_checkpoints`). A finished or
half-finished run of a DIFFERENT config is refused unless --force, so results never mix. Axolotl
runs in its own process group and dies with `finbench train`, even when that is killed with -9.
Tokenised data is cached under runs/_prepared/<mixture content hash>/ (Axolotl's own cache key
ignores file contents).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import logging
import shutil
import sys
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from finbench.core import settings
from finbench.core.files import write_atomic
from finbench.core.settings import runs_dir
from finbench.train import axolotl as AX
from finbench.train import checks
from finbench.train import recipe as R
from finbench.train.launch import (
    TrainError,
    axolotl_command,
    launcher_command,
    run_logged,
    subprocess_env,
)
from finbench.train.mixture import build_mixture, check_mixture, over_length_line
from finbench.train.schema import BUILTIN_PREFIX

logger = logging.getLogger(__name__)
RUNS_DIR_ENV = settings.RUNS_DIR_ENV
DONE = "DONE.json"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
)


def run_dir_for(recipe: R.Recipe) -> Path:
    return runs_dir() / recipe.name


def prepared_root() -> Path:
    return runs_dir() / "_prepared"


# --------------------------------------------------------------------------------------------
# Planning (everything before the first expensive step)
# --------------------------------------------------------------------------------------------


@dataclass
class Plan:
    recipe: R.Recipe
    run_dir: Path
    mixture: AX.MixtureInfo
    config: dict[str, Any]
    config_sha: str
    command: list[str]
    env: dict[str, str]

    @property
    def config_path(self) -> Path:
        return self.run_dir / "axolotl.yaml"

    @property
    def output_dir(self) -> Path:
        return Path(self.config["output_dir"])

    @property
    def model_dir(self) -> Path:
        """The folder to evaluate: the merged model for adapters, else the trained model."""
        return self.output_dir / "merged" if self.recipe.is_adapter else self.output_dir


def check_hardware(recipe: R.Recipe, gpu: bool | None = None) -> None:
    hw = recipe.hardware
    gpu = AX.has_gpu() if gpu is None else gpu
    if hw["profile"] != "cpu" and not gpu:
        raise R.RecipeError(
            f"{recipe.path}: hardware.profile {hw['profile']!r} needs a CUDA GPU and this "
            "machine has "
            "none (torch.cuda.is_available() is False); use a cpu recipe (tiny_cpu, smol_cpu) here"
        )
    if gpu and hw["attention"] == "flash_attention_2" and not find_spec("flash_attn"):
        raise R.RecipeError(
            f"{recipe.path}: hardware.attention flash_attention_2 needs the flash-attn package "
            "(make install GPU=1 builds it against this torch); or set hardware.attention: sdpa"
        )
    if hw["profile"] == "multi_node" and hw["launcher"] != "ray":
        s = settings.current()  # [settings] per-node launch variables come with the settings
        missing = [v for v, x in (("NODE_RANK", s.node_rank), ("MASTER_ADDR", s.master_addr)) if not x]
        if missing:
            raise R.RecipeError(
                f"{recipe.path}: profile multi_node: set {' and '.join(missing)} (and MASTER_PORT, "
                "default 29500) on every node, then run the same command on each"
            )
    if hw["profile"] == "multi_gpu" and gpu:
        import torch

        want, have = hw.get("gpus_per_node"), torch.cuda.device_count()
        if want and want > have:
            raise R.RecipeError(
                f"{recipe.path}: hardware.gpus_per_node is {want} but this machine has "
                f"{have} GPU(s)"
            )


def plan(recipe: str | R.Recipe, *, gpu: bool | None = None, dry_run: bool = False) -> Plan:
    """Validate everything and compile; builds the mixture and builtin models (cached).

    `recipe` is a `Recipe` value (a sweep run's, derived in memory) or a name or path to load.

    `dry_run` compiles the config the recipe's own hardware would run, on any machine: no
    hardware check (that belongs to the real run), GPU settings kept (DeepSpeed, precision,
    attention) and a hub base model not looked up, so a cluster recipe can be read on a laptop.
    """
    recipe = R.load(recipe)
    for warning in checks.check_references(recipe):
        logger.warning(warning)
    gpu = AX.has_gpu() if gpu is None else gpu
    if dry_run:
        gpu = gpu or recipe.hardware["profile"] != "cpu"
    else:
        check_hardware(recipe, gpu)
    spec = check_mixture(recipe)
    try:
        materialize = not dry_run or recipe.base_model.startswith(BUILTIN_PREFIX)
        base_model = R.resolve_base_model(recipe.base_model, materialize=materialize)
    except R.RecipeError as err:  # its message names the model, not the recipe that asked for it
        raise R.RecipeError(f"{recipe.path}: {err}") from err
    mixture = build_mixture(recipe, spec)
    run_dir = run_dir_for(recipe)
    cfg = AX.compile_config(
        recipe, mixture, run_dir, base_model=base_model, prepared_root=prepared_root(), gpu=gpu
    )
    AX.validate_axolotl(cfg, where=f"{recipe.path} (compiled)")
    text = AX.dump_yaml(cfg)
    return Plan(
        recipe=recipe,
        run_dir=run_dir,
        mixture=mixture,
        config=cfg,
        config_sha=hashlib.sha256(text.encode()).hexdigest(),
        command=launcher_command(recipe, run_dir / "axolotl.yaml"),
        env=subprocess_env(recipe, base_model),
    )


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def read_done(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / DONE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _check_run_folder(p: Plan, force: bool) -> str:
    """'done' (nothing to do), 'fresh' or 'resume'; refuses to mix two configs in one folder."""
    done = read_done(p.run_dir)
    old_cfg = p.config_path.read_text(encoding="utf-8") if p.config_path.is_file() else None
    if force:
        return "fresh"
    if done is not None:
        if done.get("config_sha256") == p.config_sha:
            return "done"
        raise R.RecipeError(
            f"{p.run_dir} holds a finished run of a different config (the recipe, its mixture or "
            "finbench's compiled config changed); pass --force to retrain it from scratch"
        )
    has_ckpt = any(p.output_dir.glob("checkpoint-*"))
    if (
        has_ckpt
        and old_cfg is not None
        and hashlib.sha256(old_cfg.encode()).hexdigest() != p.config_sha
    ):
        raise R.RecipeError(
            f"{p.run_dir} holds checkpoints of a different config; resuming would mix them. "
            "Pass --force to start again"
        )
    return "resume" if has_ckpt else "fresh"


def train(
    recipe: str | R.Recipe, *, force: bool = False, echo: bool = True, prepare_only: bool = False,
    merge: bool = True,
) -> Plan:
    """Train a recipe (a `Recipe` value, or a name or path to load) into its run folder (see the
    module docstring); returns the plan it ran.

    `prepare_only` stops after `axolotl preprocess` (the tokenised, packed dataset is cached).
    `merge=False` keeps a LoRA run as its adapter only (sweeps: hundreds of runs of one base
    model would otherwise each write a full model); evaluation then applies the adapter itself.
    """
    p = plan(recipe)
    state = _check_run_folder(p, force)
    if state == "done":
        print(f"{p.recipe.name}: already trained ({p.run_dir / DONE}); --force retrains")
        return p
    if state == "fresh":
        for stale in (p.output_dir, p.run_dir / DONE, p.run_dir / "eval"):
            if stale.is_dir():
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
    write_atomic(p.run_dir / "recipe.yaml", p.recipe.text())
    write_atomic(p.config_path, AX.dump_yaml(p.config))
    write_atomic(p.run_dir / "mixture.manifest.json", Path(p.mixture.manifest).read_text("utf-8"))
    action = "preparing data" if prepare_only else "resuming" if state == "resume" else "training"
    print(f"{p.recipe.name}: {action} in {p.run_dir}")
    _preprocess(p, echo)
    if prepare_only:
        print(f"{p.recipe.name}: dataset prepared in {p.config['dataset_prepared_path']}")
        return p
    run_logged(p.command, p.run_dir / "logs" / "train.log", p.env, echo=echo)
    merged = p.recipe.is_adapter and merge
    if merged:
        merge_adapter(p, echo=echo)
    model_dir = p.output_dir if p.recipe.is_adapter and not merged else p.model_dir
    _write_done(p, model_dir, merged)
    print(f"{p.recipe.name}: done; model in {model_dir}")
    return p


def _preprocess(p: Plan, echo: bool) -> None:
    """Tokenise once up front (on many GPUs every rank would otherwise race to do it). Runs that
    differ only in seed (a sweep's seeds) would load the same cache anyway (Axolotl's cache key
    ignores the seed), so the preprocess step is skipped for them; a marker records it."""
    marker = _prepared_marker(p.config)
    if marker.is_file():
        print(f"{p.recipe.name}: tokenised data already prepared ({marker.name})")
        return
    preprocess = [*axolotl_command(), "preprocess", str(p.config_path)]
    run_logged(preprocess, p.run_dir / "logs" / "preprocess.log", p.env, echo=echo)
    write_atomic(marker, json.dumps({"config": str(p.config_path)}) + "\n")


def _write_done(p: Plan, model_dir: Path, merged: bool) -> None:
    """DONE.json, written last: what was trained and where the model is."""
    done = {
        "recipe": p.recipe.name,
        "recipe_path": str(p.recipe.path),
        "config_sha256": p.config_sha,
        "mixture_hash": p.mixture.content_hash,
        "base_model": p.config["base_model"],
        "method": p.recipe.method,
        "model_dir": str(model_dir),
        "adapter_dir": str(p.output_dir) if p.recipe.is_adapter else None,
        "merged": merged,
        "finished_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "train_loss": loss_history(p.output_dir),
    }
    write_atomic(p.run_dir / DONE, json.dumps(done, indent=2) + "\n")


# Compiled-config keys that never reach Axolotl's tokenised dataset.
NOT_IN_PREPARED_DATA = ("seed", "output_dir")


def _prepared_marker(config: dict[str, Any]) -> Path:
    """Marker of a finished `axolotl preprocess` for this config (minus the seed), in its cache."""
    rest = {k: v for k, v in config.items() if k not in NOT_IN_PREPARED_DATA}
    key = hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(config["dataset_prepared_path"]) / f".finbench-prepared-{key}.json"


def merge_adapter(p: Plan, *, echo: bool = True) -> Path:
    """`axolotl merge-lora`, then the TRAINED tokenizer (and chat template) replaces the base's.

    Axolotl's merge writes the base model's tokenizer files next to the merged weights; the run's
    tokenizer (saved by `axolotl train` in output_dir) is the one the model was trained with.
    """
    merged = p.output_dir / "merged"
    if merged.exists():
        shutil.rmtree(merged)
    cmd = [*axolotl_command(), "merge-lora", str(p.config_path), f"--lora-model-dir={p.output_dir}"]
    run_logged(cmd, p.run_dir / "logs" / "merge.log", p.env, echo=echo)
    if not (merged / "config.json").is_file():
        raise TrainError(
            f"axolotl merge-lora wrote no model to {merged}; see {p.run_dir / 'logs/merge.log'}"
        )
    from transformers import AutoTokenizer

    trained = AutoTokenizer.from_pretrained(p.output_dir, trust_remote_code=False)
    for name in TOKENIZER_FILES:
        (merged / name).unlink(missing_ok=True)
    trained.save_pretrained(merged)
    return merged


def loss_history(output_dir: Path) -> list[dict[str, float]]:
    """[{step, loss}] from the trainer state of the last checkpoint (or the final state)."""
    candidates = sorted(
        output_dir.glob("checkpoint-*/trainer_state.json"),
        key=lambda p: (
            int(p.parent.name.split("-")[-1]) if p.parent.name.split("-")[-1].isdigit() else -1
        ),
    )
    state_file = output_dir / "trainer_state.json"
    path = state_file if state_file.is_file() else (candidates[-1] if candidates else None)
    if path is None:
        return []
    state = json.loads(path.read_text(encoding="utf-8"))
    return [
        {"step": int(h["step"]), "loss": float(h["loss"])}
        for h in state.get("log_history", [])
        if "loss" in h
    ]


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    if args.dry_run:
        p = plan(args.recipe, dry_run=True)
        print(AX.dump_yaml(p.config), end="")
        print(f"# run folder: {p.run_dir}\n# command: {' '.join(p.command)}")
        print(f"# {over_length_line(p.config, p.mixture.jsonl)}")
        if p.recipe.hardware["profile"] != "cpu" and not AX.has_gpu():
            print(f"# compiled for hardware.profile {p.recipe.hardware['profile']!r}; this machine has no CUDA GPU, "
                  "so `finbench train` itself would stop here")
        return 0
    try:
        train(args.recipe, force=args.force, echo=not args.quiet, prepare_only=args.prepare_only)
    except TrainError as err:
        print(f"finbench: error: {err}", file=sys.stderr)
        return 1
    return 0


def _cmd_recipes(args: argparse.Namespace) -> int:
    gpu = AX.has_gpu()
    for name, path in R.available().items():
        try:
            recipe = R.load(path)
            hw = recipe.hardware
            status = f"{recipe.method:<5} {hw['profile']:<10} {recipe.data['base_model']}"
            if hw["profile"] != "cpu" and not gpu:
                status += "  (needs a GPU)"
        except R.RecipeError as err:
            status = f"INVALID: {err}"
        print(f"{name:<24} {status}")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a recipe with Axolotl into runs/NAME/")
    p.add_argument("recipe", help="recipe name (recipes/NAME.yaml) or path to a recipe file")
    p.add_argument("--force", action="store_true", help="retrain even if the run is finished")
    p.add_argument("--dry-run", action="store_true", help="validate, compile and print the config")
    p.add_argument("--quiet", action="store_true", help="write Axolotl's output only to the logs")
    p.add_argument(
        "--prepare-only", action="store_true", help="stop after `axolotl preprocess` (tokenise)"
    )
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("recipes", help="list recipes with their method and hardware profile")
    p.set_defaults(func=_cmd_recipes)


def main(argv: list[str] | None = None) -> int:
    """`python -m finbench.train.run NAME` (the same handlers `finbench train` / `recipes` use)."""
    parser = argparse.ArgumentParser(prog="finbench")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as err:  # RecipeError, MixtureError: one clear line, before any training
        print(f"finbench: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
