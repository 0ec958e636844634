"""Trust at the edges (issue 13): duplicate YAML keys, bad raw files, representative --limit slices."""

from __future__ import annotations

import pytest

from finbench import data as D

ROOT = D.settings.ROOT


# --- duplicate keys ---------------------------------------------------------------------------


def _duplicate(text: str, after: str, line: str) -> str:
    """`text` with `line` inserted right after the first line starting with `after`."""
    lines = text.splitlines(keepends=True)
    i = next(n for n, ln in enumerate(lines) if ln.startswith(after))
    return "".join(lines[: i + 1] + [line + "\n"] + lines[i + 1 :])


def _line_of(text: str, line: str) -> int:
    return text.splitlines().index(line) + 1


def test_duplicate_key_in_recipe_is_refused_by_name(tmp_path):
    from finbench import recipes as R

    text = _duplicate((ROOT / "recipes" / "tiny_cpu.yaml").read_text(), "seed:", "seed: 7")
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(R.RecipeError) as err:
        R.load(path)
    assert f"{path}:{_line_of(text, 'seed: 7')}: duplicate key 'seed'" in str(err.value)
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
    path.write_text(text)
    with pytest.raises(M.MixtureError) as err:
        M.load_mixture(str(path))
    assert f"{path}:{_line_of(text, '    factor: 3')}: duplicate key 'factor'" in str(err.value)


def test_duplicate_key_in_design_is_refused_by_name(tmp_path):
    from finbench import mixtures as M

    src = (ROOT / "mixtures" / "designs" / "paper55.yaml").read_text()
    src = src.replace("base: ../paper_cocktail.yaml", f"base: {ROOT / 'mixtures' / 'paper_cocktail.yaml'}")
    text = _duplicate(src, "design:", "design: other")
    path = tmp_path / "paper55.yaml"
    path.write_text(text)
    with pytest.raises(M.MixtureError) as err:
        M.generate_design(path)
    assert f"{path}:{_line_of(text, 'design: other')}: duplicate key 'design'" in str(err.value)


def test_duplicate_key_in_sweep_is_refused_by_name(tmp_path):
    from finbench import sweep as S

    text = _duplicate((ROOT / "recipes" / "sweeps" / "mini.yaml").read_text(), "seeds:", "seeds: [3]")
    path = tmp_path / "mini.yaml"
    path.write_text(text)
    with pytest.raises(S.SweepError) as err:
        S.load_sweep(str(path))
    assert f"{path}:{_line_of(text, 'seeds: [3]')}: duplicate key 'seeds'" in str(err.value)


def test_yaml_merge_override_is_not_a_duplicate(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 5\n")
    assert D.read_yaml(path)["d"] == {"x": 5, "y": 2}
