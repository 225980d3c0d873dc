"""The generators and compilers a front-end team runs, driven as subprocesses: openapi-python-client
and mypy from this virtualenv; openapi-typescript, tsc and node from clients/typescript (its
packages installed with `npm ci` from the committed lock, as `make ts-check` does)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

VENV_BIN = Path(sys.executable).parent
TS_CLIENT = ROOT / "clients" / "typescript"
FLOWS = Path(__file__).parent / "flows"
PACKAGE = "studio_client"  # the generated Python package's import name
STEP_TIMEOUT = 300.0  # seconds: a bound on a hung tool, never an expectation of speed


@dataclass(frozen=True)
class Finished:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def report(self) -> str:
        """What to show when the step failed."""
        return f"$ {' '.join(self.argv)}\nexit {self.returncode}\n{self.stdout}\n{self.stderr}"


async def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> Finished:
    """Run a command to its end (killed past STEP_TIMEOUT) and keep what it printed."""
    args = tuple(str(a) for a in argv)
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), STEP_TIMEOUT)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        return Finished(args, -9, out.decode(errors="replace"), err.decode(errors="replace"))
    return Finished(args, process.returncode or 0, out.decode(errors="replace"), err.decode())


async def succeed(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> Finished:
    """`run`, failing the test with the command's output when it exits non-zero."""
    finished = await run(*argv, cwd=cwd, env=env)
    assert finished.returncode == 0, finished.report()
    return finished


# --- Python: openapi-python-client, mypy --strict


async def generate_python_client(schema: Path, into: Path) -> Path:
    """Generate the client package into `into/studio_client`; any generator warning (a piece of
    the schema it could not turn into code) fails. Returns `into`, the directory to import from."""
    config = into / "openapi-python-client.yaml"
    into.mkdir(parents=True, exist_ok=True)
    config.write_text("post_hooks: []\n")  # no formatter run over generated code
    await succeed(
        VENV_BIN / "openapi-python-client",
        "generate",
        "--path",
        schema,
        "--meta",
        "none",
        "--output-path",
        into / PACKAGE,
        "--config",
        config,
        "--fail-on-warning",
        cwd=into,
    )
    return into


async def mypy_strict(sources: Path, *files: Path, cache: Path) -> Finished:
    """`mypy --strict` on `files` and the whole generated package, outside the project's config."""
    config = cache.parent / "mypy.ini"
    config.write_text("[mypy]\npython_version = 3.11\n")
    return await run(
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--config-file",
        config,
        "--cache-dir",
        cache,
        *files,
        sources / PACKAGE,
        cwd=sources,
        env={"MYPYPATH": str(sources)},
    )


# --- TypeScript: openapi-typescript, tsc, node


def node_tools() -> None:
    """node and npm are required (CI runs `make ts-check` with them): missing is a failure."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: the TypeScript client needs Node.js >= 20")


async def install_node_modules() -> Path:
    """clients/typescript/node_modules from the committed lock (`npm ci`), redone only when the
    lock is newer than the last install. Returns the node_modules directory."""
    node_tools()
    modules = TS_CLIENT / "node_modules"
    installed = modules / ".package-lock.json"  # npm writes it at the end of an install
    lock = TS_CLIENT / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        await succeed("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error", cwd=TS_CLIENT)
    return modules


async def build_ts_flow(schema: Path, flow: Path, work: Path) -> Path:
    """Generate `schema.d.ts` beside a copy of `flow` in `work/src`, type-check and compile them
    with the client's strict tsconfig (no output on any type error); returns the compiled flow."""
    modules = await install_node_modules()
    src, out = work / "src", work / "out"
    src.mkdir(parents=True)
    (work / "node_modules").symlink_to(modules, target_is_directory=True)
    (work / "package.json").write_text(json.dumps({"type": "module"}))
    shutil.copyfile(flow, src / flow.name)
    bin_dir = modules / ".bin"
    await succeed(bin_dir / "openapi-typescript", schema, "--output", src / "schema.d.ts", cwd=work)
    tsconfig = {
        "extends": str(TS_CLIENT / "tsconfig.json"),
        "compilerOptions": {
            "noEmit": False,
            "noEmitOnError": True,
            "rootDir": "src",
            "outDir": "out",
        },
        "include": ["src"],
    }
    (work / "tsconfig.json").write_text(json.dumps(tsconfig, indent=2))
    await succeed(bin_dir / "tsc", "-p", work / "tsconfig.json", cwd=work)
    return out / flow.with_suffix(".js").name
