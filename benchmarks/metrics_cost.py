"""What one metric update costs, in memory and in multiprocess mode (several workers).

`studio serve --workers N` (N > 1) sets PROMETHEUS_MULTIPROC_DIR, where prometheus_client
writes every update to a memory-mapped file. A proxied request makes one counter and two
histogram updates. Runs each mode in a fresh interpreter:

    python -m benchmarks.metrics_cost
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import timeit

N = 200_000


def measure() -> str:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    registry = CollectorRegistry()
    counter = Counter("x_total", "x", ("a", "b", "c"), registry=registry).labels("1", "2", "3")
    histogram = Histogram("y_seconds", "y", ("a",), registry=registry).labels("1")
    inc = timeit.timeit(counter.inc, number=N) / N * 1e6
    observe = timeit.timeit(lambda: histogram.observe(0.0123), number=N) / N * 1e6
    mode = "multiprocess" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else "in memory"
    return (
        f"{mode:>12}: counter.inc {inc:.2f} us, histogram.observe {observe:.2f} us, "
        f"a proxied request's three updates {inc + 2 * observe:.2f} us"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(measure())
        return
    command = [sys.executable, "-m", "benchmarks.metrics_cost", "--one"]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    subprocess.run(command, env=env, check=True)
    with tempfile.TemporaryDirectory(prefix="studio-metrics-") as directory:
        subprocess.run(command, env={**env, "PROMETHEUS_MULTIPROC_DIR": directory}, check=True)


if __name__ == "__main__":
    main()
