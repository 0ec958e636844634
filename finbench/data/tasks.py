"""The task registry: every folder in `tasks/` with lm-eval YAML in it is a finbench task.

Nothing is registered by hand. Evaluation (lm-eval, through `finbench.eval.lmeval_hook`), the mixture
builder and the CLI all go through lm-eval's own TaskManager over the same folders, and training
examples are rendered by lm-eval's own `build_qa_turn`, so a task's prompt is defined once (its
YAML) and training and evaluation prompts are the same by construction.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from finbench.core import quiet, settings
from finbench.core.files import did_you_mean
from finbench.data import finben

ROOT = settings.ROOT
log = logging.getLogger(__name__)
SPLIT_KEYS = {"train": "training_split", "dev": "validation_split", "test": "test_split"}


def __getattr__(name: str) -> Any:
    """`TASKS_DIR`, kept for callers: the task folder in force now (settings), not at import."""
    if name == "TASKS_DIR":
        return settings.tasks_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class UnknownTaskError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class TaskInfo:
    """What the YAML says about one lm-eval task of ours (no data loaded)."""

    name: str
    yaml_path: Path
    output_type: str
    kind: str
    folder: str
    source: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def eval_only(self) -> bool:
        """A test-only variant (no `training_split`), e.g. `fiqa_sa_fingpt`: a peer's published
        test split read from the hub. It is scored only when named: no train rows for mixtures,
        no dev split, and not in the `finbench` groups."""
        return not self.config.get("training_split")

    @property
    def is_default_variant(self) -> bool:
        """The generative variant is the default one; other variants carry a suffix (`fpb_mc`).
        FinBen's tasks (`metadata.suite: finben`) are a suite of their own, no folder's default."""
        return self.output_type == "generate_until" and not self.eval_only and not finben.is_finben(self.config)


def _load_yaml_unresolved(path: Path) -> dict[str, Any]:
    # lm-eval's own loader follows `include:` and keeps `!function` tags unresolved (cheap).
    from lm_eval.tasks._yaml_loader import load_yaml

    cfg = load_yaml(path, resolve_func=False, recursive=True)
    if isinstance(cfg.get("metric_list"), str):  # a declared metric set: its entries, aggregations by name
        from eval_plugins.registry import unresolved_entries

        cfg["metric_list"] = unresolved_entries(cfg["metric_list"])
    return cfg


def _task_dirs(tasks_dir: Path) -> Iterator[Path]:
    for folder in sorted(tasks_dir.iterdir()):
        if folder.is_dir() and not folder.name.startswith(("_", ".")):
            yield folder


def discover(tasks_dir: Path | None = None) -> dict[str, TaskInfo]:
    """All tasks under `tasks_dir`, by lm-eval task name. Re-scanned on every call (cheap)."""
    tasks_dir = Path(tasks_dir or settings.tasks_dir())
    found: dict[str, TaskInfo] = {}
    for folder in _task_dirs(tasks_dir):
        for path in sorted(folder.glob("*.yaml")):
            try:
                cfg = _load_yaml_unresolved(path)
            except Exception as err:  # one broken task must not hide the others
                log.warning("skipping %s: %s", path, err)
                continue
            name = cfg.get("task")
            if not isinstance(name, str) or "group" in cfg:
                continue
            meta = cfg.get("metadata") or {}
            found[name] = TaskInfo(
                name=name,
                yaml_path=path,
                output_type=cfg.get("output_type", "generate_until"),
                kind=str(meta.get("kind", "other")),
                folder=folder.name,
                source=dict(meta.get("source") or {}),
                config=cfg,
            )
    return found


def get_info(name: str) -> TaskInfo:
    tasks = discover()
    if name not in tasks:
        hint = did_you_mean(name, tasks, quote=False)
        raise UnknownTaskError(
            f"unknown task {name!r} (looked in {settings.tasks_dir()}).{hint} Known: {', '.join(sorted(tasks))}"
        )
    return tasks[name]


# --------------------------------------------------------------------------------------------
# lm-eval groups over the task folders (finbench, finbench_<kind>, finbench_mc, finbench_general)

# lm-eval built-in tasks reused for the general-ability regression check.
GENERAL_TASKS = [
    "mmlu_high_school_us_history",
    "mmlu_high_school_biology",
    "mmlu_college_computer_science",
    "mmlu_philosophy",
    "mmlu_high_school_mathematics",
    "gsm8k",
    "ifeval",
]


def _cache_root() -> Path:
    return settings.cache_dir() / "lm_eval_groups"


def group_configs(tasks_dir: Path | None = None) -> dict[str, dict]:
    """Group configs derived from the task folders: finbench, finbench_<kind>, finbench_mc."""
    found = discover(tasks_dir).values()
    infos = [t for t in found if not finben.is_finben(t.config)]  # FinBen has groups of its own
    generative = [t for t in infos if t.is_default_variant]
    groups: dict[str, dict] = {}

    def group(name: str, members: list[str], filters: list[str]) -> None:
        groups[name] = {
            "group": name,
            "task": sorted(members),
            "aggregate_metric_list": [
                {"metric": "score", "aggregation": "mean", "weight_by_size": False, "filter_list": filters}
            ],
            "metadata": {"version": 1.0},
        }

    group("finbench", [t.name for t in generative], ["tolerant", "strict"])
    for kind in sorted({t.kind for t in generative}):
        group(f"finbench_{kind}", [t.name for t in generative if t.kind == kind], ["tolerant", "strict"])
    mc = [t.name for t in infos if t.output_type == "multiple_choice"]
    if mc:
        group("finbench_mc", mc, ["none"])
    groups.update(finben.group_configs((t.name, t.config) for t in found))  # finben, finben_<family>
    # Built-in tasks with different metrics: listed together, no pooled aggregate.
    groups["finbench_general"] = {
        "group": "finbench_general",
        "task": GENERAL_TASKS,
        "metadata": {"version": 1.0},
    }
    return groups


def write_group_configs(tasks_dir: Path | None = None) -> Path:
    """Write the group YAMLs to a folder named by their content hash (atomic; reused if present)."""
    texts = {name: yaml.safe_dump(cfg, sort_keys=True) for name, cfg in group_configs(tasks_dir).items()}
    digest = hashlib.sha256(repr(sorted(texts.items())).encode()).hexdigest()[:16]
    final = _cache_root() / digest
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    for name, text in texts.items():
        (tmp / f"{name}.yaml").write_text(text)
    try:
        os.replace(tmp, final)
    except OSError:  # another process won the race: same content, keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def task_paths() -> list[str]:
    """Folders lm-eval should scan: the task folders and the generated groups."""
    return [str(settings.tasks_dir()), str(write_group_configs())]


def task_manager():
    """lm-eval's TaskManager over our task folder alone (one per folder and process: indexing is slow)."""
    return _task_manager(str(settings.tasks_dir()))


