"""Run the planted-bug table against a temporary copy of the checkout (see __init__)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from tools.mutate.table import MUTANTS, Mutant

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
PYTEST = ("-m", "pytest", "-q", "-p", "no:cacheprovider", "-x")


class Outcome(Enum):
    KILLED = "killed"
    TIMEOUT = "killed (timeout)"
    SURVIVED = "SURVIVED"
    STALE = "STALE"
    EQUIVALENT = "equivalent"


@dataclass(frozen=True, slots=True)
class Result:
    mutant: Mutant
    outcome: Outcome
    seconds: float
    detail: str = ""


def copy_checkout(dest: Path) -> int:
    """Copy the tracked and untracked-but-not-ignored files as they are in the working tree."""
    git = shutil.which("git") or "git"
    listed = subprocess.run(  # noqa: S603 - fixed arguments
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    copied = 0
    for raw in listed:
        if not raw:
            continue
        rel = os.fsdecode(raw)
        src = REPO / rel
        if not src.is_symlink() and not src.exists():
            continue  # deleted in the working tree, not yet committed
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
        copied += 1
    return copied


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    # A mutant and its restored original may share a size and an mtime second: no .pyc may
    # outlive either of them.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONSAFEPATH", None)  # `-m` must put the copy (cwd) first on sys.path
    return env


def check_imports_from(copy: Path, env: dict[str, str]) -> None:
    """Fail unless `app` and `tests` resolve to the copy, not the checkout or an install."""
    probe = "import app, tests; print(app.__file__); print(tests.__file__)"
    out = subprocess.run(  # noqa: S603 - the venv's python, fixed arguments
        [str(PYTHON), "-c", probe], cwd=copy, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    for path in out:
        if not Path(path).resolve().is_relative_to(copy.resolve()):
            sys.exit(f"mutate: {path} is imported from outside the copy {copy}")


def run_tests(
    copy: Path, env: dict[str, str], tests: Sequence[str], timeout: float, *, quiet: bool = True
) -> int | None:
    """pytest's exit code, or None when it ran past `timeout` seconds."""
    output = subprocess.DEVNULL if quiet else None
    try:
        done = subprocess.run(  # noqa: S603 - test ids from the table
            [str(PYTHON), *PYTEST, *tests],
            cwd=copy,
            env=env,
            stdout=output,
            stderr=output,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    return done.returncode


def _drop_bytecode(source: Path) -> None:
    for pyc in (source.parent / "__pycache__").glob(f"{source.stem}.*.pyc"):
        pyc.unlink(missing_ok=True)


def run_mutant(copy: Path, env: dict[str, str], mutant: Mutant, timeout: float) -> Result:
    if mutant.equivalent:
        return Result(mutant, Outcome.EQUIVALENT, 0.0, mutant.equivalent)
    path = copy / mutant.file
    original = path.read_text(encoding="utf-8") if path.is_file() else ""
    count = original.count(mutant.find)
    if count != 1:
        return Result(mutant, Outcome.STALE, 0.0, f"snippet found {count} times")
    started = time.monotonic()
    try:
        path.write_text(original.replace(mutant.find, mutant.replace), encoding="utf-8")
        _drop_bytecode(path)
        code = run_tests(copy, env, mutant.tests, timeout)
    finally:
        path.write_text(original, encoding="utf-8")
        _drop_bytecode(path)
    seconds = time.monotonic() - started
    if code is None:
        return Result(mutant, Outcome.TIMEOUT, seconds)
    if code == 0:
        return Result(mutant, Outcome.SURVIVED, seconds)
    if code == 1:
        return Result(mutant, Outcome.KILLED, seconds)
    # 2-5: interrupted, internal error, usage error, nothing collected: not a verdict on the code.
    return Result(mutant, Outcome.STALE, seconds, f"pytest exited {code}")


def check_table(mutants: Iterable[Mutant]) -> Iterable[str]:
    """What is wrong with the table against the working tree: stale snippets, missing tests."""
    for m in mutants:
        path = REPO / m.file
        count = path.read_text(encoding="utf-8").count(m.find) if path.is_file() else 0
        if count != 1:
            yield f"{m.id}: snippet found {count} times in {m.file}"
        if m.find == m.replace:
            yield f"{m.id}: the replacement changes nothing"
        for test in m.tests:
            if not (REPO / test.split("::", 1)[0]).is_file():
                yield f"{m.id}: no test file {test}"


def table(results: Iterable[Result]) -> str:
    rows = [("id", "outcome", "s", "file", "planted bug")]
    for r in results:
        what = r.mutant.why + (f" [{r.detail}]" if r.detail else "")
        rows.append((r.mutant.id, r.outcome.value, f"{r.seconds:.0f}", r.mutant.file, what))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + "  "
        + row[4]
        for row in rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutate", description=__doc__)
    parser.add_argument("ids", nargs="*", help="run only these mutants (default: all)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per mutant")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    parser.add_argument(
        "--check", action="store_true", help="only check the table against the tree (seconds)"
    )
    args = parser.parse_args(argv)

    ids = [m.id for m in MUTANTS]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        sys.exit(f"mutate: duplicate ids {duplicates}")
    chosen = [m for m in MUTANTS if not args.ids or m.id in args.ids]
    unknown = sorted(set(args.ids) - set(ids))
    if unknown:
        sys.exit(f"mutate: unknown ids {unknown}")
    if args.list:
        for m in chosen:
            print(f"{m.id:40} {m.file:32} {m.why}")
        return 0
    if args.check:
        problems = list(check_table(chosen))
        for problem in problems:
            print(f"mutate: {problem}")
        return 1 if problems else 0

    started = time.monotonic()
    env = environment()
    with tempfile.TemporaryDirectory(prefix="studio-mutate-") as tmp:
        copy = Path(tmp)
        files = copy_checkout(copy)
        check_imports_from(copy, env)
        print(f"mutate: {files} files copied to {copy}; {len(chosen)} mutants", flush=True)
        if not args.no_baseline:
            # Each mutant's tests must pass on the unmutated code, or "killed" means nothing.
            selected = sorted({t for m in chosen if not m.equivalent for t in m.tests})
            code = run_tests(copy, env, selected, args.timeout * 4, quiet=False)
            if code != 0:
                sys.exit(f"mutate: the selected tests fail without any mutant (exit {code})")
            print(f"mutate: baseline passed ({len(selected)} test selections)", flush=True)
        results = []
        for mutant in chosen:
            result = run_mutant(copy, env, mutant, args.timeout)
            results.append(result)
            print(f"  {mutant.id:40} {result.outcome.value} ({result.seconds:.0f}s)", flush=True)

    print()
    print(table(results))
    counts = {o: sum(r.outcome is o for r in results) for o in Outcome}
    killed = counts[Outcome.KILLED] + counts[Outcome.TIMEOUT]
    scored = len(results) - counts[Outcome.EQUIVALENT]
    score = 100 * killed / scored if scored else 100.0
    print(
        f"\nmutants {len(results)}: killed {killed}, survived {counts[Outcome.SURVIVED]}, "
        f"stale {counts[Outcome.STALE]}, equivalent {counts[Outcome.EQUIVALENT]}; "
        f"score {score:.1f}% ({killed}/{scored}) in {time.monotonic() - started:.0f}s"
    )
    return 1 if counts[Outcome.SURVIVED] or counts[Outcome.STALE] else 0


if __name__ == "__main__":
    sys.exit(main())
