"""The `studio` command line: serve, migrate, check-config and the operator tools."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from app.core.commands import COMMANDS, CONFIG_CHECKS, command, load_settings
from app.core.config import get_settings


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--reload", action="store_true", help="dev only: restart on code changes")


@command("serve", "serve the API with uvicorn (uvloop, httptools)", _serve_args)
def serve(ns: argparse.Namespace) -> int:
    import uvicorn

    from app.cli.supervisor import ReloadingMultiprocess, pid_file
    from app.observability import multiprocess
    from app.runtime.protocol import http_protocol
    from app.websocket.server import WS_PROTOCOL

    settings = load_settings()
    workers = ns.workers or settings.workers
    if workers > 1 and settings.redis_in_process:
        print("Several workers need a shared Redis: set REDIS_HOST or REDIS_URL.", file=sys.stderr)
        return 2
    multiprocess.prepare(workers)  # /metrics then sums every worker
    options: dict[str, Any] = {
        "host": ns.host or settings.app_host,
        "port": ns.port or settings.app_port,
        "workers": workers,
        "loop": "uvloop",
        "http": http_protocol(settings.runtime_corked_writes),  # httptools, corked or not
        "ws": WS_PROTOCOL,  # shutdown: 1001 to every relayed WebSocket, then the drain
        "lifespan": "on",
        "proxy_headers": False,  # Studio reads forwarded headers itself (TRUSTED_PROXIES only)
        "server_header": False,
        "date_header": True,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        "timeout_keep_alive": 75,  # longer than a typical load balancer's idle timeout
        "reload": ns.reload and settings.is_dev,
    }
    # `studio reload` signals this process: the worker itself, or the workers' supervisor.
    with pid_file(settings.pid_file):
        if workers > 1 and not options["reload"]:
            # uvicorn.run's multi-worker branch, with a supervisor whose SIGHUP reloads the
            # registry in each worker instead of replacing the workers.
            config = uvicorn.Config("app.main:app", **options)
            sock = config.bind_socket()
            try:
                ReloadingMultiprocess(config, sockets=[sock]).run()
            finally:
                sock.close()
        else:
            uvicorn.run("app.main:app", **options)
    return 0


def _reload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pid", type=int, default=None, help="the server's process id (else PID_FILE)")


@command("reload", "reload the service registry of a running `studio serve` (SIGHUP)", _reload_args)
def reload(ns: argparse.Namespace) -> int:
    import os
    import signal

    from app.cli.supervisor import read_pid

    settings = load_settings()
    pid = ns.pid or read_pid(settings.pid_file)
    if pid is None:
        print(f"no server pid: {settings.pid_file} is missing (or pass --pid)", file=sys.stderr)
        return 1
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        print(f"no process {pid} (a stale {settings.pid_file}?)", file=sys.stderr)
        return 1
    except PermissionError:
        print(f"not allowed to signal process {pid}", file=sys.stderr)
        return 1
    print(f"sent SIGHUP to {pid}: each worker reloads the registry (see /api/v1/health)")
    return 0


@command("migrate", "upgrade the database to the newest schema (idempotent)")
def migrate(_: argparse.Namespace) -> int:
    from app.core import migrations
    from app.core.db import create_engine

    settings = load_settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await migrations.upgrade(engine)
            print(f"database at revision {await migrations.current_revision(engine)}")
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0


def _check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stage", choices=("dev", "staging", "prod"), help="validate as this stage")


@command(
    "check-config", "validate settings (and the service registry) without starting", _check_args
)
def check_config(ns: argparse.Namespace) -> int:
    import os

    if ns.stage:
        os.environ["ENVIRONMENT"] = ns.stage
        get_settings.cache_clear()
    settings = load_settings()
    for check in CONFIG_CHECKS:
        check(settings)
    print(f"configuration is valid for {settings.environment}")
    return 0


@command("hint", "print how to get started locally")
def hint(_: argparse.Namespace) -> int:
    settings = load_settings()
    host = f"http://{settings.app_host}:{settings.app_port}"
    print(f"Studio ({settings.environment}) will listen on {host}; liveness at {host}/health.")
    if settings.embedded:
        print(
            "Embedded mode: SQLite at", settings.embedded_database_path, "and an in-process Redis."
        )
    print("Create an administrator with:  .venv/bin/studio create-admin --email you@example.com")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `studio` console script."""
    _load_domain_commands()
    parser = argparse.ArgumentParser(prog="studio", description="Studio gateway")
    parser.add_argument("--version", action="version", version=f"studio {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, add_args, help_text) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    ns = parser.parse_args(argv)
    return COMMANDS[ns.command][0](ns)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("studio")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def _load_domain_commands() -> None:
    # Importing a domain's cli module registers its commands, so `studio --help` lists them.
    import importlib

    for module in DOMAIN_COMMANDS:
        importlib.import_module(module)


DOMAIN_COMMANDS: tuple[str, ...] = (
    "app.auth.cli",
    "app.audit.cli",
    "app.cli.registry",
    "app.cli.openapi",
    "app.cli.config_reference",
)
