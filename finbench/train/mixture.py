"""The train stage's one integration point with finbench.mixtures: a recipe's `mixture:` checked
(cheap, before anything runs), built (cached by content hash) or taken as a ready-made chat JSONL,
and the rows Axolotl would drop for being longer than `sequence_len`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from finbench import mixtures as M
from finbench.core import validate as V
from finbench.core.files import is_file, write_atomic
from finbench.core.settings import runs_dir
from finbench.train.axolotl import MixtureInfo
from finbench.train.recipe import Recipe
from finbench.train.schema import RecipeError


def check_mixture(recipe: Recipe) -> Any:
    """Parse the recipe's mixture spec (cheap); a missing or bad mixture fails here, early."""
    ref = recipe.data["mixture"]
    if ref.endswith(".jsonl"):
        path = _relative_to_recipe(recipe, ref)
        if not is_file(path):
            raise RecipeError(f"{recipe.path}: mixture {V.short(ref)}: no such file ({V.short(str(path))})")
        return path
    if ref.endswith((".yaml", ".yml")):
        ref = str(_relative_to_recipe(recipe, ref))
    try:
        mix = M.load_mixture(ref)
    except M.MixtureError as err:
        raise RecipeError(f"{recipe.path}: mixture {V.short(recipe.data['mixture'])}: {err}") from err
    seed = recipe.data.get("mixture_seed")  # a sweep's `data_seed: run`: rows drawn with the run seed
    return mix if seed is None else dataclasses.replace(mix, seed=seed)


def _relative_to_recipe(recipe: Recipe, ref: str) -> Path:
    path = Path(ref).expanduser()
    return path if path.is_absolute() else (recipe.path.parent / path).resolve()


def build_mixture(recipe: Recipe, spec: Any | None = None) -> MixtureInfo:
    """Build (or reuse) the recipe's mixture. A ready-made chat .jsonl is hashed and used as is."""
    spec = spec if spec is not None else check_mixture(recipe)
    if isinstance(spec, Path):
        return _jsonl_mixture(recipe, spec)
    result = M.build(spec, runs_dir() / "mixtures")
    return MixtureInfo(
        jsonl=result.jsonl,
        manifest=result.manifest,
        content_hash=result.summary["content_hash"][:16],
        n_datasets=len(spec.components),
    )


def _jsonl_mixture(recipe: Recipe, path: Path) -> MixtureInfo:
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
                raise RecipeError(
                    f"{path}:{lineno}: expected a JSON object with "
                    "messages: [{role, content}, ...] "
                    f"({type(err).__name__}: {err})"
                ) from err
            tasks[str(row.get("task", "unknown"))] += 1
    if not tasks:
        raise RecipeError(f"{path}: mixture file has no rows")
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
    return MixtureInfo(jsonl=path, manifest=out, content_hash=content_hash, n_datasets=len(tasks))




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


def over_length_line(config: Mapping[str, Any], jsonl: Path) -> str:
    """One line for `--dry-run`: how many rows of the mixture `jsonl` Axolotl would drop under the
    compiled `config`."""
    seq = int(config["sequence_len"])
    head = f"over-length rows (> sequence_len {seq} tokens; Axolotl drops them, LLaMA-Factory truncates the prompt)"
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(config["base_model"], trust_remote_code=False)
        over, total, by_task = over_length(jsonl, tok, config["chat_template"], seq)
    except Exception as err:  # no tokenizer here (offline, not cached) or a template it cannot render
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
        return f"{head}: not counted: {type(err).__name__}: {first}"
    tasks = ", ".join(f"{k} {v:,}" for k, v in sorted(by_task.items()))
    return f"{head}: {over:,} of {total:,}" + (f" ({tasks})" if tasks else "")


