"""`finbench` command line. Each area module registers its own subcommands with `add_cli`."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from finbench.core import quiet, settings
from finbench.core import validate as V
from finbench.data import raw as D
from finbench.data import tasks as T
from finbench.data.raw import DataError
from finbench.data.tasks import UnknownTaskError

# Modules that expose `add_cli(subparsers)`; each handler is `func(args) -> int`.
COMMAND_MODULES: tuple[str, ...] = (
    "finbench.cli",
    "finbench.mixtures",
    "finbench.train.run",
    "finbench.eval.evaluate",
    "finbench.sweep",
    "finbench.report.build",
    "finbench.eval.verify_metrics",
)


def _cmd_tasks(args: argparse.Namespace) -> int:
    infos = T.discover()
    rows = []
    for info in infos.values():
        sizes = "-"
        if args.sizes:
            try:
                task = T.load_task(info.name)
                sizes = "/".join(  # "-": a split the task does not have (test-only variants)
                    str(len(T.split_docs(task, s))) if getattr(task.config, key) else "-"
                    for s, key in T.SPLIT_KEYS.items()
                )
            except Exception as err:  # a task without reachable data still gets listed
                sizes = f"unavailable ({type(err).__name__}: {str(err)[:60]})"
        hub = info.source.get("hub") or {}
        raw = info.source.get("raw") or {}
        rows.append(
            {
                "task": info.name,
                "kind": info.kind,
                "type": info.output_type,
                "hub": f"{hub.get('path', '-')}@{hub.get('revision', '-')}",
                "raw": f"{raw.get('folder', '-')}/{','.join(raw.get('files', []))}",
                "train/dev/test": sizes,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    source = f"{D.DATA_DIR_ENV}={D.data_dir()}" if D.data_dir() else "hub"
    print(f"# {len(rows)} tasks in {settings.tasks_dir()} (data source: {source})")
    cols = list(rows[0]) if rows else []
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
    return 0


def _cmd_data_lock(args: argparse.Namespace) -> int:
    from finbench.data import hub as H
    path, errors = H.lock(Path(args.lock_file) if args.lock_file else None)
    locked = H.read_lock(path)
    for name, entry in locked.items():
        note = "  (public evidence, not resolved online)" if entry.get("origin") == "public-evidence" else ""
        print(f"{entry.get('sha') or 'UNRESOLVED':<40}  {name}{note}")
    for err in errors:
        print(f"finbench: error: cannot resolve {err}", file=sys.stderr)
    online = sum(1 for e in locked.values() if e.get("origin") == "hub")
    print(f"# wrote {path}: {online} of {len(locked)} resolved online")
    return 1 if errors else 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from finbench.mixtures import check  # the tasks' sources (data stage) and the mixtures' datasets
    return check.run(external=not args.tasks_only)


DATA_ACTIONS = {"lock": _cmd_data_lock, "check": _cmd_data_check}


def _cmd_data(args: argparse.Namespace) -> int:
    if args.task in DATA_ACTIONS:  # `finbench data lock|check`; every other word names a task
        return DATA_ACTIONS[args.task](args)
    if (args.chat_template or args.model) and not args.prompt:
        raise ValueError("--chat-template and --model choose how --prompt renders; add --prompt")
    task = T.load_task(args.task)
    docs = T.split_docs(task, args.split)
    if args.limit is not None:
        docs = docs[: args.limit]
    out = sys.stdout
    if args.prompt:
        render, source = _chat_renderer(args.model, args.chat_template)
        print(f"# {args.task} ({args.split}): evaluation prompts, {source}", file=sys.stderr)
        for i, doc in enumerate(docs):
            out.write(f"===== {args.task} {args.split} [{i}] id={doc.get('id')} {_answer_format(task, doc)}\n")
            out.write(T.evaluation_prompt(task, doc, render) + "\n")
        return 0
    for doc in docs:
        record = dict(doc)
        if args.train_messages:
            record["messages"] = T.training_messages(task, doc)
        out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    return 0


def _answer_format(task, doc: dict) -> str:
    """How the model's answer is taken: generation settings, or the scored choices."""
    if task.config.output_type == "multiple_choice":
        return f"(multiple_choice: {' | '.join(map(str, task.doc_to_choice(doc)))})"
    kwargs = dict(task.config.generation_kwargs or {})
    return f"({task.config.output_type}: until {kwargs.get('until')}, max_gen_toks {kwargs.get('max_gen_toks')})"


