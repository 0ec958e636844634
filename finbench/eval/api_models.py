"""API models (GPT-4o and other OpenAI-compatible endpoints) scored through lm-eval's API backends.

This module is the eval side: the backends, the endpoint check made before anything is sent, and
scoring one split of tasks through lm-eval. The sweep side (the `api_models:` block of a sweep
file, one run per entry, the job) is finbench/sweep/api_runs.py.

Each model is scored by lm-eval's own API backend with `apply_chat_template=True` (the prompt goes
out as chat messages, the task's `gen_prefix` as a trailing assistant turn) on the same tasks,
splits and filters as every other model: the `tolerant` and `strict` parsers both score it.

API keys never go into a sweep file: lm-eval reads OPENAI_API_KEY from the environment (and so
does `preflight`, at the call: a secret is never part of finbench's settings value). With
`--executor ray` on a real cluster, export the key on the worker nodes.

Backends (lm-eval 0.4.13, lm_eval/models/openai_completions.py):
- openai-chat-completions: OpenAI's /v1/chat/completions (base_url defaults to it); needs
  OPENAI_API_KEY. No prompt log-probabilities: generative tasks only.
- local-chat-completions: any OpenAI-compatible server (vLLM, TGI, llama.cpp, ...); base_url is
  the full .../v1/chat/completions URL. Generative tasks only.
- local-completions: a raw /v1/completions endpoint; the prompt is rendered by the model's own
  chat template, so model_args must name its `tokenizer` (a local folder or hub id).
"""

from __future__ import annotations

import inspect
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from finbench.eval import evaluate as E

BACKENDS = ("openai-chat-completions", "local-chat-completions", "local-completions")
CHAT_BACKENDS = ("openai-chat-completions", "local-chat-completions")
MIXTURE = "api"  # the mixture column an API model's results carry in a sweep's store and report
LM_EVAL_SEED = 1234  # lm-eval's default seed (few-shot sampling, the request's `seed` field)
KEY_ENV = {"openai-chat-completions": "OPENAI_API_KEY"}
DEFAULT_URL = {"openai-chat-completions": "https://api.openai.com/v1/chat/completions"}


class ApiModelError(ValueError):
    """An API model that cannot be scored (no key, endpoint unreachable, requests failing)."""


def label(name: str) -> str:
    """How an API model is labelled in reports."""
    return f"{name} (API)"


def _lm_class(backend: str) -> type:
    import lm_eval.models.openai_completions  # noqa: F401  (registers the API backends only)
    from lm_eval.api.registry import get_model

    return get_model(backend)


def accepted_args(backend: str) -> set[str]:
    """Keyword arguments the lm-eval backend's constructors name (its **kwargs swallow typos)."""
    names: set[str] = set()
    for klass in _lm_class(backend).__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                names.add(p.name)
    return names


def _url(entry: dict[str, Any]) -> str:
    return entry["model_args"].get("base_url") or DEFAULT_URL[entry["model"]]


def preflight(entry: dict[str, Any], timeout: float = 10.0) -> None:
    """The key is in the environment and the endpoint accepts connections; nothing is sent."""
    name, backend = entry["name"], entry["model"]
    env = KEY_ENV.get(backend)
    if env and not os.environ.get(env):
        raise ApiModelError(f"api model {name!r}: {backend} needs the {env} environment variable "
                            "(keys are never read from sweep files). Nothing was sent")
    url = _url(entry)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as error:
        raise ApiModelError(
            f"api model {name!r}: base_url {url} is not reachable ({type(error).__name__}: {error}); start the "
            "server or fix model_args.base_url. Nothing was sent"
        ) from error


def make_lm(entry: dict[str, Any]) -> Any:
    args = dict(entry["model_args"])
    if entry["model"] == "local-completions":
        # rendered by the served model's tokenizer (its chat template), sent as token ids
        args.setdefault("tokenizer_backend", "huggingface")
    else:
        args.setdefault("tokenizer_backend", None)  # the provider applies its own template
    return _lm_class(entry["model"])(**args)


def _transport_error(err: BaseException) -> str | None:
    """A readable reason when `err` is a failed request (after lm-eval's retries), else None."""
    import requests

    try:
        import aiohttp
        aio: tuple[type[BaseException], ...] = (aiohttp.ClientError,)
    except ImportError:
        aio = ()
    try:
        from tenacity import RetryError
        aio += (RetryError,)
    except ImportError:
        pass
    seen = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (requests.RequestException, TimeoutError, ConnectionError, *aio)):
            status = getattr(getattr(e, "response", None), "status_code", None) or getattr(e, "status", None)
            hint = ""
            if status in (401, 403):
                hint = " (authentication: check OPENAI_API_KEY)"
            elif status == 429:
                hint = " (rate limited: lower num_concurrent or raise max_retries)"
            return f"{type(e).__name__}: {e}{hint}"
        e = e.__cause__ or e.__context__
    return None


def _refuse_loglikelihood(entry: dict[str, Any]) -> Any:
    """A check for run_lm_eval: chat backends return no log-probabilities (generative tasks only)."""
    def check(task_objs: list[Any]) -> None:
        for task in task_objs:
            otype = task.config.output_type
            if entry["model"] in CHAT_BACKENDS and otype != "generate_until":
                raise ApiModelError(f"api model {entry['name']!r}: task {task.config.task!r} is {otype}: "
                                 f"{entry['model']} returns no log-probabilities (generative tasks only). "
                                 "Nothing was sent")
    return check


def evaluate_split(lm: Any, entry: dict[str, Any], split: str, tasks: list[str], *, num_fewshot: int,
                   limit: int | float | None, out_dir: Path) -> None:
    """Score the API model on one split of `tasks` (lm-eval, chat messages) into out_dir."""
    try:
        results = E.run_lm_eval(lm, tasks, split=split, seed=LM_EVAL_SEED, num_fewshot=num_fewshot,
                                limit=limit, gen_kwargs=entry["gen_kwargs"],
                                check=_refuse_loglikelihood(entry))
    except Exception as error:
        reason = _transport_error(error)
        if reason is None:
            raise
        raise ApiModelError(
            f"api model {entry['name']!r}: requests to {_url(entry)} failed after "
            f"{entry['model_args'].get('max_retries', 3)} tries: {reason}"
        ) from error
    E.write_results(results or {}, out_dir, extra={
        "split": split, "api_model": entry["name"], "backend": entry["model"], "tasks": tasks,
        "model_args": entry["model_args"], "gen_kwargs": entry["gen_kwargs"],
    })
