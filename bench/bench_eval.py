"""Speed and missing rate of finbench `fpb` against a FinGPT-style loop and a bare generation loop.

One run, one model (SmolLM2-135M-Instruct, fp32, CPU), the same FPB test rows for every arm:

1. finbench: `fpb` through `lm_eval.simple_evaluate` (hf backend, chat template, the task's own
   `gen_prefix`, `max_gen_toks` and stop strings), scores for the `tolerant` and `strict` filters;
2. FinGPT-style loop: FinGPT's plain prompt, `generate(max_length=512)`, batch 8, left padding, no
   stop string, FinGPT's parser ('positive' before 'negative', anything else -> neutral); we also
   parse its outputs with our own strict/tolerant parser to show what it would miss;
3. bare loop: the very prompts lm-eval rendered (its logged `arguments`), the same loaded model,
   batch size and generation settings (greedy, same max new tokens, same stop strings), in
   request order: harness overhead = finbench wall / bare wall;
4. vllm backend on the same rows, run in the separate venv `.venv-vllm` (see bench/README.md);
   skipped with "vllm: not installed" when that venv does not exist.

The FinGPT loop is slow (minutes for 200 rows), so by default it runs on `--fingpt-rows` rows
and its 200-row time is EXTRAPOLATED from the per-row time (labelled so in the output).
Figures are printed and written to bench/results/eval.json (temp file + rename).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DATA = ROOT / "tests" / "fixtures" / "data"
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
DEFAULT_OUT = ROOT / "bench" / "results" / "eval.json"
TASK = "fpb"
FILTERS = ("tolerant", "strict")
METRICS = ("score", "acc", "f1_weighted", "f1_macro", "missing_rate")

# FinGPT_Benchmark/benchmarks/fpb.py: instruction, prompt format, generate call and parser.
FINGPT_INSTRUCTION = (
    "What is the sentiment of this news? Please choose an answer from {negative/neutral/positive}."
)
FINGPT_MAX_LENGTH = 512
FINGPT_BATCH = 8


# ----------------------------------------------------------------------------------------------
# Set-up: data folder, model folder, rows


def choose_data_dir() -> tuple[Path, str]:
    """FINBENCH_DATA_DIR (the real raw files) if set, else the fixtures."""
    if os.environ.get("FINBENCH_DATA_DIR"):
        return Path(os.environ["FINBENCH_DATA_DIR"]).resolve(), "FINBENCH_DATA_DIR"
    return FIXTURE_DATA.resolve(), "fixture rows (tests/fixtures/data): plumbing only, not a benchmark"


def smollm2_dir() -> Path:
    from finbench.train import models
    path = models.smollm2()
    config = json.loads((path / "config.json").read_text())
    if (config.get("quantization_config") or {}).get("quant_method") == "gguf":
        raise SystemExit(
            f"{path / 'config.json'}: carries the GGUF `quantization_config`, so transformers "
            "refuses to load the converted fp32 weights; drop that key when converting (and "
            "delete this folder to rebuild it)."
        )
    return path


def test_rows(n: int) -> list[dict[str, Any]]:
    """The first `n` test rows of `fpb`: the rows lm-eval's `limit=n` scores."""
    from finbench.data.tasks import load_task, split_docs

    return split_docs(load_task(TASK), "test")[:n]


def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(ROOT / "tasks"), include_defaults=False)


# ----------------------------------------------------------------------------------------------
# 1. finbench through lm-eval (hf or vllm backend)