def _chat_renderer(model: str | None, chat_template: str | None):
    """(render(messages, add_generation_prompt) -> str, a description), as lm-eval's HF model
    applies a chat template: the tokenizer of `model` (its own template unless `chat_template`),
    or, without a model, the template alone (special tokens such as bos_token then render empty).
    `chat_template`: an Axolotl template name, `tokenizer_default`, or a .jinja file."""
    template, what = None, "the tokenizer's own chat template"
    if chat_template and chat_template != "tokenizer_default":
        template, what = _template_text(chat_template)
    elif not model:
        template, what = _template_text("chatml")
    if model:
        from transformers import AutoTokenizer

        from finbench.train import recipe as R
        folder = R.resolve_base_model(model)
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        if template is not None:
            tokenizer.chat_template = template
        if not tokenizer.chat_template:
            raise ValueError(f"model {model!r}: its tokenizer has no chat template; pass --chat-template")

        def apply(messages: list[dict], add_generation_prompt: bool) -> str:
            return tokenizer.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                continue_final_message=not add_generation_prompt,
            )

        return _without_system_on_error(apply), f"{what}, tokenizer of {model}"
    from transformers.utils.chat_template_utils import render_jinja_template

    def apply_alone(messages: list[dict], add_generation_prompt: bool) -> str:
        rendered, _ = render_jinja_template(
            [messages],
            chat_template=template,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt,
            **{name: "" for name in ("bos_token", "eos_token", "pad_token", "unk_token")},
        )
        return rendered[0]

    return _without_system_on_error(apply_alone), f"{what}, no tokenizer (special tokens empty; pass --model)"


def _without_system_on_error(apply):
    """lm-eval's HF model retries without the system turn when a template refuses one."""
    import jinja2

    def render(messages: list[dict], add_generation_prompt: bool = True) -> str:
        try:
            return apply(messages, add_generation_prompt)
        except jinja2.exceptions.TemplateError:
            return apply([m for m in messages if m["role"] != "system"], add_generation_prompt)

    return render


def _template_text(choice: str) -> tuple[str, str]:
    from pathlib import Path

    path = Path(choice).expanduser()
    if path.suffix in (".jinja", ".j2") or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: chat template file not found")
        return path.read_text(encoding="utf-8"), f"chat template {path}"
    from axolotl.utils.chat_templates import get_chat_template

    try:
        return get_chat_template(choice), f"Axolotl chat template {choice!r}"
    except ValueError as err:
        raise ValueError(f"--chat-template {choice!r}: {err}") from err


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="list tasks with their sources (and sizes with --sizes)")
    p.add_argument("--sizes", action="store_true", help="load each task's data to count rows")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_tasks)

    p = sub.add_parser(
        "data",
        help="print a task's rows as JSONL; `data check`: row counts of every source; "
        "`data lock`: pin hub sources to commit shas",
    )
    p.add_argument("task", help="a task name, or `check` or `lock`")
    p.add_argument("--lock-file", default=None, help="`data lock`: where to write (default: data.lock.yaml)")
    p.add_argument("--tasks-only", action="store_true", help="`data check`: skip the mixtures' datasets")
    p.add_argument("--split", default="test", choices=["train", "dev", "test"])
    p.add_argument("--limit", type=int, default=None)
    view = p.add_mutually_exclusive_group()
    view.add_argument(
        "--prompt",
        action="store_true",
        help="print the EVALUATION prompt of each row as the model gets it (system prompt, chat "
        "template, answer prefix; no gold answer)",
    )
    view.add_argument(
        "--train-messages",
        action="store_true",
        help="add each row's training chat messages (with the gold answer) to the JSONL",
    )
    p.add_argument(
        "--chat-template",
        help="with --prompt: an Axolotl template name (chatml, phi_3, llama3, ...), "
        "tokenizer_default, or a .jinja file (default: the --model tokenizer's own, else chatml)",
    )
    p.add_argument(
        "--model", help="with --prompt: the model whose tokenizer renders the template (folder, "
        "hub id in the local cache, or builtin:NAME)"
    )
    p.set_defaults(func=_cmd_data)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finbench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show library warnings and tracebacks of user errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # The boundary: the settings are resolved here, once, and hold for the whole command (the
    # parser's help texts read them too); `-v` shows library warnings here and in the processes
    # this one starts (they get the value).
    try:
        s = settings.Settings.from_env()
    except ValueError as err:
        print(f"finbench: error: {V.one_line(str(err))}", file=sys.stderr)
        return 2
    with settings.use(s):
        args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    quiet.install()
    try:
        with settings.use(dataclasses.replace(s, verbose=True) if args.verbose else s):
            return int(args.func(args) or 0)
    except (DataError, UnknownTaskError, ValueError, FileNotFoundError) as err:
        # Expected user errors: one clear line, no traceback (use -v to see where it came from).
        if args.verbose:
            raise
        print(f"finbench: error: {V.one_line(str(err))}", file=sys.stderr)  # the whole of it: -v
        return 2
    except BrokenPipeError:
        return 0

if __name__ == "__main__":
    sys.exit(main())
