"""Throwaway Redis and PostgreSQL servers on free loopback ports that tests can break.

Each server is a real process: `stop()` ends it, `pause()` freezes it with SIGSTOP (connections
hang instead of being refused), `resume()` thaws it, `restart()` stops and starts it on the same
port (PostgreSQL keeps its data directory, Redis starts empty: it is a cache of sessions).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.support import free_port

# Redis and PostgreSQL take their port on the command line, so it is picked before they bind
# it (free_port) and another process may take it meanwhile: a server whose port was picked here
# starts again on a fresh one when it could not bind.
START_ATTEMPTS = 5


class PortTaken(Exception):
    """The server exited before it listened: its port was taken meanwhile."""


def wait_port(
    port: int, timeout: float = 15.0, up: bool = True, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until 127.0.0.1:port accepts connections (or, with up=False, refuses them); with
    `proc`, PortTaken as soon as that process has exited instead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise PortTaken(f"the server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not become {'open' if up else 'closed'} in {timeout} s")


class RedisServer:
    """`redis-server` without persistence on a free port."""

    def __init__(self, port: int | None = None, *extra: str) -> None:
        self.own_port = port is None  # picked here: may be picked again
        self.port = port or free_port()
        self.extra = extra
        self.dir = Path(tempfile.mkdtemp(prefix="studio-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        for attempt in range(START_ATTEMPTS):
            try:
                self._start()
                self.own_port = False  # restart() comes back on the same port
                return self
            except PortTaken:
                if not self.own_port or attempt == START_ATTEMPTS - 1:
                    raise
                self.proc = None
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self) -> RedisServer:
        args = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log"),
            *self.extra,
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_own(self.proc)
        return self

    def _wait_own(self, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
        """Until `proc` itself answers on the port (another process may hold it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise PortTaken(f"redis-server on port {self.port} exited with {proc.returncode}")
            try:
                info = subprocess.run(
                    ["redis-cli", "-p", str(self.port), *self._auth(), "info", "server"],
                    capture_output=True, text=True, timeout=1, check=False,
                ).stdout  # fmt: skip
            except subprocess.TimeoutExpired:
                continue  # something else holds the port and does not answer
            if _info_int(info, "process_id") == proc.pid:
                return
            time.sleep(0.05)
        raise TimeoutError(f"redis-server did not answer on port {self.port} in {timeout} s")

    def _auth(self) -> list[str]:
        """redis-cli's arguments for the `--requirepass` among `extra`, if any."""
        if "--requirepass" not in self.extra:
            return []
        password = self.extra[self.extra.index("--requirepass") + 1]
        return ["--no-auth-warning", "-a", password]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        wait_port(self.port, up=False)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is valid and free too."""
    for _ in range(200):
        port = free_port()
        if port > 55000:
            continue
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


class RedisCluster:
    """Three masters (no replicas) in cluster mode, joined with `redis-cli --cluster create`."""

    def __init__(self, nodes: int = 3) -> None:
        self.servers = [
            RedisServer(
                _cluster_port(), "--cluster-enabled", "yes", "--cluster-node-timeout", "2000"
            )
            for _ in range(nodes)
        ]
        for server in self.servers:
            server.extra = (*server.extra, "--cluster-config-file", str(server.dir / "nodes.conf"))

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.servers[0].port}"

    def start(self) -> RedisCluster:
        for server in self.servers:
            server.start()
        subprocess.run(
            [shutil.which("redis-cli") or "redis-cli", "--cluster", "create",
             *(f"127.0.0.1:{s.port}" for s in self.servers),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            info = subprocess.run(
                ["redis-cli", "-p", str(self.servers[0].port), "cluster", "info"],
                capture_output=True, text=True, timeout=5, check=False,
            )  # fmt: skip
            if "cluster_state:ok" in info.stdout:
                return self
            time.sleep(0.1)
        raise TimeoutError("the Redis Cluster did not reach cluster_state:ok")

    def close(self) -> None:
        for server in self.servers:
            server.close()

    def __enter__(self) -> RedisCluster:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    return shutil.which(name) or name


class PostgresServer:
    """A private PostgreSQL cluster (initdb + pg_ctl) with trust auth on a free port.

    As root, the cluster runs as the `postgres` user (initdb refuses root).
    """

    def __init__(self, port: int | None = None) -> None:
        self.own_port = port is None  # picked here: may be picked again
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="studio-pg-"))
        self.data = self.dir / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres", "postgres")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=60)

    def init(self) -> PostgresServer:
        self._run(
            _pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        return self

    def start(self) -> PostgresServer:
        if not self.data.exists():
            self.init()
        for attempt in range(START_ATTEMPTS):
            try:
                self._start()
                self.own_port = False  # restart() comes back on the same port
                return self
            except subprocess.CalledProcessError:
                if not self.own_port or attempt == START_ATTEMPTS - 1 or self._port_free():
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _port_free(self) -> bool:
        """True when nothing listens on the port (the failure to start was something else)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return False
        except OSError:
            return True

    def _start(self) -> PostgresServer:
        # fsync off (the OS keeps what was written), but commits are written before they are
        # acknowledged: an immediate stop, like a crash, must not lose an acknowledged commit.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c full_page_writes=off"
        )
        self._run(
            _pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "pg.log"),
            "-o", options, "-w", "-t", "30", "start",
        )  # fmt: skip
        wait_port(self.port)
        return self

    def stop(self, mode: str = "immediate") -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        wait_port(self.port, up=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


def _info_int(info: str, field: str) -> int:
    """An integer field of `INFO` output; -1 when absent."""
    for line in info.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.strip())
    return -1


class RedisSentinelGroup:
    """A master, one replica and one Sentinel (quorum 1) watching them as `mymaster`."""

    def __init__(self, name: str = "mymaster") -> None:
        self.name = name
        self.master = RedisServer()
        self.replica = RedisServer()
        self.sentinel_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="studio-sentinel-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.name}"

    def start(self) -> RedisSentinelGroup:
        self.master.start()
        self.replica.extra = ("--replicaof", "127.0.0.1", str(self.master.port))
        self.replica.start()
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {self.name} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.name} 1000\n"
            f"sentinel failover-timeout {self.name} 5000\n"
        )
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(self.sentinel_port)
        self._wait(lambda out: "master_link_status:up" in out, self.replica.port, "replication")
        return self

    def _wait(self, ok: Callable[[str], bool], port: int, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["redis-cli", "-p", str(port), "info", "replication"],
                capture_output=True, text=True, timeout=5, check=False,
            ).stdout  # fmt: skip
            if ok(out):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{what} did not settle in {timeout} s")

    def wait_replicated(self, timeout: float = 30) -> None:
        """Until the replica has everything the master had written when this was called."""
        out = subprocess.run(
            ["redis-cli", "-p", str(self.master.port), "info", "replication"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout  # fmt: skip
        target = _info_int(out, "master_repl_offset")
        self._wait(
            lambda out: _info_int(out, "slave_repl_offset") >= target,
            self.replica.port,
            "replication catch-up",
            timeout,
        )

    def wait_promoted(self, timeout: float = 30) -> None:
        """Until the replica has become the master."""
        self._wait(lambda out: "role:master" in out, self.replica.port, "failover", timeout)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        self.master.close()
        self.replica.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisSentinelGroup:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()
