"""The sweep's data: a run (`RunSpec`), its result (`RunResult`), the validated sweep (`Sweep`).

Plain dataclasses with `to_dict`/`from_dict`: a run and its result travel as JSON to Ray workers
and Slurm array tasks and into the store, and come back as the same values.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SPLITS = ("dev", "test")
JOBS = ("train_eval", "eval_only")
BACKENDS = ("auto", "hf", "vllm")
ANY_METRIC = "*"  # items.metrics key: the same per-item value for every metric of the task
BASE = "base"  # the mixture name of a recipe's untrained base-model run
GROUP = "group"  # RunSpec field (and spec-dict key) of a shared-engine group job's member runs
_LEGACY_GROUP = "_lora_group"  # where older versions kept it (inside `eval`): specs already spooled


class SweepError(ValueError):
    """A bad sweep file or an unreachable scheduler; the message names the file and key."""


def err(where: str, key: str, msg: str) -> SweepError:
    """The one shape of a sweep-file error: `FILE: KEY: what was wrong and what was expected`."""
    return SweepError(f"{where}: {key}: {msg}")


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def run_key(recipe_sha: str, mixture_sha: str, seed: int, job: str, ev: dict[str, Any]) -> str:
    """The content hash that identifies a run (the same inputs give the same key anywhere)."""
    blob = json.dumps(
        {"recipe": recipe_sha, "mixture": mixture_sha, "seed": seed, "job": job, "eval": ev},
        sort_keys=True,
    )
    return sha(blob)[:20]


@dataclass(frozen=True)
class RunSpec:
    """One run. Plain data (dict-able) so it travels to Ray workers and into the store."""

    key: str
    sweep: str
    recipe: str  # recipe name (recipes/NAME.yaml) or absolute path
    recipe_path: str
    mixture: str  # mixture name, DESIGN/MEMBER, absolute .yaml path, or BASE
    seed: int
    job: str
    eval: dict[str, Any]
    components: dict[str, str | None]  # mixture component -> finbench task (None: a dataset)
    recipe_sha: str
    mixture_sha: str
    api: dict[str, Any] | None = None  # an api_models entry (job api_eval); see finbench.eval.api_models
    group: tuple[RunSpec, ...] | None = None  # a shared-engine job: the runs it scores (engine.py)
    data_seed: int | None = None  # the mixture's seed for this run (sweep `data_seed: run`); None: its own
    # The recipe's validated mapping (`Recipe.data`), read once when the sweep is loaded: a job
    # rebuilds the run's recipe from it in any process (finbench.sweep.jobs.run_recipe) instead of
    # reading recipe_path again. None for API runs and for specs spooled before it travelled here.
    recipe_data: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("data_seed", "recipe_data"):
            if d[key] is None:
                del d[key]  # as `group`: a run without it keeps the dict it always had
        if self.group is None:
            del d[GROUP]  # a plain run's dict (and so its Slurm spool name) is what it always was
        else:
            d[GROUP] = [m.to_dict() for m in self.group]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        d = dict(d)
        ev = dict(d["eval"])
        group = d.pop(GROUP, None) or ev.pop(_LEGACY_GROUP, None)
        return cls(**{**d, "eval": ev}, group=tuple(cls.from_dict(m) for m in group) if group else None)

    @property
    def members(self) -> list[RunSpec]:
        """The runs this spec stands for: its group, or itself."""
        return list(self.group) if self.group else [self]

    @property
    def tasks(self) -> list[str]:
        """Every task the run scores: the finance targets, then the general-ability ones."""
        return list(self.eval["tasks"]) + list(self.eval.get("general", []))

    def tasks_for(self, split: str) -> list[str]:
        return eval_tasks(self.eval, split)

    @property
    def label(self) -> str:
        if self.api:
            return f"{self.recipe} (API model {self.api['model_args']['model']})"
        return f"{self.recipe} x {self.mixture} x seed {self.seed}"


@dataclass
class SplitEval:
    """One split's scores: `scores` (task, metric, filter, value, stderr), per-item `items`
    (task, filter, doc_id, doc_hash, target, prediction, metrics) and each task's
    `aggregations` {metric: (aggregation name, higher_is_better)}."""

    scores: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    aggregations: dict[str, dict[str, tuple[str, bool | None]]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SplitEval:
        aggs = {t: {m: tuple(v) for m, v in a.items()} for t, a in (d.get("aggregations") or {}).items()}
        return cls(list(d.get("scores", [])), list(d.get("items", [])), aggs)  # type: ignore[arg-type]


@dataclass
class RunResult:
    """What a finished run hands the store: scored by `scoring.score_splits` (trained and base
    models) and `api_models.run_api_job`, returned by every executor, recorded by `Store.record`,
    written by Slurm array tasks as `<run id>.result.json`."""

    key: str
    model_dir: str | None = None
    evals: dict[str, SplitEval] = field(default_factory=dict)  # split -> its scores
    info: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], key: str = "") -> RunResult:
        return cls(
            key=d.get("key") or key,
            model_dir=d.get("model_dir"),
            evals={s: SplitEval.from_dict(e) for s, e in (d.get("evals") or {}).items()},
            info=dict(d.get("info") or {}),
            seconds=d.get("seconds"),
        )


@dataclass
class Sweep:
    name: str
    path: Path
    description: str
    recipes: list[str]
    mixtures: list[str]
    seeds: list[int]
    base_eval: bool
    eval: dict[str, Any]
    job: str
    ray: dict[str, Any]  # the `ray:` block (executors/ray.py)
    store: Path
    runs: list[RunSpec] = field(default_factory=list)
    slurm: dict[str, Any] = field(default_factory=dict)  # the `slurm:` block (executors/slurm.py)
    api_models: list[dict[str, Any]] = field(default_factory=list)  # finbench.eval.api_models
    share_engine: str | bool = "auto"  # multi-LoRA serving: one vLLM engine per base model
    data_seed: str = "fixed"  # fixed: the mixture's own seed; run: the run seed draws the rows too
    executor_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # config_key -> block

    def summary(self) -> dict[str, Any]:
        """What the store keeps of the sweep file (meta.sweep_config; the report reads it)."""
        return {
            "name": self.name,
            "description": self.description,
            "recipes": self.recipes,
            "mixtures": self.mixtures,
            "seeds": self.seeds,
            "base_eval": self.base_eval,
            "eval": self.eval,
            "job": self.job,
            **({"api_models": self.api_models} if self.api_models else {}),
            **({"data_seed": self.data_seed} if self.data_seed != "fixed" else {}),
        }


SWEEP_FIELDS = frozenset(f.name for f in fields(Sweep))


def eval_tasks(ev: dict[str, Any], split: str) -> list[str]:
    """Tasks scored on `split`: finbench's on every split; the `general` ones (lm-eval built-ins
    such as MMLU, GSM8K, IFEval, which have no dev split) on test only, where the report uses them."""
    return list(ev["tasks"]) + (list(ev.get("general", [])) if split == "test" else [])


def split_limit(ev: dict[str, Any], split: str) -> float | None:
    """Rows per task scored on `split`: `limit` is one number for every split or {split: number}
    (e.g. a small dev slice that only selects, a large test slice that is reported)."""
    limit = ev.get("limit")
    return limit.get(split) if isinstance(limit, dict) else limit
