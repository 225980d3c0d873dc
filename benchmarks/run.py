"""`make bench`: Studio's proxy next to nginx and a naive FastAPI proxy, in one run.

Starts (and stops) an nginx upstream serving ~1 KB of JSON, an nginx reverse proxy in front of
it, the naive FastAPI + httpx proxy (benchmarks/naive_proxy.py, in a fresh virtualenv as a team
installs it), the Python ceiling (a bare ASGI
app forwarding with aiohttp, no auth: benchmarks/bare_proxy.py), a fake SSE/echo downstream
(tests/fakes) and Studio with 2 and 1 uvicorn workers against a private PostgreSQL database
and Redis key prefix (benchmarks/login_storm.py's `backend`), a registered user and its access
token. Then: wrk at c=16 and c=64 against each, SSE per-event added delay, RSS growth for a
200 MB streamed upload, worker RSS after 10k and 100k requests, and the login storm. Prints the
tables; nginx and wrk are installed from Debian when missing.

    python -m benchmarks.run [--duration 8] [--studio-root DIR] [--only-proxy] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from app.runtime.protocol import HTTP_PROTOCOL
from benchmarks.login_storm import (
    API,
    EMAIL,
    PASSWORD,
    SECRET,
    backend,
    free_port,
)

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
JSON_BODY = orjson.dumps(
    {
        "success": True,
        "items": [
            {"id": i, "name": f"document-{i:04d}", "status": "indexed", "pages": i * 3 % 17}
            for i in range(14)
        ],
    }
)

NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
user root;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/client_body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  keepalive_requests 1000000;
  upstream origin {{ server 127.0.0.1:{upstream}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{upstream};
    root {tmp}/www;
    default_type application/json;
    location / {{ try_files /data.json =404; }}
  }}
  server {{
    listen 127.0.0.1:{proxy};
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""


def ensure_tools() -> None:
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if not missing:
        return
    packages = ["wrk" if t == "wrk" else "nginx-light" for t in missing]
    print(f"installing {' '.join(packages)} from Debian ...", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    result = subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", *packages], env=env)
    if result.returncode != 0:  # nginx-light is not in every release
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "nginx", "wrk"], check=True)


class Processes:
    """Everything started, stopped in reverse order (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, command: list[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: process exited {proc.returncode}\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {seconds:.0f} s\n{log.read_text()[-3000:]}")


@dataclass
class Wrk:
    rps: float
    p50: float  # ms
    p99: float
    requests: int
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert match, text
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    url: str,
    connections: int,
    seconds: float,
    headers: list[str] = (),  # type: ignore[assignment]
    script: Path | None = None,
    threads: int = 2,
) -> Wrk:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60)
    text = out.stdout
    if "Requests/sec" not in text:
        raise SystemExit(f"wrk failed: {' '.join(command)}\n{text}\n{out.stderr}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", text).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", text).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = re.search(r"Socket errors: (.*)", text)
    n_errors = int(errors.group(1)) if errors else 0
    if socket_errors:
        n_errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return Wrk(rps, p50, p99, done, n_errors)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    return found


def workers_of(proc: subprocess.Popen[bytes], expected: int) -> list[int]:
    """The uvicorn worker pids (the process itself with one worker)."""
    if expected == 1:
        return [proc.pid]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        # multiprocessing adds a resource tracker: keep python children that import uvicorn
        pids = [p for p in children(proc.pid) if b"resource_tracker" not in _cmdline(p)]
        if len(pids) >= expected:
            return pids
        time.sleep(0.2)
    raise SystemExit("uvicorn workers did not start")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


HEADER = (
    "| target                             |       rps | p50 ms  | p99 ms  | errs  |\n"
    "|------------------------------------|-----------|---------|---------|-------|"
)


def count_to(url: str, total: int, served: int, headers: list[str]) -> int:
    """Short wrk runs until at least `total` requests were served; returns the count."""
    while served < total:
        served += wrk(url, 16, 2, headers).requests
    return served


# Where a tree from before app/runtime/ has the corked protocol (`--studio-root`, `ab --before`).
OLD_HTTP_PROTOCOL = "app.core.server:CorkedHttpToolsProtocol"


def protocol_for(root: Path, http: str) -> str:
    """`http` as the tree at `root` names it."""
    if http == HTTP_PROTOCOL and not (root / "app" / "runtime" / "protocol.py").exists():
        return OLD_HTTP_PROTOCOL
    return http