@functools.lru_cache(maxsize=4)
def _task_manager(tasks_dir: str):
    quiet.install()  # lm-eval warns on every task load; `finbench -v` shows it
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=tasks_dir, include_defaults=False)


def task_manager_for(names: list[str]):
    """A TaskManager that can load `names`: ours alone when they are all ours (indexing lm-eval's
    thousands of built-in tasks costs tens of seconds), else ours plus the built-ins."""
    quiet.install()
    from lm_eval.tasks import TaskManager

    paths = task_paths()
    ours = TaskManager(include_path=paths, include_defaults=False)
    if all(name in ours.all_tasks for name in names):
        return ours
    return TaskManager(include_path=paths)


def tasks_for_split(tm, names: list[str], split: str) -> list[Any]:
    """lm-eval task objects for `names` that score `split`: for "dev", each task's test_split
    (what lm-eval scores) is pointed at its validation_split."""
    loaded = tm.load(names)["tasks"]
    objs = list(loaded.values()) if isinstance(loaded, dict) else list(loaded)
    if split == "dev":
        # Test-only variants (a peer's test split) have no dev: a sweep scores them on test alone.
        dev_less = [t for t in objs if not t.config.validation_split]
        if dev_less and (len(dev_less) == len(objs) or any(t.config.training_split for t in dev_less)):
            raise ValueError(f"task {dev_less[0].config.task!r} has no validation_split: cannot score dev")
        if dev_less:
            log.warning("not scored on dev (test-only): %s", ", ".join(t.config.task for t in dev_less))
        objs = [t for t in objs if t.config.validation_split]
        for task in objs:
            task.config.test_split = task.config.validation_split
    return objs


