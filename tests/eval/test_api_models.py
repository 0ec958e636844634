"""API models as rows of a sweep: lm-eval's real OpenAI backends over real HTTP, our parsers, store, report.

There is no network here, so a stdlib HTTP server on 127.0.0.1 stands in for GPT-4o: it speaks the
OpenAI chat-completions protocol (POST /v1/chat/completions, `choices[].message.content`, honours
`stop` and the token budget) and answers like a verbose chat model would, with the right label
(looked up from the fixture rows the prompt quotes) usually inside a sentence ("The sentiment of
this sentence is positive.") and sometimes as a bare word. What is under test is OUR client path:
the sweep file, lm-eval's own `openai-chat-completions` backend with the chat template applied,
the tasks' tolerant and strict parsers, the store and the report, where the gap between the two
parsers (the format penalty) must show, computed from the stored per-item predictions.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import socket
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from eval_plugins.parsers import MISSING
from finbench import sweep as SW
from finbench.eval import api_models as AM
from finbench.sweep import api_runs as AR

pytest.importorskip("tenacity", reason="lm-eval's API backends need lm-eval[api] (tenacity, aiohttp)")

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "data"
API_KEY = "test-key-from-env"


def _style(text: str) -> str:
    """How the stand-in answers a sentence: deterministic, mostly verbose, sometimes terse."""
    return "terse" if int(hashlib.sha256(text.encode()).hexdigest(), 16) % 3 == 0 else "verbose"


class StandIn:
    """An OpenAI-compatible chat endpoint in a thread; records every request it receives."""

    def __init__(self, golds: dict[str, str], fail_status: int | None = None, tokenizer=None) -> None:
        self.golds = golds
        self.fail_status = fail_status
        self.tokenizer = tokenizer  # /v1/completions: decodes token-id prompts, as vLLM's server does
        self.requests: list[dict] = []
        self.answers: dict[str, tuple[str, str]] = {}  # sentence -> (style, answer)
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                           "body": body})
                if outer.fail_status:
                    return self._send(outer.fail_status, {"error": {"message": "upstream overloaded"}})
                if self.path == "/v1/chat/completions":
                    return self._send(200, outer.complete(body))
                if self.path == "/v1/completions" and outer.tokenizer is not None:
                    return self._send(200, outer.complete_text(body))
                self._send(404, {"error": {"message": f"no route {self.path}"}})

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/chat/completions"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def complete(self, body: dict) -> dict:
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        text = self.answer(user, body)
        return {"id": "chatcmpl-standin", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}]}

    def complete_text(self, body: dict) -> dict:
        prompts = body["prompt"]
        prompts = [prompts] if isinstance(prompts, str) or isinstance(prompts[0], int) else prompts
        texts = [p if isinstance(p, str) else self.tokenizer.decode(p) for p in prompts]
        with self.lock:
            self.prompts = [*getattr(self, "prompts", []), *texts]
        return {"id": "cmpl-standin", "object": "text_completion", "model": body["model"],
                "choices": [{"index": i, "finish_reason": "stop", "text": self.answer(t, body)}
                            for i, t in enumerate(texts)]}

    def answer(self, prompt: str, body: dict) -> str:
        match = re.search(r"Sentence: (.*)\n", prompt)
        sentence = match.group(1) if match else ""
        gold = self.golds.get(sentence)
        if gold is None:
            text = "I cannot tell from this text."
        elif _style(sentence) == "terse":
            text = gold.capitalize()
        else:
            text = f"The sentiment of this sentence is {gold}."
        for stop in body.get("stop") or []:  # the protocol: generation ends before a stop string
            text = text.split(stop)[0]
        budget = body.get("max_completion_tokens") or body.get("max_tokens")
        if budget:  # one word ~ one token: enough to honour the budget in spirit
            text = " ".join(text.split(" ")[:budget])
        with self.lock:
            self.answers[sentence] = (_style(sentence), text)
        return text

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def golds() -> dict[str, str]:
    """Gold labels of the FPB fixture rows, by sentence (what the stand-in 'knows')."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FINBENCH_DATA_DIR", str(FIXTURES))
    try:
        from finbench.data import tasks as T
        task = T.load_task("fpb")
        return {d["text"]: d["label"] for split in ("dev", "test") for d in T.split_docs(task, split)}
    finally:
        mp.undo()


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(FIXTURES))
    monkeypatch.setenv("FINBENCH_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    return tmp_path


def _write_sweep(tmp: Path, api_models: list, name: str = "a", tasks: tuple = ("fpb",)) -> Path:
    spec = {
        "description": "API model test sweep",
        "recipes": ["tiny_cpu"],
        "mixtures": ["paper55/fpb"],
        "seeds": [1],
        "job": "eval_only",
        "eval": {"tasks": list(tasks), "splits": ["dev", "test"], "limit": 4, "backend": "hf", "batch_size": 4},
        "store": str(tmp / f"{name}.sqlite"),
        "api_models": api_models,
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def _gpt4o(url: str, **args) -> dict:
    return {"name": "gpt-4o", "model": "openai-chat-completions",
            "model_args": {"model": "gpt-4o-2024-08-06", "base_url": url, "num_concurrent": 2, "max_retries": 1,
                           **args}}


def _recipe_result(spec: dict) -> dict:
    """Stored scores for the sweep's trained-model row (not under test here): 3 of 4 right, terse."""
    golds = ["negative", "neutral", "positive", "neutral"]
    preds = ["negative", "neutral", "positive", "positive"]
    evals = {}
    for split in ("dev", "test"):
        items = [{"task": "fpb", "filter": f, "doc_id": i, "doc_hash": f"{split}{i}", "target": g, "prediction": p,
                  "metrics": {"*": ["", g, p]}} for f in ("tolerant", "strict")
                 for i, (g, p) in enumerate(zip(golds, preds, strict=True))]
        from eval_plugins.metrics import score

        value = score([("", g, p) for g, p in zip(golds, preds, strict=True)])
        evals[split] = {"scores": [{"task": "fpb", "metric": "score", "filter": f, "value": value, "stderr": None}
                                   for f in ("tolerant", "strict")],
                        "items": items, "aggregations": {"fpb": {"score": ["eval_plugins.metrics.score", True]}}}
    return {"evals": evals, "seconds": 0.1, "model_dir": "/m"}


def _job(spec: dict) -> dict:
    # the API run goes through the sweep's real job; the trained-model row is filler for the report
    return SW.run_job(spec) if spec["job"] == AR.JOB else _recipe_result(spec)


# ------------------------------------------------------------------------------ the real path


def test_api_model_is_scored_stored_and_reported_with_its_format_penalty(env, golds, capsys) -> None:
    from finbench.report import build as RP
    with StandIn(golds) as server:
        path = _write_sweep(env, [{**_gpt4o(server.url), "gen_kwargs": {"max_gen_toks": 32}}])
        sw = SW.load_sweep(str(path))
        api_runs = [r for r in sw.runs if r.job == AR.JOB]
        assert len(api_runs) == 1 and len(sw.runs) == 2  # one API run, not one per seed
        run = api_runs[0]
        assert (run.recipe, run.mixture, run.components) == ("gpt-4o", AM.MIXTURE, {})

        assert SW.main(["plan", str(path)]) == 0
        out = capsys.readouterr().out
        assert re.search(rf"{run.key}\s+pending\s+gpt-4o\s+api\s+seed=- job=api_eval", out)
        assert "+ 1 API-model run(s)" in out
        assert not server.requests  # planning sends nothing

        counts = SW.run_sweep(str(path), "local", job=_job, log=lambda _: None)
        assert counts == {"done": 2, "failed": 0, "skipped": 0}

        # what went over the wire: lm-eval's OpenAI chat payload, greedy, key from the environment
        assert len(server.requests) == 8  # 4 dev + 4 test rows
        for req in server.requests:
            body = req["body"]
            assert req["path"] == "/v1/chat/completions" and req["auth"] == f"Bearer {API_KEY}"
            assert body["model"] == "gpt-4o-2024-08-06" and body["temperature"] == 0
            assert body["messages"][0]["role"] == "user" and "Sentence: " in body["messages"][0]["content"]
            assert body["messages"][-1] == {"role": "assistant", "content": "The sentiment is"}  # gen_prefix
            assert body["max_completion_tokens"] == 32 and "\n" in body["stop"]  # gen_kwargs over the task's 8

        db = sqlite3.connect(sw.store)
        db.row_factory = sqlite3.Row
        try:
            row = db.execute("SELECT * FROM runs WHERE key=?", (run.key,)).fetchone()
            assert (row["status"], row["recipe"], row["mixture"], row["job"]) == ("done", "gpt-4o", "api", "api_eval")
            assert row["model_dir"] == "api:openai-chat-completions:gpt-4o-2024-08-06"
            scores = {(r["split"], r["filter"]): r["value"] for r in db.execute(
                "SELECT * FROM scores WHERE run_key=? AND task='fpb' AND metric='score'", (run.key,))}
            assert set(scores) == {(s, f) for s in ("dev", "test") for f in ("tolerant", "strict")}
            items = db.execute("SELECT split, filter, doc_hash, target, prediction FROM items "
                               "WHERE run_key=? AND task='fpb'", (run.key,)).fetchall()
        finally:
            db.close()
        # per item: the tolerant parser reads the label out of every answer; the strict one only
        # out of the bare-word answers (the stand-in's log says how many there were)
        assert len(items) == 2 * 2 * 4
        by_target_split: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for it in items:
            by_target_split.setdefault((it["split"], it["filter"]), []).append((it["target"], it["prediction"]))
        n_bare = 0
        for split in ("dev", "test"):
            assert all(pred == gold for gold, pred in by_target_split[(split, "tolerant")])
            assert all(pred in (gold, MISSING) for gold, pred in by_target_split[(split, "strict")])
            n_bare += sum(pred != MISSING for _, pred in by_target_split[(split, "strict")])
        answered = list(server.answers.values())
        assert len(answered) == 8 and {s for s, _ in answered} == {"terse", "verbose"}
        assert n_bare == sum(s == "terse" for s, _ in answered)
        assert all(a.startswith("The sentiment of this sentence is ") for s, a in answered if s == "verbose")
        # the corpus scores are those of the stored items, and the penalty is real
        from eval_plugins.metrics import score

        for split in ("dev", "test"):
            for f in ("tolerant", "strict"):
                its = [("", g, p) for g, p in by_target_split[(split, f)]]
                assert scores[(split, f)] == pytest.approx(score(its))
        assert scores[("test", "tolerant")] > scores[("test", "strict")]

        # a second run has nothing to do and sends nothing
        n = len(server.requests)
        assert SW.run_sweep(str(path), "local", job=_job, log=lambda _: None)["skipped"] == 2
        assert len(server.requests) == n

    # the key came from the environment and was stored nowhere
    stored = [p for p in (*env.glob("a.sqlite*"), *(env / "runs").rglob("*")) if p.is_file()]
    assert stored and not any(API_KEY.encode() in p.read_bytes() for p in stored)

    report = RP.build_report(sw.store, env / "report", resamples=200)
    md = report.read_text()
    table = md.split("## tiny_cpu: test scores")[1].split("###")[0]
    api_line = next(line for line in table.splitlines() if line.startswith("| gpt-4o (API) |"))
    assert re.search(r"\| gpt-4o \(API\) \| \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] \|$", api_line)  # with a CI
    assert "**" not in api_line and "†" not in api_line  # never a candidate
    tol, st = scores[("test", "tolerant")], scores[("test", "strict")]
    assert f"| gpt-4o (API) | fpb | {tol:.3f} | {st:.3f} | {tol - st:+.3f} |" in md
    assert "what a strict format check would cost each model" in md
    assert "gpt-4o" not in md.split("### tiny_cpu: cocktail effect")[1].split("## Format penalty")[0]
    rows = list(csv.DictReader((env / "report" / "per_task.csv").open()))
    api_rows = {(r["split"], r["filter"]): r for r in rows if r["recipe"] == "gpt-4o"}
    assert {r["mixture"] for r in api_rows.values()} == {"api"}
    assert float(api_rows[("test", "strict")]["mean"]) == pytest.approx(st)
    assert api_rows[("test", "tolerant")]["n_items"] == "4"
    assert not [r for r in csv.DictReader((env / "report" / "cocktail_effect.csv").open()) if r["recipe"] == "gpt-4o"]


# ------------------------------------------------------------------------------ refused early


@pytest.mark.parametrize(
    ("entry", "tasks", "match"),
    [
        ({"model_args": {"api_key": "sk-abc"}}, ("fpb",),
         r"api_models\[0\] \(gpt-4o\)\.model_args\.api_key: 'api_key': API keys are never stored.*OPENAI_API_KEY"),
        ({"model_args": {"header": {"Authorization": "Bearer x"}}}, ("fpb",), r"model_args\.header\.Authorization"),
        ({}, ("fpb", "fpb_mc"),
         r"a\.yaml: api_models\[0\] \(gpt-4o\)\.model: eval task 'fpb_mc' is multiple_choice.*"
         r"generative tasks only; score its generative variant 'fpb'"),
        ({"model": "openai-chat"}, ("fpb",), r"\.model: expected an lm-eval API backend.*Did you mean openai-chat-completions"),
        ({"model_args": {"max_retry": 2}}, ("fpb",), r"unknown argument\(s\) \['max_retry'\].*Did you mean max_retries"),
        ({"model_args": {"trust_remote_code": True}}, ("fpb",), r"trust_remote_code: must stay off"),
        ({"name": "tiny_cpu"}, ("fpb",), r"\.name: is also a recipe name"),
        ({"gen_kwargs": {"temperature": 0.7}}, ("fpb",), r"gen_kwargs: expected a mapping with keys from"),
    ],
)
def test_bad_api_entries_fail_before_any_request(env, golds, entry, tasks, match) -> None:
    with StandIn(golds) as server:
        e = _gpt4o(server.url)
        e["model_args"].update(entry.pop("model_args", {}))
        e.update(entry)
        path = _write_sweep(env, [e], tasks=tasks)
        with pytest.raises(SW.SweepError, match=match):
            SW.run_sweep(str(path), "local", log=lambda _: None)
        assert server.requests == []
    assert not (env / "a.sqlite").exists()  # nothing recorded


def test_base_url_must_be_the_full_endpoint(env) -> None:
    bad = _gpt4o("http://127.0.0.1:9/v1")
    bad["model"] = "local-chat-completions"
    with pytest.raises(SW.SweepError, match=r"model_args\.base_url: local-chat-completions posts to the full chat "
                                            r"endpoint: expected a URL ending in /v1/chat/completions"):
        SW.load_sweep(str(_write_sweep(env, [bad])))
    no_url = {"name": "m", "model": "local-chat-completions", "model_args": {"model": "m"}}
    with pytest.raises(SW.SweepError, match=r"base_url: expected an http\(s\) URL"):
        SW.load_sweep(str(_write_sweep(env, [no_url])))
    completions = {"name": "m", "model": "local-completions",
                   "model_args": {"model": "m", "base_url": "http://127.0.0.1:9/v1/completions"}}
    with pytest.raises(SW.SweepError, match=r"model_args\.tokenizer: missing: local-completions"):
        SW.load_sweep(str(_write_sweep(env, [completions])))


def test_run_key_follows_the_model_not_the_transport(env) -> None:
    def key(**args) -> str:
        sw = SW.load_sweep(str(_write_sweep(env, [_gpt4o("http://127.0.0.1:9/v1/chat/completions", **args)])))
        return next(r.key for r in sw.runs if r.job == AR.JOB)

    base = key()
    assert key(num_concurrent=8, max_retries=5) == base  # tuning the client never re-buys a run
    assert key(model="gpt-4o-mini") != base
    assert key(base_url="http://127.0.0.1:9/other/v1/chat/completions") != base
    # and training seeds do not touch it
    sw = SW.load_sweep(str(_write_sweep(env, [_gpt4o("http://127.0.0.1:9/v1/chat/completions")])))
    assert next(r.key for r in sw.runs if r.job == AR.JOB) == base


# ------------------------------------------------------------------------------ failing endpoints


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_base_url_is_a_clear_failed_run(env) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1/chat/completions"
    path = _write_sweep(env, [_gpt4o(url)])
    sw = SW.load_sweep(str(path))
    t0 = time.monotonic()
    counts = SW.run_sweep(str(path), "local", job=_job, log=lambda _: None)
    assert time.monotonic() - t0 < 60
    assert counts == {"done": 1, "failed": 1, "skipped": 0}  # the trained-model row is unaffected
    with SW.Store(sw.store) as st:
        failed = [r for r in st.runs() if r["status"] == "failed"]
    assert [r["recipe"] for r in failed] == ["gpt-4o"]
    assert re.search(rf"api model 'gpt-4o': base_url {re.escape(url)} is not reachable \(ConnectionRefusedError",
                     failed[0]["error"])
    assert "Nothing was sent" in failed[0]["error"]


def test_missing_api_key_is_a_clear_error(env, golds, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with StandIn(golds) as server:
        sw = SW.load_sweep(str(_write_sweep(env, [_gpt4o(server.url)])))  # planning needs no key
        spec = next(r for r in sw.runs if r.job == AR.JOB)
        with pytest.raises(SW.SweepError, match="needs the OPENAI_API_KEY environment variable"):
            SW.run_job(spec.to_dict())
        assert server.requests == []


def test_server_errors_after_retries_are_a_clear_error(env, golds) -> None:
    with StandIn(golds, fail_status=500) as server:
        entry = _gpt4o(server.url, num_concurrent=1)  # lm-eval's synchronous client this time
        entry["model"] = "local-chat-completions"
        sw = SW.load_sweep(str(_write_sweep(env, [entry])))
        spec = next(r for r in sw.runs if r.job == AR.JOB)
        with pytest.raises(SW.SweepError, match=r"api model 'gpt-4o': requests to .* failed after 1 tries: "
                                                r"HTTPError: 500"):
            SW.run_job(spec.to_dict())
        assert len(server.requests) == 1  # max_retries: 1


def test_local_completions_renders_the_served_models_chat_template(env, golds, tiny_llama) -> None:
    """A raw /v1/completions server (vLLM style): the prompt is rendered by the served model's own
    tokenizer and chat template, sent as token ids, and parsed and stored like any run."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    with StandIn(golds, tokenizer=tok) as server:
        url = server.url.replace("/chat/completions", "/completions")
        entry = {"name": "served-tiny", "model": "local-completions",
                 "model_args": {"model": "tiny", "base_url": url, "tokenizer": str(tiny_llama), "max_retries": 1}}
        sw = SW.load_sweep(str(_write_sweep(env, [entry])))
        spec = next(r for r in sw.runs if r.job == AR.JOB)
        result = SW.run_job(spec.to_dict())
        assert {r["path"] for r in server.requests} == {"/v1/completions"} and len(server.requests) == 8
        sent = [r["body"]["prompt"] for r in server.requests]  # a batch of token-id lists
        assert all(isinstance(ids, list) and all(isinstance(i, int) for i in ids) for p in sent for ids in p)
        for prompt in server.prompts:  # ChatML from the tokenizer, the gen_prefix continued
            assert prompt.startswith("<|im_start|>user\nSentence: ")
            assert prompt.endswith("<|im_start|>assistant\nThe sentiment is")
    scores = {(s["task"], s["metric"], s["filter"]): s["value"] for s in result["evals"]["test"]["scores"]}
    assert scores[("fpb", "score", "tolerant")] > scores[("fpb", "score", "strict")]
    with pytest.raises(SW.SweepError, match=r"tokenized_requests: must stay true"):
        entry["model_args"]["tokenized_requests"] = False
        SW.load_sweep(str(_write_sweep(env, [entry], name="b")))