@contextlib.contextmanager
def studio(
    procs: Processes,
    env: dict[str, str],
    workers: int,
    tmp: Path,
    root: Path,
    http: str,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    log = tmp / f"studio-{workers}w-{port}.log"
    command = [
        PY, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--loop", "uvloop", "--http", protocol_for(root, http),
        "--no-access-log", "--log-level", "warning", "--no-server-header",
        "--no-proxy-headers",  # as `studio serve` runs it: TRUSTED_PROXIES decides instead
    ]  # fmt: skip
    run_env = {**env, "PYTHONPATH": str(root)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=root, env=run_env, stdout=out, stderr=subprocess.STDOUT
        )
    procs.procs.append(proc)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, log)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        procs.stop(proc)


NAIVE_PACKAGES = ("fastapi", "uvicorn", "httpx", "anyio")


def naive_python() -> str:
    """A virtualenv with only what the naive peer needs, as a team installs it
    (`pip install fastapi "uvicorn[standard]" httpx`), at the versions Studio runs. anyio 4.16
    no longer pulls in `sniffio`, so httpcore's per-request `import sniffio` fails each time,
    as in most teams' installs. Kept in `.bench/` and rebuilt when the versions change."""
    from importlib.metadata import version

    pins = [f"{name}=={version(name)}" for name in NAIVE_PACKAGES]
    pins[1] = pins[1].replace("uvicorn", "uvicorn[standard]")
    venv = ROOT / ".bench" / "naive-venv"
    python = venv / "bin" / "python"
    marker = venv / "pins.txt"
    if not (python.exists() and marker.exists() and marker.read_text() == " ".join(pins)):
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
            check=True,
        )
        marker.write_text(" ".join(pins))
    return str(python)


def registry_yaml(upstream: int, fake: int) -> str:
    perms = '{read: "nexus:read", write: "nexus:read"}'
    return f"""services:
  bench:
    base_url: http://127.0.0.1:{upstream}
    mode: wildcard
    auth: {{type: none}}
    max_connections: 100
    permissions: {perms}
  fake:
    base_url: http://127.0.0.1:{fake}
    mode: wildcard
    auth: {{type: none}}
    max_body_bytes: 314572800
    timeouts: {{connect: 5, read: 60, write: 60, pool: 10}}
    permissions: {perms}
"""


async def sse_delays(
    url: str, headers: dict[str, str], events: int, interval: float
) -> list[float]:
    """Per-event delay (ms) from the fake's `sent_at` to arrival here."""
    delays: list[float] = []
    async with (
        httpx.AsyncClient(timeout=60) as http,
        http.stream("GET", f"{url}?n={events}&interval={interval}", headers=headers) as response,
    ):
        assert response.status_code == 200, response.status_code
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                sent = orjson.loads(line[6:])["sent_at"]
                delays.append((time.time() - sent) * 1000)
    return delays


