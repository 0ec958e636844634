"""API models as first-class rows of a sweep (the lm-eval side is finbench/eval/api_models.py).

A sweep file may list

    api_models:
      - name: gpt-4o                          # the row label in the report ("gpt-4o (API)")
        model: openai-chat-completions        # lm-eval API backend (see api_models.BACKENDS)
        model_args: {model: gpt-4o-2024-08-06, num_concurrent: 4, max_retries: 3}
        gen_kwargs: {max_gen_toks: 64}        # optional: overrides the tasks' answer budget

Each entry is ONE run per sweep (`job: api_eval`, mixture `api`, seed 0): an API model is not
trained and lm-eval decodes greedily (the tasks set temperature 0), so training seeds do not
apply. The strict parser scores it beside the tolerant one, so the report's format-penalty table
shows what a strict format check costs it. Results land in the store like any run (recipe column
= the entry's name).

The run key hashes the entry (name, backend, model_args, gen_kwargs) and the sweep's eval
settings; transport-only args (num_concurrent, max_retries, timeout) are left out, so tuning
them never re-buys a finished run.

API keys never go into a sweep file (it is copied into the store and hashed into keys): an
`api_key` (or auth header, or credentials in a URL) in model_args is refused.
"""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from finbench.core import settings
from finbench.core.files import did_you_mean
from finbench.data import tasks as T
from finbench.eval import api_models as AM
from finbench.eval.api_models import BACKENDS, CHAT_BACKENDS, DEFAULT_URL, MIXTURE, accepted_args
from finbench.sweep.model import RunResult, RunSpec, SweepError, err, run_key, sha, split_limit
from finbench.sweep.scoring import score_splits

ENTRY_KEYS = {"name", "model", "model_args", "gen_kwargs"}
GEN_KWARGS = {"max_gen_toks", "until"}  # greedy decoding stays as the tasks set it
JOB = "api_eval"
SEED = 0  # stored seed of an API run: no training, greedy decoding
TRANSPORT_ARGS = frozenset({"num_concurrent", "max_retries", "timeout"})  # not part of the run key
SECRET_ARGS = frozenset({"api_key", "openai_api_key", "auth_token", "key", "token", "password"})
SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "openai-api-key"})


def _refuse_secret(where: str, key: str, arg: str) -> SweepError:
    return err(
        where, key,
        f"{arg!r}: API keys are never stored in a sweep file (it is copied into the sweep's "
        "store). Remove it and export OPENAI_API_KEY in the environment instead (lm-eval reads it "
        "from there)",
    )


def _check_url(where: str, key: str, backend: str, url: Any) -> None:
    if not isinstance(url, str) or not url:
        raise err(where, key, f"expected an http(s) URL, got {url!r}")
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise err(where, key, f"expected an http(s) URL with a host, got {url!r}")
    path = parts.path.rstrip("/")
    if backend in CHAT_BACKENDS and not path.endswith("/chat/completions"):
        raise err(where, key, f"{backend} posts to the full chat endpoint: expected a URL ending "
                                  f"in /v1/chat/completions, got {url!r}")
    if backend == "local-completions" and (not path.endswith("/completions") or path.endswith("/chat/completions")):
        raise err(where, key, f"local-completions posts to the full completions endpoint: expected a URL "
                                  f"ending in /v1/completions, got {url!r}")
    if parts.username or parts.password:
        raise _refuse_secret(where, key, "credentials in the URL")


def _check_name(where: str, i: int, entry: Any, names: set[str], recipe_names: list[str]) -> str:
    at = f"api_models[{i}]"
    if not isinstance(entry, dict):
        raise err(where, at, f"expected a mapping with name, model, model_args, got {entry!r}")
    extra = set(entry) - ENTRY_KEYS
    if extra:
        raise err(where, at, f"unknown key(s) {sorted(extra)}; expected {sorted(ENTRY_KEYS)}")
    name = entry.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:+-]*", name):
        raise err(where, f"{at}.name", f"expected a label of letters, digits and _.:+- , got {name!r}")
    at = f"api_models[{i}] ({name})"
    if name in names:
        raise err(where, f"{at}.name", "listed twice")
    if name in recipe_names:
        raise err(where, f"{at}.name", "is also a recipe name: the report could not tell them apart")
    return name


