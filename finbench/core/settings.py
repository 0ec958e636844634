"""The settings every stage reads (folders, data source, verbosity, what a child process needs), as
ONE frozen value.

- `Settings.from_env(environ)` is the only place that reads the project's environment variables.
- A command-line boundary resolves it once and sets it for what it calls: `finbench.cli.main`,
  `finbench.demo` main, the Slurm array worker (`python -m finbench.slurm worker`) and the Ray task
  entry, with `with use(s): ...`. Code below reads `current()`, or the accessors at the end
  (`data_dir()`, `runs_dir()`...), which delegate to it.
- Without a boundary (library use, an `lm_eval` process that found our tasks through the start-up
  hook, tests that set variables with monkeypatch), `current()` resolves from the environment at the
  call: never at import, so importing finbench fixes no path and no data source.
- Child processes and executors forward ONE value: `child_env()` (a subprocess) and `forwarded_env()`
  (a Ray worker, a Slurm batch script) give FINBENCH_SETTINGS=<to_json()> plus the library variables
  the value carries (HF_*, TRANSFORMERS_*, ... read at the libraries' import in the child). A child's
  `from_env` prefers FINBENCH_SETTINGS over the separate FINBENCH_* variables.

Secrets (API keys, HF_TOKEN) are not part of the value: it is written into Slurm batch scripts and Ray
runtime environments. They reach a child only through its inherited environment and are read where
they are used (finbench.eval.api_models, tasks/financebench/utils.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the repository: tasks/, recipes/, mixtures/ ...

DATA_DIR_ENV = "FINBENCH_DATA_DIR"  # upstream raw files, one folder per dataset
HUB_MIRROR_ENV = "FINBENCH_HUB_MIRROR"  # DIR/<org>/<name>/... laid out as the hub serves them
RUNS_DIR_ENV = "FINBENCH_RUNS_DIR"
VERBOSE_ENV = "FINBENCH_VERBOSE"  # 1: library warnings are shown (`finbench -v` sets the value)
SETTINGS_ENV = "FINBENCH_SETTINGS"  # the whole value as JSON, for a child process
LMEVAL_HOOK_ENV = "FINBENCH_LMEVAL_HOOK"  # 0: the lm-eval start-up hook stays off in that process
FOLDER_ENV = {  # field -> (variable, default under ROOT)
    "tasks_dir": ("FINBENCH_TASKS_DIR", "tasks"),
    "recipes_dir": ("FINBENCH_RECIPES_DIR", "recipes"),
    "mixtures_dir": ("FINBENCH_MIXTURES_DIR", "mixtures"),
    "sweeps_dir": ("FINBENCH_SWEEPS_DIR", "recipes/sweeps"),
    "runs_dir": (RUNS_DIR_ENV, "runs"),
}
# Library variables a child process (Axolotl, a Ray worker, a Slurm task) must see as the parent
# did: the libraries read most of them at their import, so they travel as variables, not as JSON.
LIBRARY_PREFIXES = ("HF_", "TRANSFORMERS_", "AXOLOTL_", "VLLM_", "WANDB_", "DATASETS_", "TOKENIZERS_")
LIBRARY_NAMES = ("PYTHONPATH",)
SECRET = re.compile(r"TOKEN(?!IZERS)|KEY|SECRET|PASSWORD", re.IGNORECASE)  # HF_TOKEN: never forwarded
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
# A multi-node launch is per machine: each node's own NODE_RANK, never the driver's (not serialised).
PER_PROCESS = ("node_rank", "master_addr", "master_port")


def _true(value: str | None) -> bool:
    return (value or "0").strip().lower() in ("1", "true", "yes", "on")


def _opt_path(value: str | None) -> Path | None:
    return Path(value).expanduser().resolve() if value else None


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    try:
        value = float(text) if text else default
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise ValueError(f"{name}: expected a share in (0, 1], such as 0.3, got {text!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything a run reads from its surroundings. Build with `from_env`, change with
    `dataclasses.replace`, forward with `to_json` / `child_env` / `forwarded_env`."""

    tasks_dir: Path = ROOT / "tasks"
    recipes_dir: Path = ROOT / "recipes"
    mixtures_dir: Path = ROOT / "mixtures"
    sweeps_dir: Path = ROOT / "recipes" / "sweeps"
    runs_dir: Path = ROOT / "runs"
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "finbench")  # HOME: not at import
    data_dir: Path | None = None  # the upstream raw files (FINBENCH_DATA_DIR)
    hub_mirror: Path | None = None  # a hub-shaped copy (FINBENCH_HUB_MIRROR)
    offline: bool = False  # the hub is off (HF_HUB_OFFLINE); children get HF_*_OFFLINE=1
    verbose: bool = False  # library warnings shown (FINBENCH_VERBOSE, `finbench -v`)
    judge_url: str | None = None  # financebench's LLM judge (FINBENCH_JUDGE_URL/_MODEL; key: env only)
    judge_model: str | None = None
    vllm_cpu_memory: float = 0.3  # vLLM on CPU: share of RAM for the KV cache (FINBENCH_VLLM_CPU_MEMORY)
    bertscore: bool = False  # FinBen summaries: compute BERTScore (FINBENCH_BERTSCORE=1, opt-in)
    library_env: tuple[tuple[str, str], ...] = ()  # sorted (name, value) pairs, see LIBRARY_PREFIXES
    node_rank: str | None = field(default=None, compare=False)  # per process (PER_PROCESS)
    master_addr: str | None = field(default=None, compare=False)
    master_port: str = field(default="29500", compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings `environ` (default: this process's environment) describes; the one reader."""
        env = os.environ if environ is None else environ
        local = {"node_rank": env.get("NODE_RANK") or None, "master_addr": env.get("MASTER_ADDR") or None,
                 "master_port": env.get("MASTER_PORT") or "29500"}
        if env.get(SETTINGS_ENV):
            return dataclasses.replace(cls.from_json(env[SETTINGS_ENV]), **local)
        folders = {name: Path(env[var]).expanduser() if env.get(var) else ROOT / default
                   for name, (var, default) in FOLDER_ENV.items()}
        folders["runs_dir"] = folders["runs_dir"].resolve()
        cache = env.get("FINBENCH_CACHE")
        return cls(
            **folders,
            cache_dir=Path(cache).expanduser() if cache else Path.home() / ".cache" / "finbench",
            data_dir=_opt_path(env.get(DATA_DIR_ENV)),
            hub_mirror=_opt_path(env.get(HUB_MIRROR_ENV)),
            offline=_true(env.get("HF_HUB_OFFLINE")),
            verbose=_true(env.get(VERBOSE_ENV)),
            judge_url=env.get("FINBENCH_JUDGE_URL") or None,
            judge_model=env.get("FINBENCH_JUDGE_MODEL") or None,
            vllm_cpu_memory=_share(env, "FINBENCH_VLLM_CPU_MEMORY", 0.3),
            bertscore=env.get("FINBENCH_BERTSCORE") == "1",
            library_env=tuple(sorted(
                (k, v) for k, v in env.items()
                if (k.startswith(LIBRARY_PREFIXES) or k in LIBRARY_NAMES) and not SECRET.search(k)
            )),
            **local,
        )

    # --- serialised form ----------------------------------------------------------------------

    def to_json(self) -> str:
        """Deterministic JSON (paths as strings; per-process fields left out)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in PER_PROCESS:
                continue
            v = getattr(self, f.name)
            out[f.name] = str(v) if isinstance(v, Path) else [list(p) for p in v] if f.name == "library_env" else v
        return json.dumps(out, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{SETTINGS_ENV}: not valid JSON ({error})") from error
        known = {f.name: f for f in dataclasses.fields(cls) if f.name not in PER_PROCESS}
        unknown = sorted(set(raw) - set(known)) if isinstance(raw, dict) else None
        if unknown is None or unknown:
            raise ValueError(f"{SETTINGS_ENV}: expected an object with keys from {sorted(known)}, got "
                             f"{unknown if unknown else type(raw).__name__}")
        kwargs: dict[str, Any] = {}
        for name, v in raw.items():
            if name == "library_env":
                v = tuple((str(k), str(x)) for k, x in v)
            elif name.endswith("_dir") or name == "hub_mirror":
                v = None if v is None else Path(v)
            kwargs[name] = v
        return cls(**kwargs)

    # --- what a child process gets ------------------------------------------------------------

    @property
    def library(self) -> dict[str, str]:
        return dict(self.library_env)

    def forwarded_env(self) -> dict[str, str]:
        """The variables that carry this value to another process: the library variables, the
        offline switches, and FINBENCH_SETTINGS (for Ray's runtime_env, a Slurm batch script)."""
        env = self.library
        if self.offline:
            env.update(dict.fromkeys(OFFLINE_VARS, "1"))
        env[SETTINGS_ENV] = self.to_json()
        return env

    def child_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """A subprocess's environment: `base` (PATH, HOME, secrets...) with this value on top."""
        return {**base, **self.forwarded_env()}

    def with_library(self, **values: str) -> Settings:
        """A copy whose children also get these library variables (where not set already)."""
        merged = {**values, **self.library}
        return dataclasses.replace(self, library_env=tuple(sorted(merged.items())))


def hook_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """The lm-eval start-up hook runs at every interpreter start, before any boundary: its switch."""
    return (os.environ if environ is None else environ).get(LMEVAL_HOOK_ENV, "1") != "0"


def libraries_offline() -> None:
    """Switch the hub off for the libraries in THIS process (a boundary whose settings say
    `offline` when the environment did not). huggingface_hub and datasets read HF_HUB_OFFLINE once,
    at their import, into the config modules they consult at each request: the flag is set there."""
    import datasets.config
    import huggingface_hub.constants

    huggingface_hub.constants.HF_HUB_OFFLINE = True
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True


# --- the value in force ---------------------------------------------------------------------------

_STACK: list[Settings] = []  # process-wide (not a ContextVar: lm-eval calls our loaders from threads)


@contextlib.contextmanager
def use(s: Settings) -> Iterator[Settings]:
    """Make `s` the value `current()` returns inside the block (a boundary, or a demo's variant)."""
    _STACK.append(s)
    try:
        yield s
    finally:
        _STACK.pop()


def current() -> Settings:
    """The value a boundary set, else the one the environment describes now."""
    return _STACK[-1] if _STACK else Settings.from_env()


def tasks_dir() -> Path:
    return current().tasks_dir


def recipes_dir() -> Path:
    return current().recipes_dir


def mixtures_dir() -> Path:
    return current().mixtures_dir


def sweeps_dir() -> Path:
    return current().sweeps_dir


def runs_dir() -> Path:
    return current().runs_dir


def cache_dir() -> Path:
    return current().cache_dir


def data_dir() -> Path | None:
    return current().data_dir


def hub_mirror() -> Path | None:
    return current().hub_mirror


def hub_offline() -> bool:
    return current().offline


def verbose() -> bool:
    return current().verbose
