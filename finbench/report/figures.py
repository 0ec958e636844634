"""The report's PNGs: heatmaps and bar charts with CIs (matplotlib, Agg, no timestamps: same bytes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from finbench.core.files import write_atomic


def _savefig(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=110, bbox_inches="tight",
                                             metadata={"Software": None}), binary=True)
    plt.close(fig)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def heatmap_png(path: Path, title: str, rows: list[str], cols: list[str], M: np.ndarray) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(cols), 1.0 + 0.6 * len(rows)))
    finite = M[np.isfinite(M)]
    lim = float(np.max(np.abs(finite))) if finite.size else 1.0
    im = ax.imshow(np.ma.masked_invalid(M), cmap="RdBu", vmin=-lim or -1, vmax=lim or 1)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("added task (pair partner)")
    ax.set_ylabel("target task (scored)")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if np.isfinite(M[i, j]):
                ax.text(j, i, f"{M[i, j]:+.2f}", ha="center", va="center", fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="delta vs single task")
    _savefig(fig, path)


def bars_png(path: Path, title: str, labels: list[str], vals: list[float], lows: list[float],
             highs: list[float], ylabel: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(labels), 3.2))
    v = np.array(vals, dtype=float)
    err = np.array([[max(0.0, a - lo) if np.isfinite(lo) else 0.0 for a, lo in zip(v, lows, strict=True)],
                    [max(0.0, hi - a) if np.isfinite(hi) else 0.0 for a, hi in zip(v, highs, strict=True)]])
    ax.bar(range(len(v)), np.nan_to_num(v), yerr=err, capsize=3,
           color=["#2b8cbe" if x >= 0 else "#e34a33" for x in np.nan_to_num(v)])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(v)), labels, rotation=45, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    _savefig(fig, path)
