"""`task:` a finbench task's train split, rendered by lm-eval's own few-shot turn builder.

Training and evaluation prompts are therefore identical. The rows are in memory after loading, so
selection sorts their keys instead of streaming.
"""

from __future__ import annotations

from typing import Any, ClassVar

from finbench.core import settings
from finbench.core import validate as V
from finbench.core.files import did_you_mean, tree_digest
from finbench.data import hub as H
from finbench.data import raw as D
from finbench.data import tasks as T
from finbench.mixtures.contamination import cached_task
from finbench.mixtures.errors import err
from finbench.mixtures.formats import Messages
from finbench.mixtures.sampling import Pick, bottom_k_in_memory
from finbench.mixtures.sources.base import OpenContext, ParseContext, SourceDefaults, user_text


def task_fingerprint(task: str) -> dict[str, Any]:
    """What decides a task's rows: its folder (YAML, utils.py), shared templates, its data."""
    info = T.get_info(task)
    fp: dict[str, Any] = {"task": task, "folder": tree_digest(info.yaml_path.parent)}
    fp["templates"] = tree_digest(settings.ROOT / "eval_plugins" / "templates")
    root = settings.data_dir()
    raw = info.source.get("raw") or {}
    if root is not None:
        folder = raw.get("folder", info.folder)
        fp["data"] = {"dir": folder, "files": tree_digest(root / folder)}
    else:
        fp["data"] = {"hub": H.record(info.source.get("hub") or {}, with_mirror=False)}
    return fp


class TaskSource(SourceDefaults):
    key: ClassVar[str] = "task"
    in_dataset: ClassVar[bool] = False

    def __init__(self, task_name: str, ctx: OpenContext | None = None) -> None:
        self.task_name = task_name
        self.where = ctx.where if ctx else f"task {V.short(task_name)}"
        self.ctx_key = ctx.key if ctx else "task"
        self._task = None
        self.docs: list[dict[str, Any]] = []
        self.total: int | None = None

    @classmethod
    def parse(cls, ctx: ParseContext, key: str, value: Any) -> str:
        if not isinstance(value, str) or value not in ctx.known_tasks:
            known = sorted(ctx.known_tasks)
            raise err(
                ctx.where,
                key,
                f"unknown finbench task {V.short(value)}."
                f"{did_you_mean(value, known) or ' Known: ' + V.listing(known, 20)}",
            )
        return value

    @classmethod
    def open(cls, value: str, ctx: OpenContext) -> TaskSource:
        return cls(value, ctx)

    def load(self, loaded: dict[str, Any] | None = None) -> None:
        """Load the task's data (seconds); done after the up-to-date check."""
        if self._task is None:
            if T.get_info(self.task_name).eval_only:  # checked before any data is read
                raise D.DataError(
                    f"task {V.short(self.task_name)} is test-only (a peer's test split, no train split): "
                    "it cannot be a training source"
                )
            self._task = cached_task(self.task_name, loaded)
            self.docs = T.split_docs(self._task, "train")
            self.total = len(self.docs)

    def prepare(self, loaded: dict[str, Any]) -> None:
        try:
            self.load(loaded)
        except (D.DataError, T.UnknownTaskError, FileNotFoundError) as exc:
            raise err(self.where, self.ctx_key, f"cannot load task {V.short(self.task_name)}: {exc}") from exc

    def describe(self) -> dict[str, Any]:
        info = T.get_info(self.task_name)
        root = settings.data_dir()
        src: dict[str, Any] = {"type": "task", "task": self.task_name, "split": "train"}
        if root is not None:
            folder = root / (info.source.get("raw") or {}).get("folder", info.folder)
            return {**src, "raw_dir": str(folder), "files": tree_digest(folder)}
        return {**src, "hub": H.record(info.source.get("hub") or {})}

    def fingerprint(self) -> dict[str, Any]:
        return task_fingerprint(self.task_name)

    def count_valid(self) -> int:
        return len(self.docs)  # validated by finbench.data.raw.build_dataset

    def render(self, row: dict[str, Any]) -> tuple[Messages | None, str]:
        return T.training_messages(self._task, row), ""

    def count_rows(self) -> int:
        return len(self.docs)

    def bottom_k(self, salt: int, k: int, progress: bool, label: str, keyer: Any = None) -> Pick:
        keys, order = bottom_k_in_memory(salt, self.docs, k, keyer)
        rows = [((key, j), self.render(self.docs[j])[0], self.docs[j]) for key, j in zip(keys, order, strict=True)]
        n = len(self.docs)
        return Pick(rows=rows, rows_seen=n, available=n, exhausted=k >= n)  # type: ignore[arg-type]

    def guard_texts(self, row: dict[str, Any], messages: Messages) -> tuple[list[str], str]:
        return ([row["text"]] if isinstance(row.get("text"), str) else []), user_text(messages)