def run_finbench(lm, rows: int, label: str) -> dict[str, Any]:
    """`fpb` through lm_eval.simple_evaluate on an already-loaded lm-eval model."""
    import lm_eval

    gen_time = [0.0]
    original = lm.generate_until

    def timed_generate_until(requests, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(requests, *args, **kwargs)
        finally:
            gen_time[0] += time.perf_counter() - start

    lm.generate_until = timed_generate_until
    start = time.perf_counter()
    try:
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=[TASK],
            task_manager=task_manager(),
            apply_chat_template=True,
            limit=rows,
            log_samples=True,
            random_seed=0,
            numpy_random_seed=1234,
            torch_random_seed=1234,
        )
    finally:
        lm.generate_until = original
    wall = time.perf_counter() - start

    result = out["results"][TASK]
    metrics = {f: {m: result.get(f"{m},{f}") for m in METRICS} for f in FILTERS}
    samples = sorted(out["samples"][TASK], key=lambda s: (s["doc_id"], s["filter"]))
    per_doc: dict[int, dict[str, Any]] = {}
    for s in samples:
        entry = per_doc.setdefault(
            s["doc_id"],
            {
                "doc_id": s["doc_id"],
                "id": s["doc"]["id"],
                "gold": s["doc"]["label"],
                "prompt": s["arguments"][0][0],
                "gen_kwargs": s["arguments"][0][1],
                "output": s["resps"][0][0],
            },
        )
        entry[s["filter"]] = s["filtered_resps"][0]
    docs = [per_doc[k] for k in sorted(per_doc)]
    n_tokens = [len(lm.tok_encode(d["prompt"])) for d in docs] if hasattr(lm, "tok_encode") else []
    return {
        "label": label,
        "rows": len(docs),
        "wall_s": wall,
        "generate_until_s": gen_time[0],
        "metrics": metrics,
        "prompt_tokens_mean": sum(n_tokens) / len(n_tokens) if n_tokens else None,
        "gen_kwargs": docs[0]["gen_kwargs"] if docs else None,
        "docs": docs,
    }


def load_hf(model_dir: Path, batch_size: int):
    from lm_eval.models.huggingface import HFLM

    start = time.perf_counter()
    lm = HFLM(pretrained=str(model_dir), device="cpu", dtype="float32", batch_size=batch_size)
    return lm, time.perf_counter() - start


# ----------------------------------------------------------------------------------------------
# 2. FinGPT-style loop


def fingpt_prompt(text: str) -> str:
    return f"Instruction: {FINGPT_INSTRUCTION}\nInput: {text}\nAnswer: "


def fingpt_label(output: str) -> str:
    """FinGPT's change_target: 'positive' wins over 'negative'; anything else is 'neutral'."""
    if "positive" in output or "Positive" in output:
        return "positive"
    if "negative" in output or "Negative" in output:
        return "negative"
    return "neutral"