def _check_no_secrets(where: str, at: str, args: dict[str, Any]) -> None:
    for k, v in args.items():
        if str(k).lower() in SECRET_ARGS:
            raise _refuse_secret(where, f"{at}.model_args.{k}", k)
        if isinstance(v, str) and re.match(r"(sk|sess)-[A-Za-z0-9_-]{16,}", v):
            raise _refuse_secret(where, f"{at}.model_args.{k}", "a value that looks like an API key")
        if k == "header":
            if not isinstance(v, dict):
                raise err(where, f"{at}.model_args.header", f"expected a mapping, got {v!r}")
            for h in v:
                if str(h).lower() in SECRET_HEADERS:
                    raise _refuse_secret(where, f"{at}.model_args.header.{h}", h)
        elif v is not None and not isinstance(v, str | int | float | bool):
            raise err(where, f"{at}.model_args.{k}", f"expected a plain value, got {v!r}")
    if args.get("trust_remote_code"):
        raise err(where, f"{at}.model_args.trust_remote_code", "must stay off (no remote code is run)")


def _check_model_args(where: str, at: str, backend: str, args: Any) -> None:
    if not isinstance(args, dict):
        raise err(where, f"{at}.model_args", f"expected a mapping (model, base_url, ...), got {args!r}")
    _check_no_secrets(where, at, args)
    accepted = accepted_args(backend)
    unknown = sorted(set(args) - accepted)
    if unknown:
        hint = did_you_mean(unknown[0], sorted(accepted), quote=False)
        raise err(where, f"{at}.model_args", f"unknown argument(s) {unknown} for lm-eval's {backend} backend.{hint}")
    if not isinstance(args.get("model"), str) or not args["model"]:
        raise err(where, f"{at}.model_args.model", "missing: the provider's model id (e.g. gpt-4o-2024-08-06)")
    if "base_url" in args or backend not in DEFAULT_URL:  # local-*: no default endpoint
        _check_url(where, f"{at}.model_args.base_url", backend, args.get("base_url"))
    remote_tok = args.get("tokenizer_backend") == "remote"  # the server's own /tokenize endpoint
    if backend == "local-completions" and not remote_tok and not isinstance(args.get("tokenizer"), str):
        raise err(where, f"{at}.model_args.tokenizer",
                  "missing: local-completions sends a rendered prompt, so name the served model's "
                  "tokenizer (a local folder or hub id); its chat template renders our prompts")
    if backend == "local-completions" and (
        args.get("tokenized_requests") is False or args.get("tokenizer_backend", "huggingface") in (None, "None", "none")
    ):
        raise err(where, f"{at}.model_args.tokenized_requests",
                  "must stay true, with a tokenizer_backend, for local-completions: lm-eval renders the chat "
                  "template only for tokenized requests (otherwise the prompt goes out as a list of messages)")
    for k in ("num_concurrent", "max_retries", "timeout", "max_gen_toks", "max_length"):
        v = args.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise err(where, f"{at}.model_args.{k}", f"expected a positive integer, got {v!r}")


def _check_gen_kwargs(where: str, at: str, gk: Any) -> dict[str, Any]:
    gk = gk or {}
    if not isinstance(gk, dict) or set(gk) - GEN_KWARGS:
        raise err(where, f"{at}.gen_kwargs",
                  f"expected a mapping with keys from {sorted(GEN_KWARGS)} (decoding stays greedy), got {gk!r}")
    mg = gk.get("max_gen_toks")
    if mg is not None and (isinstance(mg, bool) or not isinstance(mg, int) or mg < 1):
        raise err(where, f"{at}.gen_kwargs.max_gen_toks", f"expected a positive integer, got {mg!r}")
    until = gk.get("until")
    if until is not None and (not isinstance(until, list) or not all(isinstance(s, str) and s for s in until)):
        raise err(where, f"{at}.gen_kwargs.until", f"expected a list of stop strings, got {until!r}")
    return dict(gk)


