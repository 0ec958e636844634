"""Our YAML files (recipes, mixtures, designs, sweeps) refuse a key given twice, naming file and line."""

from __future__ import annotations

import pytest

from finbench.data import raw as D

ROOT = D.settings.ROOT


def _duplicate(text: str, after: str, line: str) -> str:
    """`text` with `line` inserted right after the first line starting with `after`."""
    lines = text.splitlines(keepends=True)
    i = next(n for n, ln in enumerate(lines) if ln.startswith(after))
    return "".join(lines[: i + 1] + [line + "\n"] + lines[i + 1 :])


def _line_of(text: str, line: str) -> int:
    return text.splitlines().index(line) + 1


def _refused(path, text: str, load, error: type[Exception], line: str, key: str) -> None:
    """`load(path)` of `text` raises `error` naming the file, the repeated `line`'s number and `key`."""
    path.write_text(text)
    with pytest.raises(error) as err:
        load(path)
    assert f"{path}:{_line_of(text, line)}: duplicate key '{key}'" in str(err.value)


def test_duplicate_key_in_recipe_is_refused_by_name(tmp_path):
    from finbench.train import recipe as R
    text = _duplicate((ROOT / "recipes" / "tiny_cpu.yaml").read_text(), "seed:", "seed: 7")
    path = tmp_path / "dup.yaml"
    _refused(path, text, R.load, R.RecipeError, "seed: 7", "seed")
    # nested blocks too
    text = _duplicate(
        (ROOT / "recipes" / "tiny_cpu.yaml").read_text(), "  warmup_steps:", "  warmup_steps: 3"
    )
    path.write_text(text)
    with pytest.raises(R.RecipeError, match=r"dup.yaml:\d+: duplicate key 'warmup_steps'"):
        R.load(path)


def test_duplicate_key_in_mixture_is_refused_by_name(tmp_path):
    from finbench import mixtures as M
    text = _duplicate((ROOT / "mixtures" / "demo.yaml").read_text(), "    factor: 0.25", "    factor: 3")
    path = tmp_path / "demo.yaml"
    _refused(path, text, lambda p: M.load_mixture(str(p)), M.MixtureError, "    factor: 3", "factor")


def test_duplicate_key_in_design_is_refused_by_name(tmp_path):
    from finbench import mixtures as M
    src = (ROOT / "mixtures" / "designs" / "paper55.yaml").read_text()
    src = src.replace("base: ../paper_cocktail.yaml", f"base: {ROOT / 'mixtures' / 'paper_cocktail.yaml'}")
    text = _duplicate(src, "design:", "design: other")
    _refused(tmp_path / "paper55.yaml", text, M.generate_design, M.MixtureError, "design: other", "design")


def test_duplicate_key_in_sweep_is_refused_by_name(tmp_path):
    from finbench import sweep as S
    text = _duplicate((ROOT / "recipes" / "sweeps" / "mini.yaml").read_text(), "seeds:", "seeds: [3]")
    _refused(tmp_path / "mini.yaml", text, lambda p: S.load_sweep(str(p)), S.SweepError, "seeds: [3]", "seeds")


def test_yaml_merge_override_is_not_a_duplicate(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 5\n")
    assert D.read_yaml(path)["d"] == {"x": 5, "y": 2}
