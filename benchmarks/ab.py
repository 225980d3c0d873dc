"""Two Studio trees side by side, measured in alternation: the A/B of a hot-path change.

Both run at once (1 uvicorn worker each, as `make bench` starts Studio, each against its own
PostgreSQL database and Redis prefix) in front of one nginx origin; wrk loads one at a time,
A then B, for `--rounds` rounds, so both see the same spells of the host. Reported per round:
requests per second and the worker's CPU time per request (user + system, from /proc), which
moves less with the host's speed than the rate does.

    python -m benchmarks.ab --before DIR [--after DIR] [--rounds 4] [--duration 6] [-c 16]

`DIR` is a tree such as `git archive <rev> | tar -x -C DIR`; `--after` defaults to this one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
from pathlib import Path

import httpx

from app.runtime.protocol import HTTP_PROTOCOL
from benchmarks.login_storm import API, SECRET, backend, free_port
from benchmarks.run import (
    JSON_BODY,
    NGINX_CONF,
    ROOT,
    Processes,
    ensure_tools,
    registry_yaml,
    studio,
    token_for,
    wait_http,
    workers_of,
    wrk,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def main(args: argparse.Namespace) -> None:
    ensure_tools()
    trees = {"A": Path(args.before).resolve(), "B": Path(args.after).resolve()}
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="studio-ab-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            upstream, unused_proxy = free_port(), free_port()
            (tmp / "www").mkdir()
            (tmp / "www" / "data.json").write_bytes(JSON_BODY)
            conf = tmp / "nginx.conf"
            conf.write_text(
                NGINX_CONF.format(tmp=tmp, upstream=upstream, proxy=unused_proxy, workers=1)
            )
            nginx = procs.start(["nginx", "-p", str(tmp), "-c", str(conf)], tmp / "nginx.out")
            wait_http(f"http://127.0.0.1:{upstream}/data.json", nginx, tmp / "nginx-error.log")
            (tmp / "services.yaml").write_text(registry_yaml(upstream, upstream))
            (tmp / "overlay.yaml").write_text("services: {}\n")
            async with contextlib.AsyncExitStack() as stack:
                targets: dict[str, tuple[str, int, str]] = {}
                for name, root in trees.items():
                    where = await stack.enter_async_context(backend(tmp / name))
                    env = {
                        **{
                            k: v
                            for k, v in os.environ.items()
                            if not k.startswith(("REDIS_", "DATABASE_"))
                        },
                        **where.env,
                        "ENVIRONMENT": "dev",
                        "JWT_SECRET_KEY": SECRET,
                        "SERVICE_CONFIG_PATH": str(tmp / "services.yaml"),
                        "SERVICE_OVERLAY_PATH": str(tmp / "overlay.yaml"),
                        "SERVICE_HEALTH_CHECK_ENABLED": "false",
                        "RATE_LIMIT_LOGIN_ATTEMPTS": "100000000",
                        "LOG_DIR": str(tmp / f"logs-{name}"),
                        "LOG_LEVEL": "WARNING",
                    }
                    base, proc = stack.enter_context(studio(procs, env, 1, tmp, root, args.http))
                    token = await token_for(base)
                    url = f"{base}{API}/bench/data.json"
                    check = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
                    assert check.status_code == 200, check.text[:300]
                    pid = workers_of(proc, 1)[0]
                    targets[name] = (url, pid, f"Authorization: Bearer {token}")
                    wrk(url, args.c, 2, [targets[name][2]])  # warm-up
                results: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
                for round_ in range(args.rounds):
                    for name in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
                        url, pid, auth = targets[name]
                        before = cpu_seconds(pid)
                        r = wrk(url, args.c, args.duration, [auth])
                        used = cpu_seconds(pid) - before
                        per_request = used / max(r.requests, 1) * 1e6
                        results[name].append((r.rps, per_request))
                        print(
                            f"round {round_ + 1} {name}: {r.rps:8,.0f} rps  "
                            f"{per_request:6.1f} us CPU/request  p99 {r.p99:.2f} ms  "
                            f"errors {r.errors}",
                            flush=True,
                        )
        finally:
            procs.stop_all()
    for name, rows in results.items():
        rps = [r for r, _ in rows]
        cpu = [c for _, c in rows]
        print(
            f"{name} ({trees[name]}): median {statistics.median(rps):,.0f} rps, "
            f"{statistics.median(cpu):.1f} us CPU/request (rounds: "
            + ", ".join(f"{r:,.0f}" for r in rps)
            + ")"
        )
    a = statistics.median(c for _, c in results["A"])
    b = statistics.median(c for _, c in results["B"])
    print(f"B/A CPU per request: {b / a:.3f}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the A tree")
    parser.add_argument("--after", default=str(ROOT), help="the B tree (default: this one)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=6)
    parser.add_argument("-c", type=int, default=16, help="wrk connections")
    parser.add_argument("--http", default=HTTP_PROTOCOL, help="uvicorn HTTP protocol for both")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