async def upload(url: str, headers: dict[str, str], size: int, pid: int) -> tuple[float, float]:
    """Stream `size` bytes through; returns (RSS before, peak RSS during) of `pid` in MB."""
    chunk = b"\x5a" * (256 * 1024)
    before = rss_mb(pid)
    peak = before
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.05)

    async def body() -> object:
        for _ in range(size // len(chunk)):
            yield chunk

    sampler = asyncio.create_task(sample())
    try:
        async with httpx.AsyncClient(timeout=120) as http:
            response = await http.post(url, content=body(), headers=headers)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text[:300]
        assert response.json()["result"]["body_length"] == size
    finally:
        done.set()
        await sampler
    return before, max(peak, rss_mb(pid))


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def row(name: str, result: Wrk, extra: str = "") -> str:
    return (
        f"| {name:<34} | {result.rps:>9,.0f} | {result.p50:>7.2f} | {result.p99:>7.2f} "
        f"| {result.errors:>5} |{extra}"
    )


async def token_for(base: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        created = await http.post(
            f"{API}/auth/register", json={"email": EMAIL, "password": PASSWORD}
        )
        if created.status_code not in (201, 409):
            raise SystemExit(f"register failed: {created.status_code} {created.text}")
        login = await http.post(f"{API}/auth/login", json={"email": EMAIL, "password": PASSWORD})
        if login.status_code != 200:
            raise SystemExit(f"login failed: {login.status_code} {login.text}")
        result = login.json()["result"]
        return str(result.get("access_token") or result["tokens"]["access_token"])


def profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    spy = Path(PY).parent / "py-spy"
    command = [str(spy), "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200"]
    command += ["-f", "raw", "-o", str(out), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


async def main(args: argparse.Namespace) -> None:
    started = time.monotonic()
    ensure_tools()
    studio_root = Path(args.studio_root).resolve() if args.studio_root else ROOT
    procs = Processes()
    d = args.duration
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            # nginx: origin + reverse proxy
            upstream, nginx_proxy = free_port(), free_port()
            (tmp / "www").mkdir()
            (tmp / "www" / "data.json").write_bytes(JSON_BODY)
            conf = tmp / "nginx.conf"
            conf.write_text(
                NGINX_CONF.format(
                    tmp=tmp, upstream=upstream, proxy=nginx_proxy, workers=args.nginx_workers
                )
            )
            nginx = procs.start(["nginx", "-p", str(tmp), "-c", str(conf)], tmp / "nginx.out")
            wait_http(f"http://127.0.0.1:{upstream}/data.json", nginx, tmp / "nginx-error.log")
            # fake downstream (SSE, echo for uploads)
            fake_port = free_port()
            fake = procs.start(
                [PY, "-c", "import uvicorn; from tests.fakes.server import make_service; "
                 f"uvicorn.run(make_service('fake'), host='127.0.0.1', port={fake_port}, "
                 "log_level='warning', loop='uvloop', http='httptools')"],
                tmp / "fake.log",
                {**os.environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
            wait_http(f"http://127.0.0.1:{fake_port}/health", fake, tmp / "fake.log")
            # the naive peer, 2 workers, as freshly installed
            naive_env = {
                **os.environ,
                "UPSTREAM": f"http://127.0.0.1:{upstream}",
                "PYTHONPATH": str(ROOT),
            }
            naive_ports: dict[str, int] = {}
            naives = []
            port = naive_ports["naive"] = free_port()
            proc = procs.start(
                [naive_python(), "-m", "uvicorn", "benchmarks.naive_proxy:app", "--port", str(port),
                 "--workers", "2", "--no-access-log", "--log-level", "warning"],
                tmp / "naive.log",
                naive_env,
            )  # fmt: skip
            wait_http(f"http://127.0.0.1:{port}/data.json", proc, tmp / "naive.log")
            naives.append(proc)
            # the ceiling: bare ASGI + one aiohttp session, 2 workers, uvloop + httptools
            bare_port = naive_ports["bare"] = free_port()
            proc = procs.start(
                [PY, "-m", "uvicorn", "benchmarks.bare_proxy:app", "--port", str(bare_port),
                 "--workers", "2", "--no-access-log", "--log-level", "warning",
                 "--loop", "uvloop", "--http", "httptools"],
                tmp / "bare.log",
                naive_env,
            )  # fmt: skip
            wait_http(f"http://127.0.0.1:{bare_port}/data.json", proc, tmp / "bare.log")
            naives.append(proc)

            (tmp / "services.yaml").write_text(registry_yaml(upstream, fake_port))
            (tmp / "overlay.yaml").write_text("services: {}\n")
            async with backend(tmp) as where:
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
                    "RATE_LIMIT_REGISTER_ATTEMPTS": "1000",
                    "LOG_DIR": str(tmp / "logs"),
                    "LOG_LEVEL": "WARNING",
                }
                say(
                    f"# Studio benchmark: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                    f"nproc={os.cpu_count()}, "
                    f"http={args.http.rsplit(':')[-1]}, root={studio_root}"
                )
                say(f"# backend: {where.description}; wrk -t2, {d:.0f} s per cell, 1 KB JSON")
                say()
                say(HEADER)
                table: dict[tuple[str, int], Wrk] = {}
                for c in (16, 64):
                    table["nginx", c] = r = wrk(f"http://127.0.0.1:{upstream}/data.json", c, d)
                    say(row(f"nginx direct c={c}", r))
                    table["nginx-proxy", c] = r = wrk(
                        f"http://127.0.0.1:{nginx_proxy}/data.json", c, d
                    )
                    say(row(f"nginx reverse proxy c={c}", r))
                    table["naive", c] = r = wrk(
                        f"http://127.0.0.1:{naive_ports['naive']}/data.json", c, d
                    )
                    say(row(f"naive FastAPI+httpx (2w) c={c}", r))
                    table["bare", c] = r = wrk(f"http://127.0.0.1:{bare_port}/data.json", c, d)
                    say(row(f"bare ASGI+aiohttp (2w) c={c}", r))
                for proc in naives:
                    procs.stop(proc)

                token = ""
                extras: dict[str, Any] = {}
                for workers in (2, 1):
                    with studio(procs, env, workers, tmp, studio_root, args.http) as (base, proc):
                        if not token:
                            token = await token_for(base)
                        auth = f"Authorization: Bearer {token}"
                        url = f"{base}{API}/bench/data.json"
                        check = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
                        assert check.status_code == 200, check.text[:300]
                        pids = workers_of(proc, workers)
                        wrk(url, 64, 2, [auth])  # warm-up
                        if workers == 1 and not args.only_proxy:
                            served = count_to(url, 10_000, 0, [auth])
                            rss_10k = rss_mb(pids[0])
                            count_to(url, 100_000, served, [auth])
                            rss_100k = rss_mb(pids[0])
                            extras["rss"] = (rss_10k, rss_100k)
                        for c in (16, 64):
                            spy = None
                            if args.profile and workers == 2 and c == 64:
                                spy = profile(pids[0], d - 1, Path(args.profile))
                            r = wrk(url, c, d, [auth])
                            if spy is not None:
                                spy.wait(timeout=60)
                            table[f"studio-{workers}w", c] = r
                            ratio = (
                                f" x{r.rps / table['bare', c].rps:.2f} bare,"
                                f" x{r.rps / table['nginx-proxy', c].rps:.3f} nginx-proxy,"
                                f" x{r.rps / table['naive', c].rps:.1f} naive"
                            )
                            say(row(f"Studio {workers}w auth GET c={c}", r, ratio))
                        if workers == 1 and not args.only_proxy:
                            bearer = {"Authorization": f"Bearer {token}"}
                            direct = await sse_delays(
                                f"http://127.0.0.1:{fake_port}/sse", {}, 100, 0.02
                            )
                            through = await sse_delays(f"{base}{API}/fake/sse", bearer, 100, 0.02)
                            extras["sse"] = (direct, through)
                            extras["upload"] = await upload(
                                f"{base}{API}/fake/upload", bearer, 200 * 1024 * 1024, pids[0]
                            )
                            extras["idle_rss"] = [rss_mb(p) for p in pids]
        finally:
            procs.stop_all()

    if not args.only_proxy:
        say()
        direct, through = extras["sse"]
        added = statistics.median(through) - statistics.median(direct)
        say(
            f"SSE per-event delay (100 events, 20 ms apart): direct p50 "
            f"{statistics.median(direct):.2f} ms, through Studio p50 "
            f"{statistics.median(through):.2f} ms p99 {percentile(through, 99):.2f} ms "
            f"-> added {added:.2f} ms (p99 added "
            f"{percentile(through, 99) - percentile(direct, 99):.2f} ms)"
        )
        before, peak = extras["upload"]
        say(
            f"200 MB streamed upload through Studio (1 worker): RSS {before:.1f} MB -> peak "
            f"{peak:.1f} MB (+{peak - before:.1f} MB)"
        )
        rss_10k, rss_100k = extras["rss"]
        say(
            f"Studio worker RSS after 10k requests {rss_10k:.1f} MB, after 100k {rss_100k:.1f} MB "
            f"({(rss_100k / rss_10k - 1) * 100:+.1f}%)"
        )
        say()
        say("Login storm (benchmarks/login_storm.py, its own Studio, 1 worker):")
        storm = subprocess.run(
            [PY, "-m", "benchmarks.login_storm"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        for line in storm.stdout.splitlines():
            if line.startswith(("/health", "control", "ratio", "added", "logins")):
                say("    " + line)
    say(f"wall time {time.monotonic() - started:.0f} s")
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk cell")
    parser.add_argument("--studio-root", help="run Studio from this tree (e.g. a `git archive`)")
    parser.add_argument(
        "--http",
        default=HTTP_PROTOCOL,
        help="uvicorn HTTP protocol for Studio (`httptools`: uvicorn's own, uncorked)",
    )
    parser.add_argument("--only-proxy", action="store_true", help="only the rps table")
    parser.add_argument("--nginx-workers", type=int, default=2)
    parser.add_argument("--profile", help="py-spy raw profile of one Studio worker (2w, c=64)")
    parser.add_argument("--output", help="also write the report to this file")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