def run_fingpt(model, tokenizer, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    import torch

    from eval_plugins.parsers import MISSING, LabelParser

    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    outputs: list[str] = []
    useful = computed = 0
    eos = tokenizer.eos_token_id
    start = time.perf_counter()
    try:
        for i in range(0, len(rows), FINGPT_BATCH):
            prompts = [fingpt_prompt(r["text"]) for r in rows[i : i + FINGPT_BATCH]]
            tokens = tokenizer(prompts, return_tensors="pt", padding=True, max_length=FINGPT_MAX_LENGTH,
                               truncation=True)
            with torch.inference_mode():
                res = model.generate(**tokens, max_length=FINGPT_MAX_LENGTH, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)
            new = res[:, tokens["input_ids"].shape[1] :]
            computed += new.numel()
            for row in new.tolist():  # useful tokens: up to and including the first EOS
                useful += row.index(eos) + 1 if eos in row else len(row)
            decoded = tokenizer.batch_decode(res)  # FinGPT decodes specials too, then splits
            outputs += [o.split("Answer: ")[1] if "Answer: " in o else "" for o in decoded]
    finally:
        tokenizer.padding_side = old_side
    wall = time.perf_counter() - start

    golds = [r["label"] for r in rows]
    preds = [fingpt_label(o) for o in outputs]
    parser = LabelParser(rows[0]["choices"], dict(map(tuple, rows[0].get("synonyms") or [])))
    clean = [_strip_specials(o, tokenizer) for o in outputs]
    ours = {f: [parser(o, strict=(f == "strict")) for o in clean] for f in FILTERS}
    n = len(rows)
    return {
        "rows": n,
        "wall_s": wall,
        "per_row_s": wall / n,
        "acc_fingpt_parser": sum(p == g for p, g in zip(preds, golds, strict=True)) / n,
        "ours": {
            f: {
                "acc": sum(p == g for p, g in zip(ours[f], golds, strict=True)) / n,
                "missing_rate": sum(p == MISSING for p in ours[f]) / n,
            }
            for f in FILTERS
        },
        "generated_tokens_computed": computed,
        "generated_tokens_useful": useful,
        "examples": clean[:3],
    }


def _strip_specials(text: str, tokenizer) -> str:
    for tok in tokenizer.all_special_tokens:
        text = text.replace(tok, "")
    return text.strip()


# ----------------------------------------------------------------------------------------------
# 3. bare generation loop over lm-eval's own rendered prompts


def run_bare(lm, docs: Sequence[dict[str, Any]], batch_size: int) -> dict[str, Any]:
    """The same prompts, model, batch size, greedy decoding, max new tokens and stop strings as
    lm-eval, with nothing else: no request objects, no sorting by length, no filters or metrics."""
    import torch

    model, tok = lm.model, lm.tokenizer
    gen_kwargs = docs[0]["gen_kwargs"]
    eos_text = tok.decode([lm.eot_token_id])
    stops = list(dict.fromkeys([*gen_kwargs.get("until", []), eos_text]))
    max_new = int(gen_kwargs.get("max_gen_toks", 256))
    bos = getattr(tok, "bos_token", None)
    old_side = tok.padding_side
    tok.padding_side = "left"
    outputs: list[str] = []
    start = time.perf_counter()
    try:
        for i in range(0, len(docs), batch_size):
            prompts = [d["prompt"] for d in docs[i : i + batch_size]]
            # lm-eval adds no special tokens when the rendered prompt already starts with BOS.
            special = {"add_special_tokens": False} if bos and prompts[0].startswith(bos) else {}
            enc = tok(prompts, return_tensors="pt", padding="longest", **special)
            with torch.inference_mode():
                res = model.generate(**enc, max_new_tokens=max_new, do_sample=False,
                                     stop_strings=stops, tokenizer=tok, pad_token_id=tok.pad_token_id)
            for row in res[:, enc["input_ids"].shape[1] :].tolist():
                text = tok.decode(row, skip_special_tokens=False)
                cut = min((text.find(s) for s in stops if s in text), default=len(text))
                outputs.append(text[:cut])
    finally:
        tok.padding_side = old_side
    wall = time.perf_counter() - start
    same = sum(o == d["output"] for o, d in zip(outputs, docs, strict=True))
    return {"rows": len(docs), "wall_s": wall, "same_output_as_lm_eval": same}


# ----------------------------------------------------------------------------------------------
# 4. vllm backend (in .venv-vllm, through a subprocess running this file with --vllm-worker)


def vllm_worker(model_dir: Path, rows: int, out: Path, batch_size: str) -> None:
    from finbench.eval.vllm_compat import ensure_vllm_metadata

    ensure_vllm_metadata()
    from lm_eval.models.vllm_causallms import VLLM

    start = time.perf_counter()
    # enforce_eager: no graph capture on CPU; gpu_memory_utilization is the share of RAM vLLM
    # reserves on CPU (the default 0.92 refuses to start beside other processes).
    lm = VLLM(pretrained=str(model_dir), dtype="float32", enforce_eager=True, seed=1234,
              max_model_len=2048, gpu_memory_utilization=0.3, batch_size=batch_size)
    load = time.perf_counter() - start
    result = run_finbench(lm, rows, "finbench fpb (vllm)")
    result["load_s"] = load
    import vllm

    result["vllm_version"] = vllm.__version__
    _write_json(out, result)


def run_vllm(model_dir: Path, rows: int, batch_size: str, data_dir: Path) -> dict[str, Any] | None:
    python = Path(sys.executable) if _has_vllm() else VLLM_PYTHON
    if python != Path(sys.executable) and not python.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "vllm.json"
        cmd = [str(python), str(Path(__file__).resolve()), "--vllm-worker", "--model", str(model_dir),
               "--rows", str(rows), "--vllm-batch-size", batch_size, "--out", str(out)]
        env = dict(os.environ, FINBENCH_DATA_DIR=str(data_dir), VLLM_TARGET_DEVICE="cpu")
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            return {"error": f"exit {proc.returncode}", "log_tail": (proc.stdout + proc.stderr)[-3000:]}
        return json.loads(out.read_text())


def _has_vllm() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def compare_backends(hf: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    pairs = list(zip(hf["docs"], other["docs"], strict=True))
    n = len(pairs)
    out: dict[str, Any] = {"rows": n, "same_raw_output": sum(a["output"] == b["output"] for a, b in pairs)}
    for f in FILTERS:
        out[f"same_{f}_label"] = sum(a[f] == b[f] for a, b in pairs)
    out["differences"] = [
        {"id": a["id"], "hf": a["output"], "vllm": b["output"]}
        for a, b in pairs
        if a["output"] != b["output"]
    ][:10]
    return out


# ----------------------------------------------------------------------------------------------
# Driver


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, ensure_ascii=False, default=str)
        fh.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp creates 0600
    os.replace(tmp, path)


def _fmt_metrics(m: dict[str, dict[str, float]]) -> str:
    return "  ".join(
        f"{f}: score {m[f]['score']:.3f} acc {m[f]['acc']:.3f} missing {m[f]['missing_rate']:.1%}"
        for f in FILTERS
    )


def _step(msg: str, fn: Callable[[], Any]) -> Any:
    print(f"[bench] {msg} ...", flush=True)
    return fn()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=200, help="FPB test rows for finbench/bare/vllm (default 200)")
    p.add_argument("--fingpt-rows", type=int, default=48,
                   help="rows for the slow FinGPT-style loop; its 200-row time is extrapolated "
                        "from these (default 48; use --fingpt-rows 200 for the real figure)")
    p.add_argument("--batch-size", type=int, default=64, help="hf batch size for finbench and the bare loop")
    p.add_argument("--vllm", choices=("auto", "skip"), default="auto",
                   help="auto: run the vllm backend if .venv-vllm (or this interpreter) has vllm")
    p.add_argument("--vllm-batch-size", default="auto")
    p.add_argument("--model", type=Path, help="HF model folder (default: SmolLM2-135M-Instruct)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--fingpt-only", action="store_true",
                   help="run only the FinGPT-style loop on --fingpt-rows rows (its real time)")
    p.add_argument("--vllm-worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rows < 1 or args.fingpt_rows < 0:
        raise SystemExit("--rows must be >= 1 and --fingpt-rows >= 0")
    data_dir, data_source = choose_data_dir()
    os.environ["FINBENCH_DATA_DIR"] = str(data_dir)
    if args.vllm_worker:
        vllm_worker(args.model, args.rows, args.out, args.vllm_batch_size)
        return 0

    import torch
    import transformers

    torch.manual_seed(0)
    model_dir = args.model or _step("SmolLM2-135M-Instruct folder", smollm2_dir)
    wanted = args.fingpt_rows if args.fingpt_only else args.rows
    rows = _step(f"loading {TASK} test rows from {data_dir} ({data_source})", lambda: test_rows(wanted))
    n = len(rows)
    print(f"[bench] {n} rows; threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.2f}")

    if args.fingpt_only:
        return fingpt_only(model_dir, rows, args.out, data_dir, data_source)

    lm, load_s = load_hf(model_dir, args.batch_size)
    fin = _step(f"finbench {TASK} via lm-eval (hf, batch {args.batch_size})",
                lambda: run_finbench(lm, n, "finbench fpb (hf)"))
    fin["load_s"] = load_s
    print(f"  wall {fin['wall_s']:.1f} s (generate_until {fin['generate_until_s']:.1f} s, model load "
          f"{load_s:.1f} s)  {_fmt_metrics(fin['metrics'])}")

    bare = _step(f"bare loop over lm-eval's {n} rendered prompts (batch {args.batch_size})",
                 lambda: run_bare(lm, fin["docs"], args.batch_size))
    overhead = fin["wall_s"] / bare["wall_s"]
    print(f"  wall {bare['wall_s']:.1f} s; same output as lm-eval {bare['same_output_as_lm_eval']}/{n}; "
          f"harness overhead {overhead:.2f} (goal <= 1.0)")

    fingpt = None
    k = min(args.fingpt_rows, n)
    if k:
        fingpt = _step(f"FinGPT-style loop on {k} rows (max_length {FINGPT_MAX_LENGTH}, batch {FINGPT_BATCH})",
                       lambda: run_fingpt(lm.model, lm.tokenizer, rows[:k]))
        fingpt["extrapolated"] = k < n
        fingpt["wall_s_for_all_rows"] = fingpt["per_row_s"] * n
        tag = f"EXTRAPOLATED from {k} rows" if k < n else "measured"
        print(f"  wall {fingpt['wall_s']:.1f} s ({fingpt['per_row_s']:.2f} s/row; {n} rows: "
              f"{fingpt['wall_s_for_all_rows']:.0f} s, {tag}); acc (FinGPT parser) "
              f"{fingpt['acc_fingpt_parser']:.3f}; our parser on its outputs: "
              + "  ".join(f"{f} acc {fingpt['ours'][f]['acc']:.3f} missing {fingpt['ours'][f]['missing_rate']:.1%}"
                          for f in FILTERS)
              + f"; tokens computed {fingpt['generated_tokens_computed']} for "
              f"{fingpt['generated_tokens_useful']} useful")

    vllm_result = comparison = None
    if args.vllm == "auto":
        vllm_result = _step("finbench fpb via lm-eval (vllm backend, .venv-vllm)",
                            lambda: run_vllm(model_dir, n, args.vllm_batch_size, data_dir))
        if vllm_result is None:
            print("vllm: not installed (no vllm here and no .venv-vllm; see bench/README.md)")
        elif "error" in vllm_result:
            print(f"vllm: failed ({vllm_result['error']}):\n{vllm_result['log_tail']}")
        else:
            comparison = compare_backends(fin, vllm_result)
            print(f"  wall {vllm_result['wall_s']:.1f} s (generate_until {vllm_result['generate_until_s']:.1f} s, "
                  f"load {vllm_result['load_s']:.1f} s)  {_fmt_metrics(vllm_result['metrics'])}")
            print(f"  vs hf: same raw output {comparison['same_raw_output']}/{n}, same tolerant label "
                  f"{comparison['same_tolerant_label']}/{n}, same strict label {comparison['same_strict_label']}/{n}")
    else:
        print("vllm: skipped (--vllm skip)")

    summary: dict[str, Any] = {"harness_overhead": overhead, "harness_overhead_goal": 1.0}
    if fingpt:
        speedup = fingpt["wall_s_for_all_rows"] / fin["wall_s"]
        summary |= {
            "speedup_vs_fingpt": speedup,
            "speedup_vs_fingpt_extrapolated": fingpt["extrapolated"],
            "speedup_goal": 15.0,
            "missing_rate_goal": 0.05,
            "goals_met": speedup >= 15 and all(fin["metrics"][f]["missing_rate"] <= 0.05 for f in FILTERS),
        }
        tag = " (FinGPT time extrapolated)" if fingpt["extrapolated"] else ""
        print(f"[bench] finbench vs FinGPT loop: {speedup:.1f}x faster{tag} (goal >= 15x), missing rate "
              + ", ".join(f"{f} {fin['metrics'][f]['missing_rate']:.1%}" for f in FILTERS)
              + " (goal <= 5%)")
    result = {
        "model": str(model_dir),
        "task": TASK,
        "rows": n,
        "data_dir": str(data_dir),
        "data_source": data_source,
        "device": "cpu",
        "dtype": "float32",
        "batch_size": args.batch_size,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "lm_eval": _version("lm_eval"),
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "finbench": {k: v for k, v in fin.items() if k != "docs"},
        "bare": bare,
        "fingpt": fingpt,
        "vllm": ({k: v for k, v in vllm_result.items() if k != "docs"} if vllm_result else "not installed"),
        "hf_vs_vllm": comparison,
        "summary": summary,
        "outputs": [{k: d[k] for k in ("id", "gold", "output", "tolerant", "strict")} for d in fin["docs"]],
    }
    _write_json(args.out, result)
    print(f"[bench] wrote {args.out}")
    return 0


def fingpt_only(model_dir: Path, rows: list[dict[str, Any]], out: Path, data_dir: Path,
                data_source: str) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    k = len(rows)
    print(f"[bench] FinGPT-style loop only, {k} rows; threads {torch.get_num_threads()}; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    fingpt = run_fingpt(model, tokenizer, rows)
    print(f"  wall {fingpt['wall_s']:.1f} s ({fingpt['per_row_s']:.2f} s/row); acc (FinGPT parser) "
          f"{fingpt['acc_fingpt_parser']:.3f}; ours: {fingpt['ours']}; tokens computed "
          f"{fingpt['generated_tokens_computed']} for {fingpt['generated_tokens_useful']} useful")
    _write_json(out, {"model": str(model_dir), "rows": k, "data_dir": str(data_dir),
                      "data_source": data_source, "threads": torch.get_num_threads(),
                      "load_average_end": os.getloadavg(), "fingpt": fingpt})
    print(f"[bench] wrote {out}")
    return 0


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":  # vLLM starts worker processes: keep the entry point guarded
    sys.exit(main())
