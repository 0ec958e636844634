"""`finbench mixture build|show|list|design`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from finbench.core import settings
from finbench.core.files import write_atomic
from finbench.mixtures.build import build
from finbench.mixtures.catalog import designs_dir, list_mixtures, load_mixture
from finbench.mixtures.design import generate_design


def _cmd_build(args: argparse.Namespace) -> int:
    res = build(
        args.name,
        args.out,
        tokenizer=args.tokenizer,
        force=args.force,
        progress=False if args.no_progress else None,
    )
    s = res.summary
    print(f"{'cached' if res.cached else 'built'}: {res.jsonl} ({s['rows']} rows)")
    print(f"manifest: {res.manifest}")
    for name, c in s["components"].items():
        extra = f" tokens={c['tokens']}" if "tokens" in c else ""
        bad = sum(v["rows"] for v in c["malformed_skipped"].values())
        print(
            f"  {name:<16} available={c['rows_available']:<8} requested={c['rows_requested']:<7} "
            f"taken={c['rows_taken']:<7} x{c['upsampling_factor']} malformed={bad}{extra}"
        )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    mix = load_mixture(args.name)
    info = {"name": mix.name, "file": str(mix.path), "description": mix.description, **mix.spec_dict()}
    print(json.dumps(info, indent=2))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    for name in list_mixtures():
        print(name)
    return 0


def _cmd_design(args: argparse.Namespace) -> int:
    import yaml

    path = Path(args.design)
    if not path.suffix:
        path = designs_dir() / f"{args.design}.yaml"
    members = generate_design(path)
    if args.write:
        out = Path(args.write)
        for mname, spec in members.items():
            spec = {k: v for k, v in spec.items() if k != "_base"}
            write_atomic(out / f"{mname}.yaml", yaml.safe_dump(spec, sort_keys=False))
        print(f"wrote {len(members)} mixtures to {out}")
    else:
        for mname, spec in members.items():
            print(f"{path.stem}/{mname}: {', '.join(spec['components'])}")
        print(f"# {len(members)} mixtures")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mixture", help="build training mixtures (mixtures/*.yaml)")
    msub = p.add_subparsers(dest="mixture_command", required=True)
    b = msub.add_parser("build", help="write the mixture JSONL + manifest (no-op when up to date)")
    b.add_argument("name", help="mixture name (mixtures/NAME.yaml), DESIGN/MEMBER, or a .yaml path")
    b.add_argument("--out", default=None, help="output folder (default runs/mixtures)")
    b.add_argument("--tokenizer", default=None, help="tokenizer folder: count tokens in the manifest")
    b.add_argument("--force", action="store_true", help="rebuild even when up to date")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=_cmd_build)
    s = msub.add_parser("show", help="print the validated mixture spec")
    s.add_argument("name")
    s.set_defaults(func=_cmd_show)
    ls = msub.add_parser("list", help="list mixtures, including design members")
    ls.set_defaults(func=_cmd_list)
    d = msub.add_parser("design", help="list (or --write) the mixtures of a design file")
    d.add_argument("design", help=f"design name ({settings.mixtures_dir().name}/designs/NAME.yaml) or path")
    d.add_argument("--write", default=None, help="folder to write one YAML per member")
    d.set_defaults(func=_cmd_design)