def load_task(name: str):
    """The lm-eval ConfigurableTask for `name` (this loads its data)."""
    get_info(name)  # clear error for unknown names before lm-eval's own
    loaded = task_manager().load([name])
    return loaded["tasks"][name]


def split_docs(task, split: str) -> list[dict[str, Any]]:
    if split not in SPLIT_KEYS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLIT_KEYS)}")
    split_name = getattr(task.config, SPLIT_KEYS[split])
    if split_name is None:
        raise ValueError(f"task {task.config.task!r} declares no {split} split")
    docs = task.dataset[split_name]
    if task.config.process_docs is not None:
        docs = task.config.process_docs(docs)
    if hasattr(docs, "to_list"):  # one Arrow conversion: ~50x faster than iterating rows
        return docs.to_list()
    return [dict(doc) for doc in docs]


def training_messages(task, doc: dict[str, Any]) -> list[dict[str, str]]:
    """One chat example for `doc`, built exactly as lm-eval builds a few-shot turn of the task.

    system (the task description, if any) + user (doc_to_text) + assistant (gen_prefix + target).
    """
    q = task.doc_to_text(doc)
    choices = task.doc_to_choice(doc) if task.config.doc_to_choice else None
    target = task.doc_to_target(doc)
    turns = task.build_qa_turn(
        q=q,
        c=choices,
        a=target,
        gen_prefix=task.doc_to_prefix(doc),
        tgt_delim=task.config.target_delimiter,
        few_delim="",
    )
    description = task.resolve_field(doc, task.config.description) or ""
    messages = [{"role": "system", "content": description}] if description else []
    return messages + [m.to_dict() for m in turns]


@functools.lru_cache(maxsize=1)
def project_task_names() -> frozenset[str]:
    """Task, group and tag names of ours that lm-eval can load (our folders + generated groups)."""
    from lm_eval.tasks import TaskManager

    return frozenset(TaskManager(include_path=task_paths(), include_defaults=False).all_tasks)


def builtin_task_names() -> frozenset[str]:
    """lm-eval's built-in task/group/tag names. Indexing them takes tens of seconds, so the names
    are cached per lm-eval version in the finbench cache."""
    from importlib.metadata import version

    from finbench.core import files, settings
    cache = settings.cache_dir() / f"lm-eval-{version('lm_eval')}-task-names.txt"
    if cache.is_file():
        return frozenset(cache.read_text(encoding="utf-8").split())
    from lm_eval.tasks import TaskManager

    names = sorted(TaskManager(include_path=None, include_defaults=True).all_tasks)
    files.write_atomic(cache, "\n".join(names) + "\n")
    return frozenset(names)


def unknown_task_names(names: list[str]) -> dict[str, str]:
    """{name: did-you-mean hint} for names neither ours nor lm-eval built-ins (ours checked first:
    the built-in index is only needed when a name is not ours)."""
    from finbench.core.files import did_you_mean

    ours = project_task_names()
    rest = [n for n in names if n not in ours]
    if not rest:
        return {}
    known = ours | builtin_task_names()
    return {n: did_you_mean(n, sorted(ours)) or did_you_mean(n, sorted(known)) for n in rest if n not in known}


def evaluation_prompt(task, doc: dict[str, Any], chat_template, seed: int = 1234) -> str:
    """The prompt the model is given for `doc` when `finbench eval` scores it, built by lm-eval's own
    `fewshot_context` with the settings `finbench.eval.evaluate` uses (chat template applied, few-shot
    examples as turns): the system prompt (task description), the chat markup, the question and the
    answer prefix (`gen_prefix`) the model continues. No gold answer.

    `chat_template(messages, add_generation_prompt=True) -> str` renders a conversation, as lm-eval's
    model classes do (`HFLM.apply_chat_template`).
    """
    task.set_fewshot_seed(seed=seed)
    return task.fewshot_context(
        doc,
        num_fewshot=task.config.num_fewshot or 0,
        system_instruction=None,
        apply_chat_template=True,
        fewshot_as_multiturn=True,
        chat_template=chat_template,
        gen_prefix=task.doc_to_prefix(doc),
    )
