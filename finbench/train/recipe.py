"""The `Recipe` value: a recipe file read and validated once, then passed to whoever needs it.

`load(NAME or PATH)` is the one place a recipe's YAML is parsed (recipes/NAME.yaml for a bare
name, looked up when asked, so FINBENCH_RECIPES_DIR set at run time counts). The trainer
(`finbench.train.run.train`), the evaluator (`finbench.eval.evaluate.target_for_recipe`) and a
sweep's jobs take the value itself. A sweep derives one value per run (`Recipe.derive`: its
mixture and seeds) instead of writing a recipe file to read back, and a job that crosses a
process (Ray, Slurm) carries the validated mapping and rebuilds the value with `from_mapping`.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from finbench.core import settings
from finbench.core import validate as V
from finbench.core.files import is_file
from finbench.data import raw as D
from finbench.train.checks import validate
from finbench.train.schema import BUILTIN_PREFIX, HUB_ID, RecipeError, hardware_settings

__all__ = ["Recipe", "RecipeError", "available", "from_mapping", "load", "resolve", "resolve_base_model"]


@dataclass(frozen=True)
class Recipe:
    """A validated recipe. `name` names its run folder (runs/NAME/); `path` is the file it was read
    from (relative mixture paths resolve against its folder); `note` is set on a derived recipe
    (a sweep run's) and heads the copy its run folder keeps."""

    name: str
    path: Path
    data: dict[str, Any] = field(repr=False)
    note: str | None = None

    @property
    def method(self) -> str:
        return self.data["method"]

    @property
    def base_model(self) -> str:
        """The `base_model` as written: a hub id, a local folder or builtin:NAME (resolve_base_model)."""
        return str(self.data["base_model"])

    @property
    def hardware(self) -> dict[str, Any]:
        return hardware_settings(self.data)

    @property
    def eval(self) -> dict[str, Any]:
        return dict(self.data.get("eval") or {})

    @property
    def is_adapter(self) -> bool:
        return self.method in ("lora", "qlora")

    def derive(self, name: str, note: str, **changes: Any) -> Recipe:
        """This recipe with some top-level keys changed (a sweep run's mixture and seeds), under
        its own run name. The keys changed are the caller's to have validated."""
        return replace(self, name=name, data={**copy.deepcopy(self.data), **changes}, note=note)

    def text(self) -> str:
        """The recipe as its run folder keeps it (recipe.yaml): the file as written, or for a
        derived recipe its mapping under a `# note` line."""
        if self.note is None:
            return self.path.read_text(encoding="utf-8")
        return f"# {self.note}\n" + yaml.safe_dump(self.data, sort_keys=False)


def recipes_dir() -> Path:
    return settings.recipes_dir()


def available() -> dict[str, Path]:
    return {p.stem: p for p in sorted(recipes_dir().glob("*.yaml"))}


def resolve(name_or_path: str | os.PathLike[str]) -> Path:
    """recipes/NAME.yaml for a bare name, else the given file."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.suffix in (".yaml", ".yml") or os.sep in text:
        if not is_file(path):
            raise RecipeError(f"{path}: recipe file not found")
        return path.resolve()
    known = available()
    if text not in known:
        close = difflib.get_close_matches(text, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise RecipeError(
            f"unknown recipe {V.short(text)} (looked in {recipes_dir()}).{hint} "
            f"Known: {V.listing(list(known), 12) or 'none'}"
        )
    return known[text]


def load(name_or_path: str | os.PathLike[str] | Recipe) -> Recipe:
    """Read and strictly validate a recipe (cheap: no model, no mixture, no Axolotl import).
    A `Recipe` is already that, and is returned as it is."""
    if isinstance(name_or_path, Recipe):
        return name_or_path
    path = resolve(name_or_path)
    data = D.read_yaml(path, RecipeError)
    validate(data, path)
    return Recipe(name=path.stem, path=path, data=data)


def from_mapping(path: str | os.PathLike[str], data: Mapping[str, Any]) -> Recipe:
    """The `Recipe` of `path` from its validated mapping (`recipe.data`, carried to another process
    as plain data): nothing is read from disk."""
    path = Path(path)
    return Recipe(name=path.stem, path=path, data=copy.deepcopy(dict(data)))


def resolve_base_model(value: str, *, materialize: bool = True) -> str:
    """A local folder (absolute) or a hub id.

    With `materialize`, builtin models are built (cached) and, offline, a hub id must be in the
    local Hugging Face cache; without it only the spelling and local folders are checked.
    """
    if value.startswith(BUILTIN_PREFIX):
        name = value[len(BUILTIN_PREFIX) :]
        if not materialize:
            return value
        from finbench.train import models
        if name == "smollm2":
            return str(models.smollm2())
        return str(models.tiny_model(arch=name.removeprefix("tiny-")))
    path = Path(value).expanduser()
    looks_local = value.startswith(("/", ".", "~")) or path.exists() or not HUB_ID.match(value)
    if looks_local:
        if not path.is_dir():
            raise RecipeError(f"base_model {value!r}: no such model folder ({path.resolve()})")
        if not (path / "config.json").is_file():
            raise RecipeError(
                f"base_model {value!r}: {path.resolve()} has no config.json (not a model folder)"
            )
        return str(path.resolve())
    if materialize and settings.hub_offline():
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(value, "config.json")
        if not isinstance(cached, str):
            raise RecipeError(
                f"base_model {value!r}: HF_HUB_OFFLINE is set and the model is not in the local "
                "Hugging Face cache; download it first or point base_model at a local folder"
            )
    return value
