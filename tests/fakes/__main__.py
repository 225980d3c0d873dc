"""Run the four fake downstreams on 9101-9104: `python -m tests.fakes [--host H] [--base-port P]`.

Basic Auth is `FAKE_SERVICE_USER` / `FAKE_SERVICE_PASSWORD` (default `studio` /
`studio-dev-password`); rotate the password at runtime with
`curl -X POST localhost:9101/__fake__/password -d '{"password": "new"}'`.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import uvicorn

from tests.fakes.server import DEFAULT_PORTS, make_service


async def serve(host: str, base_port: int | None) -> None:
    """Serve every fake until interrupted."""
    user = os.environ.get("FAKE_SERVICE_USER", "studio")
    password = os.environ.get("FAKE_SERVICE_PASSWORD", "studio-dev-password")
    servers = []
    for offset, (name, port) in enumerate(DEFAULT_PORTS.items()):
        app = make_service(name, user, password)
        config = uvicorn.Config(
            app,
            host=host,
            port=port if base_port is None else base_port + offset,
            log_level="info",
            lifespan="on",
        )
        servers.append(uvicorn.Server(config))
        print(f"fake {name}: http://{host}:{config.port}{app.base_path}")
    await asyncio.gather(*(server.serve() for server in servers))


def main() -> None:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--base-port", type=int, default=None)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.base_port))


if __name__ == "__main__":
    main()
