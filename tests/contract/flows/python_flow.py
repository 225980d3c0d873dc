"""A front end's first session, written only against the client that openapi-python-client
generates from Studio's live schema: no request is built here, every call is a generated
operation. Register, log in (bearer), who am I, refresh, a proxied JSON POST, a wildcard GET of
two segments with a query string, a server-sent event stream, log out.

    PYTHONPATH=<dir holding studio_client> python python_flow.py BASE_URL EMAIL PASSWORD

Each step prints `ok <step>`; the first failure exits non-zero with the step and the answer.
"""

from __future__ import annotations

import json
import sys
from http import HTTPStatus
from typing import Any, Protocol, TypeVar

from studio_client import AuthenticatedClient, Client
from studio_client.api.auth import auth_login, auth_logout, auth_me, auth_refresh, auth_register
from studio_client.api.zen import proxy_zen_get, proxy_zen_post
from studio_client.errors import UnexpectedStatus
from studio_client.models import (
    EnvelopeAny,
    ErrorEnvelope,
    LoginRequest,
    ProxyJsonBody,
    ProxyQuery,
    RegisterRequest,
    TokenPair,
)
from studio_client.types import File, Response


class Success(Protocol):
    """What every success envelope offers, whatever its `result`."""

    @property
    def success(self) -> bool: ...

    @property
    def message(self) -> str: ...


S = TypeVar("S", bound=Success)


class FlowFailed(Exception):
    """A step got another answer than the contract promises."""


def check(step: str, condition: bool, detail: object = "") -> None:
    if not condition:
        raise FlowFailed(f"{step}: {detail}")


def ok(step: str, response: Response[S | ErrorEnvelope], status: HTTPStatus) -> S:
    """The success envelope a step's response parsed into; an error envelope fails the step."""
    parsed = response.parsed
    if response.status_code != status or parsed is None or isinstance(parsed, ErrorEnvelope):
        raise FlowFailed(f"{step}: HTTP {response.status_code.value} {response.content[:500]!r}")
    check(step, parsed.success is True, parsed)
    print(f"ok {step}", flush=True)
    return parsed


def streamed(step: str, response: Response[Any], media: str) -> bytes:
    """The body of a proxied answer: the schema lists its bytes first (JSON, SSE and files all
    arrive as a `File`), and `Content-Type` says what they are."""
    answer = response.parsed
    if response.status_code != HTTPStatus.OK or not isinstance(answer, File):
        raise FlowFailed(f"{step}: HTTP {response.status_code.value} {response.content[:500]!r}")
    got = response.headers.get("content-type", "")
    check(step, got.startswith(media), f"{got} instead of {media}")
    return answer.payload.read()


def echoed(step: str, response: Response[Any]) -> dict[str, Any]:
    """The fake downstream's echo of the request it received: the `result` of the envelope that
    a proxied JSON answer carries, read with the generated envelope model."""
    envelope = EnvelopeAny.from_dict(json.loads(streamed(step, response, "application/json")))
    check(step, envelope.success is True, envelope)
    result = envelope.result
    check(step, isinstance(result, dict), f"result is not an object: {result!r}")
    print(f"ok {step}", flush=True)
    return dict(result)


def signed_in(base_url: str, token: str) -> AuthenticatedClient:
    """A client sending `token` as Bearer; a status the schema does not document raises."""
    return AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)


def run(base_url: str, email: str, password: str) -> None:
    anon = Client(base_url=base_url, raise_on_unexpected_status=True)

    created = ok(
        "register",
        auth_register.sync_detailed(
            client=anon, body=RegisterRequest(email=email, password=password)
        ),
        HTTPStatus.CREATED,
    )
    check("register", created.result.user.email == email, created.result.user)

    login = ok(
        "login",
        auth_login.sync_detailed(client=anon, body=LoginRequest(email=email, password=password)),
        HTTPStatus.OK,
    )
    pair = login.result
    if not isinstance(pair, TokenPair):
        raise FlowFailed(f"login: not a token pair: {pair!r}")
    check("login", pair.token_type == "bearer", pair.token_type)

    user = signed_in(base_url, pair.access_token)
    me = ok("me", auth_me.sync_detailed(client=user), HTTPStatus.OK)
    check("me", me.result.email == email, me.result)
    check("me", "zen:chat" in me.result.permissions, me.result.permissions)

    holder = signed_in(base_url, pair.refresh_token)
    renewed = ok("refresh", auth_refresh.sync_detailed(client=holder), HTTPStatus.OK).result
    check("refresh", renewed.refresh_token != pair.refresh_token, "refresh token not rotated")
    user = signed_in(base_url, renewed.access_token)

    message = {"message": "hello", "history": [1, 2]}
    echo = echoed(
        "proxied JSON POST",
        proxy_zen_post.sync_detailed("chat", client=user, body=ProxyJsonBody.from_dict(message)),
    )
    check("proxied JSON POST", echo.get("method") == "POST", echo)
    check("proxied JSON POST", echo.get("path") == "/chat", echo)
    check("proxied JSON POST", echo.get("json") == message, echo)

    query = ProxyQuery.from_dict({"q": "hello world", "limit": "2"})
    echo = echoed(
        "wildcard GET", proxy_zen_get.sync_detailed("chat/history", client=user, query=query)
    )
    check("wildcard GET", echo.get("method") == "GET", echo)
    check("wildcard GET", echo.get("path") == "/chat/history", echo)
    check("wildcard GET", echo.get("query") == "q=hello+world&limit=2", echo)

    ticks = ProxyQuery.from_dict({"n": "3", "interval": "0"})
    stream = streamed(
        "SSE", proxy_zen_get.sync_detailed("sse", client=user, query=ticks), "text/event-stream"
    )
    events = [line for line in stream.decode().splitlines() if line == "event: tick"]
    check("SSE", len(events) == 3, stream[:500])
    print("ok SSE", flush=True)

    ok("logout", auth_logout.sync_detailed(client=user), HTTPStatus.OK)
    after = auth_me.sync_detailed(client=user)
    gone = after.parsed
    if not isinstance(gone, ErrorEnvelope):
        raise FlowFailed(f"logout: the old token still works: {after.content[:500]!r}")
    check("logout", after.status_code == HTTPStatus.UNAUTHORIZED, after.status_code)
    check("logout", str(gone.error.code) == "SESSION_REVOKED", gone.error)
    print("ok session gone after logout", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        run(argv[1], argv[2], argv[3])
    except FlowFailed as failure:
        print(f"FAILED {failure}", file=sys.stderr)
        return 1
    except UnexpectedStatus as undocumented:
        body = undocumented.content[:500]
        print(f"FAILED undocumented HTTP {undocumented.status_code}: {body!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
