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
import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from finbench import mixtures as M
from finbench.core import settings
from finbench.core import validate as V
from finbench.core.files import is_file, write_atomic
from finbench.core.settings import runs_dir
from finbench.train import recipes as R

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


class TrainError(RuntimeError):
    """A training subprocess failed; the message names the command and its log."""


def run_dir_for(recipe: R.Recipe) -> Path:
    return runs_dir() / recipe.name


def prepared_root() -> Path:
    return runs_dir() / "_prepared"


# --------------------------------------------------------------------------------------------
# Mixture: the one integration point with finbench.mixtures
# --------------------------------------------------------------------------------------------


def check_mixture(recipe: R.Recipe) -> Any:
    """Parse the recipe's mixture spec (cheap); a missing or bad mixture fails here, early."""
    ref = recipe.data["mixture"]
    if ref.endswith(".jsonl"):
        path = _relative_to_recipe(recipe, ref)
        if not is_file(path):
            raise R.RecipeError(f"{recipe.path}: mixture {V.short(ref)}: no such file ({V.short(str(path))})")
        return path
    if ref.endswith((".yaml", ".yml")):
        ref = str(_relative_to_recipe(recipe, ref))
    try:
        mix = M.load_mixture(ref)
    except M.MixtureError as err:
        raise R.RecipeError(f"{recipe.path}: mixture {V.short(recipe.data['mixture'])}: {err}") from err
    seed = recipe.data.get("mixture_seed")  # a sweep's `data_seed: run`: rows drawn with the run seed
    return mix if seed is None else dataclasses.replace(mix, seed=seed)


def _relative_to_recipe(recipe: R.Recipe, ref: str) -> Path:
    path = Path(ref).expanduser()
    return path if path.is_absolute() else (recipe.path.parent / path).resolve()


def build_mixture(recipe: R.Recipe, spec: Any | None = None) -> R.MixtureInfo:
    """Build (or reuse) the recipe's mixture. A ready-made chat .jsonl is hashed and used as is."""
    spec = spec if spec is not None else check_mixture(recipe)
    if isinstance(spec, Path):
        return _jsonl_mixture(recipe, spec)
    result = M.build(spec, runs_dir() / "mixtures")
    return R.MixtureInfo(
        jsonl=result.jsonl,
        manifest=result.manifest,
        content_hash=result.summary["content_hash"][:16],
        n_datasets=len(spec.components),
    )