def _check_generative_tasks(where: str, at: str, backend: str, ev: dict[str, Any],
                            known_tasks: dict[str, T.TaskInfo]) -> None:
    if backend not in CHAT_BACKENDS:
        return
    for t in [*ev["tasks"], *ev.get("general", [])]:
        info = known_tasks.get(t)
        if info is not None and info.output_type != "generate_until":
            alt = t.removesuffix("_mc")
            hint = f"; score its generative variant {alt!r} instead" if alt in known_tasks and alt != t else ""
            raise err(where, f"{at}.model",
                      f"eval task {t!r} is {info.output_type} (log-likelihood of each label): {backend} "
                      f"returns no prompt log-probabilities, so API models score generative tasks only{hint}")


def parse_api_models(where: str, value: Any, ev: dict[str, Any], recipe_names: list[str]) -> list[dict[str, Any]]:
    """Validate the sweep's `api_models:` list; nothing is contacted here."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise err(where, "api_models", f"expected a list of {{name, model, model_args}} entries, got {value!r}")
    known_tasks = T.discover()
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, entry in enumerate(value):
        name = _check_name(where, i, entry, names, recipe_names)
        names.add(name)
        at = f"api_models[{i}] ({name})"
        backend = entry.get("model")
        if backend not in BACKENDS:
            raise err(where, f"{at}.model", f"expected an lm-eval API backend, one of {list(BACKENDS)}, "
                                            f"got {backend!r}.{did_you_mean(backend, BACKENDS, quote=False)}")
        args = entry.get("model_args")
        _check_model_args(where, at, backend, args)
        gk = _check_gen_kwargs(where, at, entry.get("gen_kwargs"))
        _check_generative_tasks(where, at, backend, ev, known_tasks)
        out.append({"name": name, "model": backend, "model_args": dict(args), "gen_kwargs": gk})
    return out


def expand(sweep: Any) -> list[RunSpec]:
    """One run per API model (not per seed)."""
    runs = []
    for entry in sweep.api_models:
        ident = {"name": entry["name"], "model": entry["model"], "gen_kwargs": entry["gen_kwargs"],
                 "model_args": {k: v for k, v in entry["model_args"].items() if k not in TRANSPORT_ARGS}}
        rsha = sha(json.dumps(ident, sort_keys=True))
        msha = sha(MIXTURE)
        runs.append(RunSpec(
            key=run_key(rsha, msha, SEED, JOB, sweep.eval), sweep=sweep.name, recipe=entry["name"],
            recipe_path="", mixture=MIXTURE, seed=SEED, job=JOB, eval=dict(sweep.eval), components={},
            recipe_sha=rsha, mixture_sha=msha, api=dict(entry),
        ))
    return runs


# --------------------------------------------------------------------------------------------
# The job


def run_api_job(spec_dict: dict[str, Any]) -> dict[str, Any]:
    """The sweep job of an API model: score every split; plain dict in and out like run_job."""
    spec = RunSpec.from_dict(spec_dict)
    entry = spec.api
    if not entry:
        raise SweepError(f"run {spec.key}: job {JOB} without an api_models entry")
    t0 = time.perf_counter()
    try:
        AM.preflight(entry)
    except AM.ApiModelError as error:
        raise SweepError(str(error)) from error
    lm = AM.make_lm(entry)
    root = settings.runs_dir() / "_api" / f"{entry['name']}-{spec.key[:12]}"
    info = {"api_model": entry["name"], "backend": entry["model"], "base_url": AM._url(entry),
            "model": entry["model_args"]["model"], "host": socket.gethostname(), "out_dir": str(root)}

    def score(split: str, out_dir: Path) -> None:
        try:
            AM.evaluate_split(lm, entry, split, spec.tasks_for(split), num_fewshot=spec.eval["num_fewshot"],
                              limit=split_limit(spec.eval, split), out_dir=out_dir)
        except AM.ApiModelError as error:
            raise SweepError(str(error)) from error

    result: RunResult = score_splits(spec, score, lambda split: root / f"eval-{split}",
                                     model_dir=f"api:{entry['model']}:{entry['model_args']['model']}",
                                     info=info, t0=t0)
    return result.to_dict()
