"""Studio's speed-ups that bend a framework, each behind a setting that turns it off.

- `protocol`: uvicorn's httptools protocol with corked writes, so a small answer leaves in one
  write (`studio serve`). Off: `RUNTIME_CORKED_WRITES=false` (uvicorn's own protocol).
- `lane`: `StudioApp`, whose middleware stack sends a request for a registry service through
  Studio's middleware straight to the proxy, past Starlette's and FastAPI's inner layers and
  route matching; tracing wraps it as it wraps the rest. Off: `RUNTIME_FAST_LANE=false`
  (FastAPI's stack for every request).
- `gc`: the lifespan moves what start-up built out of the cyclic GC's reach (`gc.freeze`),
  which took the ~100 ms full collections out of the p99. Off: `RUNTIME_GC_FREEZE=false`.

Each one is measured in BENCHMARKS.md; tests/runtime checks that the answers are the same byte
for byte with it on and off. pyproject.toml bounds uvicorn, Starlette and FastAPI to the series
they were tested against.
"""
