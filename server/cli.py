"""The `viva` command line. Thin: it parses arguments, loads settings, calls the core, prints.

Exit codes: 0 when the command did its job (a grading that completed, whatever the score); 1 with a
one-line reason when it could not; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from grader.errors import GraderError
from llm.errors import LLMError
from rubrics.errors import RubricError
from sandboxes.errors import SandboxError
from server import interview_cli, judge_eval_cli, logs, sandbox_cli, worker_cli
from server.errors import ServerError
from server.settings import Settings, load_settings

if TYPE_CHECKING:
    from grader.report.model import GradingReport

# Each command imports what it needs inside its handler: the grader pulls in pydantic-ai, the server litestar and
# uvicorn, the sandbox docker, and importing them all took seconds before `viva --help` could answer.
# tests/unit/test_startup.py keeps them out of `import server.cli`.


class CommandFailed(Exception):
    """Raised by a command that could not do its job; main() prints the one-line reason and exits 1."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(env_file=Path(".env"))
        result: int = args.handler(args, settings)
        return result
    except (CommandFailed, GraderError, RubricError, ServerError, LLMError, SandboxError, OSError) as error:
        reason = " ".join(str(error).split())
        print(f"viva: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("viva: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="viva", description="Grade an AI engineering project and interview its author."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    grade_cmd = commands.add_parser("grade", help="grade a repository against a rubric")
    grade_cmd.add_argument("target", help="https git URL, owner/name (GitHub), or a local path; optional @ref")
    grade_cmd.add_argument("--rubric", default=None, help="built-in rubric id or a rubric file (YAML/JSON)")
    grade_cmd.add_argument("--out", type=Path, default=Path("viva-report"), help="directory for the report files")
    grade_cmd.add_argument("--format", default=None, help="comma-separated: json,md,html (default: all)")
    grade_cmd.add_argument("--static-only", action="store_true", help="only read the repository; do not run it")
    grade_cmd.add_argument(
        "--token-env",
        metavar="VAR",
        default=None,
        help="name of an environment variable holding a token for a private repository (never pass the token itself)",
    )
    grade_cmd.add_argument(
        "--judge-model",
        action="append",
        default=None,
        metavar="MODEL",
        help="model string for the LLM judge (default: offline); repeat for several voting judges",
    )
    grade_cmd.set_defaults(handler=_cmd_grade)

    rubric_cmd = commands.add_parser("rubric", help="validate, list, show rubrics; print the rubric JSON Schema")
    rubric_sub = rubric_cmd.add_subparsers(dest="rubric_command", required=True)
    validate = rubric_sub.add_parser("validate", help="check a rubric file and list every problem with its line")
    validate.add_argument("file", type=Path)
    validate.set_defaults(handler=_cmd_rubric_validate)
    rubric_sub.add_parser("schema", help="print the rubric JSON Schema").set_defaults(handler=_cmd_rubric_schema)
    rubric_sub.add_parser("list", help="list built-in rubrics").set_defaults(handler=_cmd_rubric_list)
    show = rubric_sub.add_parser("show", help="show a rubric's criteria tree with weights and checks")
    show.add_argument("rubric", help="built-in rubric id or a rubric file")
    show.set_defaults(handler=_cmd_rubric_show)

    report_cmd = commands.add_parser("report", help="report tools")
    report_sub = report_cmd.add_subparsers(dest="report_command", required=True)
    report_sub.add_parser("schema", help="print the report.json JSON Schema").set_defaults(handler=_cmd_report_schema)

    interview_cli.add_parser(commands)
    judge_eval_cli.add_parser(commands)
    sandbox_cli.add_parser(commands)
    worker_cli.add_parser(commands)

    serve_cmd = commands.add_parser("serve", help="run the web server (API, worker) on VIVA_SERVER_HOST:PORT")
    serve_cmd.add_argument("--host", default=None, help="override VIVA_SERVER_HOST")
    serve_cmd.add_argument("--port", type=int, default=None, help="override VIVA_SERVER_PORT")
    serve_cmd.add_argument(
        "--processes", type=int, default=None, help="server processes sharing the port (VIVA_SERVER_PROCESSES)"
    )
    serve_cmd.add_argument(
        "--no-worker",
        action="store_true",
        help="serve the web and API only; gradings run on `viva worker` processes (VIVA_SERVER_WORKER=0)",
    )
    serve_cmd.set_defaults(handler=_cmd_serve)

    manifest_cmd = commands.add_parser("manifest", help="the viva.toml manifest a candidate may write")
    manifest_sub = manifest_cmd.add_subparsers(dest="manifest_command", required=True)
    manifest_sub.add_parser("schema", help="print the viva.toml JSON Schema").set_defaults(handler=_cmd_manifest_schema)
    return parser


def _cmd_grade(args: argparse.Namespace, settings: Settings) -> int:
    from grader.dynamic import DynamicOptions  # noqa: PLC0415 - the grader loads only for `viva grade` (see the top)
    from grader.pipeline import GradeOptions, grade  # noqa: PLC0415 - as above
    from grader.report.writer import write_reports  # noqa: PLC0415 - as above
    from rubrics.registry import resolve_rubric  # noqa: PLC0415 - as above
    from server.console import print_summary, stage_progress  # noqa: PLC0415 - as above

    formats = _formats(args.format, settings)
    rubric = resolve_rubric(args.rubric or settings.grading.default_rubric)
    token = _token_from_env(args.token_env)
    options = GradeOptions(
        fetch_limits=settings.fetch,
        profile_limits=settings.profile,
        allow_local=True,  # the CLI is run by the person who owns the machine; the web app never allows local paths
        static_only=args.static_only,
        disabled_checks=settings.grading.disabled_checks,
        token=token,
        judge_models=args.judge_model or ["offline"],
        judge_keys=settings.llm,
        dynamic=DynamicOptions.from_settings(settings.sandbox),
    )
    with tempfile.TemporaryDirectory(prefix="viva-grade-") as scratch, stage_progress() as progress:
        report: GradingReport = grade(args.target, rubric, Path(scratch), options, progress=progress)
    written = write_reports(report, args.out, formats)
    print_summary(report, written)
    return 0


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio  # noqa: PLC0415 - the server loads only for `viva serve`, keeping the other commands quick

    import uvicorn  # noqa: PLC0415 - as above

    from server.app import create_app, prepare_database  # noqa: PLC0415 - as above
    from server.processes import serve_processes  # noqa: PLC0415 - as above
    from server.web import uvicorn_options  # noqa: PLC0415 - as above

    host, port = args.host or settings.server.host, args.port or settings.server.port
    processes = args.processes or settings.server.processes
    if processes < 1:
        raise CommandFailed("--processes must be at least 1")
    if args.no_worker:
        settings = msgspec.structs.replace(settings, server=msgspec.structs.replace(settings.server, worker=False))
        os.environ["VIVA_SERVER_WORKER"] = "0"  # the processes --processes starts read their settings afresh
    log_config = logs.configure(settings.general.log_level)
    public = settings.server.public_url.rstrip("/")
    print(f"Viva will serve {public} (listening on {host}:{port}); sign in at {public}/login", flush=True)
    if processes == 1:
        uvicorn.run(
            create_app(settings), host=host, port=port, log_config=log_config, lifespan="on", **uvicorn_options()
        )
        return 0
    # Several processes share the port; the database is prepared here once, before any of them starts.
    asyncio.run(prepare_database(settings))
    return serve_processes(processes, host, port, log_config)


def _cmd_rubric_validate(args: argparse.Namespace, settings: Settings) -> int:
    from rubrics.loader import load_rubric_file  # noqa: PLC0415 - each command loads what it uses (see the top)
    from server.console import print_rubric_problems  # noqa: PLC0415 - as above

    try:
        loaded = load_rubric_file(args.file)
    except RubricError as error:
        print_rubric_problems(error)
        return 1
    leaves = len(loaded.params)
    print(
        f"{args.file}: valid rubric {loaded.rubric.id!r} version {loaded.rubric.version}, {leaves} leaves, "
        f"{loaded.content_hash}"
    )
    return 0


def _cmd_rubric_schema(args: argparse.Namespace, settings: Settings) -> int:
    from rubrics.schema import rubric_json_schema  # noqa: PLC0415 - each command loads what it uses (see the top)

    _print_json(rubric_json_schema())
    return 0


def _cmd_rubric_list(args: argparse.Namespace, settings: Settings) -> int:
    from rubrics.registry import builtin_rubrics  # noqa: PLC0415 - each command loads what it uses (see the top)

    for loaded in builtin_rubrics():
        print(f"{loaded.rubric.id}\tv{loaded.rubric.version}\t{loaded.rubric.title}")
    return 0


def _cmd_rubric_show(args: argparse.Namespace, settings: Settings) -> int:
    from rubrics.registry import resolve_rubric  # noqa: PLC0415 - each command loads what it uses (see the top)
    from server.console import print_rubric  # noqa: PLC0415 - as above

    print_rubric(resolve_rubric(args.rubric))
    return 0


def _cmd_report_schema(args: argparse.Namespace, settings: Settings) -> int:
    from grader.report.model import report_json_schema  # noqa: PLC0415 - each command loads what it uses (see the top)

    _print_json(report_json_schema())
    return 0


def _cmd_manifest_schema(args: argparse.Namespace, settings: Settings) -> int:
    from grader.profile.manifest import manifest_json_schema  # noqa: PLC0415 - each command loads what it uses

    _print_json(manifest_json_schema())
    return 0


def _print_json(document: object) -> None:
    print(msgspec.json.format(msgspec.json.encode(document).decode(), indent=2))


def _formats(option: str | None, settings: Settings) -> list[str]:
    if option is None:
        return list(settings.grading.formats)
    formats = [item.strip() for item in option.split(",") if item.strip()]
    unknown = sorted(set(formats) - {"json", "md", "html"})
    if unknown or not formats:
        raise CommandFailed(f"--format takes json, md, html (comma-separated); got {option!r}")
    return formats


def _token_from_env(variable: str | None) -> str | None:
    if variable is None:
        return None
    token = os.environ.get(variable)  # the CLI is the process edge: it alone reads what the user pointed it at
    if not token:
        raise CommandFailed(f"--token-env names {variable!r}, but that environment variable is empty or unset")
    return token


if __name__ == "__main__":
    raise SystemExit(main())