def _jsonl_mixture(recipe: R.Recipe, path: Path) -> R.MixtureInfo:
    digest = hashlib.sha256()
    tasks: Counter[str] = Counter()
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            digest.update(line)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                messages = row["messages"]
                if not isinstance(messages, list) or not all(
                    isinstance(m, dict) and {"role", "content"} <= m.keys() for m in messages
                ):
                    raise TypeError("messages must be a list of {role, content}")
            except (ValueError, KeyError, TypeError) as err:
                raise R.RecipeError(
                    f"{path}:{lineno}: expected a JSON object with "
                    "messages: [{role, content}, ...] "
                    f"({type(err).__name__}: {err})"
                ) from err
            tasks[str(row.get("task", "unknown"))] += 1
    if not tasks:
        raise R.RecipeError(f"{path}: mixture file has no rows")
    content_hash = digest.hexdigest()[:16]
    manifest = {
        "mixture": path.stem,
        "file": str(path),
        "content_hash": content_hash,
        "rows": sum(tasks.values()),
        "components": {t: {"rows_taken": n} for t, n in sorted(tasks.items())},
    }
    out = runs_dir() / "mixtures" / f"{path.stem}-{content_hash}.manifest.json"
    write_atomic(out, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return R.MixtureInfo(jsonl=path, manifest=out, content_hash=content_hash, n_datasets=len(tasks))


# --------------------------------------------------------------------------------------------
# Planning (everything before the first expensive step)
# --------------------------------------------------------------------------------------------


@dataclass
class Plan:
    recipe: R.Recipe
    run_dir: Path
    mixture: R.MixtureInfo
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
    gpu = R.has_gpu() if gpu is None else gpu
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


def launcher_command(recipe: R.Recipe, config_path: Path) -> list[str]:
    """`axolotl train` with the launcher for the hardware profile (Axolotl's own launchers)."""
    hw = recipe.hardware
    base = [*_axolotl(), "train", str(config_path)]
    profile, launcher = hw["profile"], hw["launcher"]
    s = settings.current()  # [settings] NODE_RANK / MASTER_ADDR / MASTER_PORT of this node
    if profile == "cpu":
        return [*base, "--launcher", "python"]  # one process; no accelerate/torchrun needed
    if launcher == "ray":
        return [*base, "--launcher", "python"]  # `use_ray: true` in the config: Ray Train workers
    if profile == "gpu":
        args = ["--num_processes", "1"] if launcher == "accelerate" else ["--nproc_per_node", "1"]
        return [*base, "--launcher", launcher, "--", *args]
    per_node = hw.get("gpus_per_node")
    nodes = hw["num_nodes"]
    if launcher == "accelerate":
        args = ["--num_machines", str(nodes)]
        if per_node:
            args += ["--num_processes", str(per_node * nodes)]
        if profile == "multi_node":
            args += [
                "--machine_rank",
                s.node_rank or "${NODE_RANK}",
                "--main_process_ip",
                s.master_addr or "${MASTER_ADDR}",
                "--main_process_port",
                s.master_port,
            ]
        else:
            args += ["--multi_gpu"]
    else:  # torchrun
        master = s.master_addr or "${MASTER_ADDR}"
        args = ["--nnodes", str(nodes), "--nproc_per_node", str(per_node or "gpu")]
        if profile == "multi_node":
            args += [
                "--node_rank",
                s.node_rank or "${NODE_RANK}",
                "--rdzv_endpoint",
                f"{master}:{s.master_port}",
            ]
    return [*base, "--launcher", launcher, "--", *args]


def _axolotl() -> list[str]:
    return [sys.executable, "-m", "axolotl.cli.main"]


def subprocess_env(recipe: R.Recipe, base_model: str) -> dict[str, str]:
    # [settings] this process's environment with the settings value on top (FINBENCH_SETTINGS and
    # the library variables it carries), so Axolotl sees what the boundary resolved
    env = settings.current().child_env(os.environ)
    env.setdefault("AXOLOTL_DO_NOT_TRACK", "1")  # Axolotl's telemetry is on by default
    env.setdefault("WANDB_MODE", "disabled")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if Path(base_model).is_absolute():
        env.setdefault("HF_HUB_OFFLINE", "1")  # a local model needs nothing from the hub
    # `axolotl train --launcher accelerate` runs `accelerate launch` from PATH: use this venv's.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def plan(name_or_path: str, *, gpu: bool | None = None, dry_run: bool = False) -> Plan:
    """Validate everything and compile; builds the mixture and builtin models (cached).

    `dry_run` compiles the config the recipe's own hardware would run, on any machine: no
    hardware check (that belongs to the real run), GPU settings kept (DeepSpeed, precision,
    attention) and a hub base model not looked up, so a cluster recipe can be read on a laptop.
    """
    recipe = R.load(name_or_path)
    for warning in R.check_references(recipe):
        logger.warning(warning)
    gpu = R.has_gpu() if gpu is None else gpu
    if dry_run:
        gpu = gpu or recipe.hardware["profile"] != "cpu"
    else:
        check_hardware(recipe, gpu)
    spec = check_mixture(recipe)
    try:
        materialize = not dry_run or recipe.base_model.startswith(R.BUILTIN_PREFIX)
        base_model = R.resolve_base_model(recipe.base_model, materialize=materialize)
    except R.RecipeError as err:  # its message names the model, not the recipe that asked for it
        raise R.RecipeError(f"{recipe.path}: {err}") from err
    mixture = build_mixture(recipe, spec)
    run_dir = run_dir_for(recipe)
    cfg = R.compile_config(
        recipe, mixture, run_dir, base_model=base_model, prepared_root=prepared_root(), gpu=gpu
    )
    R.validate_axolotl(cfg, where=f"{recipe.path} (compiled)")
    text = R.dump_yaml(cfg)
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
# Over-length rows (the study's trainer, LLaMA-Factory, truncates them; Axolotl drops them)
# --------------------------------------------------------------------------------------------


def over_length(jsonl: Path, tokenizer: Any, chat_template: str, sequence_len: int) -> tuple[int, int, Counter]:
    """(rows over `sequence_len` tokens, rows, {task: rows over}) of a mixture JSONL, each row
    rendered with the recipe's chat template as Axolotl tokenises it (the whole conversation).

    Axolotl (`excess_length_strategy` drop, its default) removes such rows before training.
    LLaMA-Factory (the authors' trainer) keeps them, cutting the prompt so prompt + answer fit
    `cutoff_len` (its `infer_seqlen`); Axolotl's own `truncate` cuts the end instead, i.e. the
    answer, so it is no closer to theirs and the rows are counted rather than truncated.
    """
    template = None
    if chat_template != "tokenizer_default":
        from axolotl.utils.chat_templates import get_chat_template

        template = get_chat_template(chat_template)
    over, total, by_task = 0, 0, Counter()
    with Path(jsonl).open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            ids = tokenizer.apply_chat_template(row["messages"], chat_template=template, tokenize=True)
            n = len(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
            total += 1
            if n > sequence_len:
                over += 1
                by_task[str(row.get("task", "?"))] += 1
    return over, total, by_task


def over_length_line(p: Plan) -> str:
    """One line for `--dry-run`: how many rows of the recipe's mixture Axolotl would drop."""
    seq = int(p.config["sequence_len"])
    head = f"over-length rows (> sequence_len {seq} tokens; Axolotl drops them, LLaMA-Factory truncates the prompt)"
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(p.config["base_model"], trust_remote_code=False)
        over, total, by_task = over_length(p.mixture.jsonl, tok, p.config["chat_template"], seq)
    except Exception as err:  # no tokenizer here (offline, not cached) or a template it cannot render
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
        return f"{head}: not counted: {type(err).__name__}: {first}"
    tasks = ", ".join(f"{k} {v:,}" for k, v in sorted(by_task.items()))
    return f"{head}: {over:,} of {total:,}" + (f" ({tasks})" if tasks else "")


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


_write_atomic = write_atomic  # older callers use this name
def read_done(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / DONE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# A watchdog started beside every training subprocess: it blocks reading its stdin (a pipe the
# parent holds open) and, on EOF without "done" (the parent died, even by SIGKILL), stops the
# trainer's whole process group: SIGTERM, then SIGKILL after a grace period.
_WATCHDOG = """
import os, signal, sys, time
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
if sys.stdin.buffer.read().startswith(b"done"):
    sys.exit(0)
for sig in (signal.SIGTERM, signal.SIGKILL):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        sys.exit(0)
    end = time.monotonic() + grace
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            sys.exit(0)
        time.sleep(0.1)
"""
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_GRACE_S = 30.0


def _die_with(parent: int) -> Any:
    """A preexec_fn (Linux): the child is SIGKILLed when the thread that started it dies, so a
    killed `finbench train` never leaves a trainer holding a GPU. A no-op where prctl is missing."""

    def preexec() -> None:
        os.setsid()  # its own process group: the parent stops the whole launcher tree at once
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _attempt_header(log: Path, cmd: list[str]) -> str:
    """'===== attempt N <time> $ cmd': N counts the attempts already in the (appended) log."""
    attempts = 0
    if log.is_file():
        with log.open("rb") as fh:
            attempts = sum(1 for line in fh if line.startswith(b"===== attempt "))
    stamp = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return f"\n===== attempt {attempts + 1} {stamp} $ {' '.join(cmd)}\n"


def _run_logged(
    cmd: list[str], log: Path, env: dict[str, str], *, echo: bool, grace: float = STOP_GRACE_S
) -> None:
    """Run `cmd` with its output APPENDED to `log` (written by the child itself, so a killed
    parent loses nothing), echoed to stdout when `echo`. The child dies with this process."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        fh.write(_attempt_header(log, cmd).encode())
        fh.flush()
        start = fh.tell()
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with(os.getpid()),  # noqa: PLW1509 (setsid + prctl only)
        )
    try:
        watchdog: subprocess.Popen | None = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(proc.pid), str(grace)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as err:  # the trainer itself still dies with us (PR_SET_PDEATHSIG)
        logger.warning("no watchdog for the trainer's process group: %s", err)
        watchdog = None
    # SIGTERM / SIGHUP (a scheduler's stop, `kill`, a closed terminal) must stop the training
    # tree too, not orphan it.
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, _raise_exit)
    try:
        rc = _follow(proc, log, start) if echo else proc.wait()
    except BaseException as err:
        # Interrupted (Ctrl-C, SIGTERM): stop the whole launcher tree (accelerate and torchrun
        # start workers); checkpoints stay for resuming.
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"\n----- interrupted ({type(err).__name__}); the trainer was stopped\n")
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _release(watchdog)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"----- exit {rc}\n")
    if rc != 0:
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(True)[-15:])
        raise TrainError(f"`{' '.join(cmd[2:5])} ...` failed (exit {rc}); log: {log}\n{tail}")


def _follow(proc: subprocess.Popen, log: Path, start: int) -> int:
    """Echo what the child appends to `log` (from byte `start`) until it exits; its exit code."""
    import codecs
    import time

    decode = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with log.open("rb") as reader:
        reader.seek(start)
        while True:
            rc = proc.poll()
            chunk = reader.read()
            if chunk:
                sys.stdout.write(decode.decode(chunk))
                sys.stdout.flush()
            if rc is not None:
                sys.stdout.write(decode.decode(b"", final=True))
                return rc
            if not chunk:
                time.sleep(0.2)


def _release(watchdog: subprocess.Popen | None) -> None:
    """Tell the watchdog the trainer is finished (or already stopped) and let it exit."""
    if watchdog is None:
        return
    try:
        assert watchdog.stdin is not None
        watchdog.stdin.write(b"done")
        watchdog.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    try:
        watchdog.wait(timeout=10)
    except subprocess.TimeoutExpired:
        watchdog.kill()


def _raise_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


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
            f"{p.run_dir} holds a finished run of a different config (recipe or mixture changed); "
            "pass --force to retrain it from scratch"
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
    name_or_path: str, *, force: bool = False, echo: bool = True, prepare_only: bool = False,
    merge: bool = True,
) -> Plan:
    """Train a recipe into its run folder (see the module docstring); returns the plan it ran.

    `prepare_only` stops after `axolotl preprocess` (the tokenised, packed dataset is cached).
    `merge=False` keeps a LoRA run as its adapter only (sweeps: hundreds of runs of one base
    model would otherwise each write a full model); evaluation then applies the adapter itself.
    """
    p = plan(name_or_path)
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
    write_atomic(p.run_dir / "recipe.yaml", p.recipe.path.read_text(encoding="utf-8"))
    write_atomic(p.config_path, R.dump_yaml(p.config))
    write_atomic(p.run_dir / "mixture.manifest.json", Path(p.mixture.manifest).read_text("utf-8"))
    logs = p.run_dir / "logs"
    action = "preparing data" if prepare_only else "resuming" if state == "resume" else "training"
    print(f"{p.recipe.name}: {action} in {p.run_dir}")
    # Tokenise once up front (on many GPUs every rank would otherwise race to do it). Runs that
    # differ only in seed (a sweep's seeds) would load the same cache anyway (Axolotl's cache
    # key ignores the seed), so the preprocess step is skipped for them; a marker records it.
    marker = _prepared_marker(p.config)
    if marker.is_file():
        print(f"{p.recipe.name}: tokenised data already prepared ({marker.name})")
    else:
        preprocess = [*_axolotl(), "preprocess", str(p.config_path)]
        _run_logged(preprocess, logs / "preprocess.log", p.env, echo=echo)
        write_atomic(marker, json.dumps({"config": str(p.config_path)}) + "\n")
    if prepare_only:
        print(f"{p.recipe.name}: dataset prepared in {p.config['dataset_prepared_path']}")
        return p
    _run_logged(p.command, logs / "train.log", p.env, echo=echo)
    merged = p.recipe.is_adapter and merge
    if merged:
        merge_adapter(p, echo=echo)
    model_dir = p.output_dir if p.recipe.is_adapter and not merged else p.model_dir
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
    print(f"{p.recipe.name}: done; model in {model_dir}")
    return p


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
    cmd = [*_axolotl(), "merge-lora", str(p.config_path), f"--lora-model-dir={p.output_dir}"]
    _run_logged(cmd, p.run_dir / "logs" / "merge.log", p.env, echo=echo)
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
        print(R.dump_yaml(p.config), end="")
        print(f"# run folder: {p.run_dir}\n# command: {' '.join(p.command)}")
        print(f"# {over_length_line(p)}")
        if p.recipe.hardware["profile"] != "cpu" and not R.has_gpu():
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
    gpu = R.has_gpu()
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
