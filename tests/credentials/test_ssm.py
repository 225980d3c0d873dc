"""SSM credentials: decryption, TTL cache, single-flight reads, failures that leak nothing."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError
from botocore.stub import Stubber

from app.core.aws import shared_ssm_client
from app.credentials import ssm
from app.credentials.base import BasicCredentials
from app.credentials.errors import CredentialsUnavailable
from app.credentials.ssm import SSMCredentialProvider
from tests.conftest import AWS_REGION as REGION

PREFIX = "/sentinel/test/nexus"
USER, PASSWORD = "svc-nexus", "s3cr3t-Pa55"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Stands in for the module's logger, so tests can see what was logged."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        return lambda event, **kw: self.events.append((level, event, kw))


@pytest.fixture
def aws(fake_ssm: Any) -> Any:
    fake_ssm.put_parameter(Name=f"{PREFIX}/service-user", Value=USER, Type="SecureString")
    fake_ssm.put_parameter(Name=f"{PREFIX}/service-password", Value=PASSWORD, Type="SecureString")
    return fake_ssm


@pytest.fixture
def calls(aws: Any) -> list[dict[str, Any]]:
    """Every GetParameters request the shared client makes."""
    seen: list[dict[str, Any]] = []
    client = shared_ssm_client(REGION)
    client.meta.events.register(
        "before-call.ssm.GetParameters", lambda params, **_: seen.append(json.loads(params["body"]))
    )
    return seen


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(ssm, "log", recorder)
    return recorder


def provider(ttl: float = 300, clock: Callable[[], float] | None = None) -> SSMCredentialProvider:
    kwargs = {"clock": clock} if clock else {}
    return SSMCredentialProvider(PREFIX, lambda: shared_ssm_client(REGION), ttl, **kwargs)


async def test_reads_both_secure_strings_decrypted_in_one_call(
    calls: list[dict[str, Any]],
) -> None:
    credentials = await provider().get()
    assert credentials == BasicCredentials(USER, PASSWORD)
    assert len(calls) == 1
    assert calls[0]["WithDecryption"] is True
    assert calls[0]["Names"] == [f"{PREFIX}/service-user", f"{PREFIX}/service-password"]


async def test_read_runs_in_a_worker_thread(aws: Any) -> None:
    threads: list[int] = []

    def factory() -> Any:
        threads.append(threading.get_ident())
        return shared_ssm_client(REGION)

    await SSMCredentialProvider(PREFIX, factory, 60).get()
    assert threads and threads[0] != threading.get_ident()


async def test_cache_serves_within_ttl_and_reads_again_after(calls: list[dict[str, Any]]) -> None:
    clock = Clock()
    p = provider(ttl=60, clock=clock)
    await p.get()
    clock.now += 59
    await p.get()
    assert len(calls) == 1
    clock.now += 2
    await p.get()
    assert len(calls) == 2


async def test_zero_ttl_disables_the_cache(calls: list[dict[str, Any]]) -> None:
    p = provider(ttl=0)
    await p.get()
    await p.get()
    assert len(calls) == 2


async def test_a_burst_of_gets_makes_one_call(calls: list[dict[str, Any]]) -> None:
    p = provider()
    results = await asyncio.gather(*(p.get() for _ in range(50)))
    assert len(calls) == 1
    assert p.reads == 1
    assert set(results) == {BasicCredentials(USER, PASSWORD)}


async def test_a_burst_of_refreshes_after_a_401_makes_one_call(
    calls: list[dict[str, Any]],
) -> None:
    p = provider()
    await p.get()
    await asyncio.gather(*(p.refresh() for _ in range(50)))
    assert len(calls) == 2


async def test_refresh_picks_up_a_rotated_password(aws: Any, calls: list[dict[str, Any]]) -> None:
    p = provider()
    assert (await p.get()).password == PASSWORD
    aws.put_parameter(
        Name=f"{PREFIX}/service-password", Value="rotated", Type="SecureString", Overwrite=True
    )
    assert (await p.get()).password == PASSWORD  # still cached
    assert (await p.refresh()).password == "rotated"
    assert (await p.get()).password == "rotated"  # the refresh refilled the cache
    assert len(calls) == 2


async def test_one_caller_giving_up_does_not_cancel_the_shared_read() -> None:
    release = threading.Event()

    class SlowClient:
        def get_parameters(self, **_: Any) -> dict[str, Any]:
            release.wait(5)
            return {
                "Parameters": [
                    {"Name": f"{PREFIX}/service-user", "Value": USER, "Type": "SecureString"},
                    {
                        "Name": f"{PREFIX}/service-password",
                        "Value": PASSWORD,
                        "Type": "SecureString",
                    },
                ]
            }

    p = SSMCredentialProvider(PREFIX, SlowClient, 60)  # type: ignore[arg-type]
    first = asyncio.create_task(p.get())
    second = asyncio.create_task(p.get())
    await asyncio.sleep(0.01)
    first.cancel()
    release.set()
    assert await second == BasicCredentials(USER, PASSWORD)
    assert first.cancelled()
    assert p.reads == 1


def assert_nothing_leaked(exc: CredentialsUnavailable, *secrets: str) -> None:
    text = f"{exc} {exc.details!r} {exc.detail_message}"
    assert str(exc) == "Upstream credentials are unavailable"
    assert exc.status_code == 503 and exc.code == "CREDENTIALS_UNAVAILABLE"
    # No chained AWS exception either: a traceback of it would carry AWS's text.
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__
    for secret in secrets:
        assert secret not in text


async def test_missing_parameter_is_unavailable(aws: Any, log: Recorder) -> None:
    aws.delete_parameter(Name=f"{PREFIX}/service-password")
    with pytest.raises(CredentialsUnavailable) as caught:
        await provider().get()
    assert_nothing_leaked(caught.value, USER, PREFIX)
    assert log.events == [
        (
            "error",
            "SSM parameters missing",
            {"prefix": PREFIX, "reason": "missing", "parameters": [f"{PREFIX}/service-password"]},
        )
    ]


async def test_aws_error_is_unavailable_and_its_text_stays_out(aws: Any, log: Recorder) -> None:
    client = boto3.client("ssm", region_name=REGION)
    stubber = Stubber(client)
    aws_text = "User arn:aws:iam::123456789012:role/studio is not authorized"
    stubber.add_client_error(
        "get_parameters", service_error_code="AccessDeniedException", service_message=aws_text
    )
    stubber.activate()
    with pytest.raises(CredentialsUnavailable) as caught:
        await SSMCredentialProvider(PREFIX, lambda: client, 60).get()
    assert_nothing_leaked(caught.value, aws_text, "AccessDenied", PREFIX)
    assert log.events == [
        ("error", "SSM read failed", {"prefix": PREFIX, "reason": "AccessDeniedException"})
    ]


@pytest.mark.parametrize(
    "error",
    [
        NoCredentialsError(),
        EndpointConnectionError(endpoint_url="https://ssm.example"),
        KeyError("x"),
    ],
)
async def test_client_failures_are_unavailable(error: Exception, log: Recorder) -> None:
    def broken() -> Any:
        raise error

    with pytest.raises(CredentialsUnavailable) as caught:
        await SSMCredentialProvider(PREFIX, broken, 60).get()
    assert_nothing_leaked(caught.value, "ssm.example")
    assert log.events[0][2]["reason"] == type(error).__name__


async def test_a_failed_read_keeps_serving_the_last_pair(log: Recorder) -> None:
    clock = Clock()
    healthy = {"up": True}
    good = {
        "Parameters": [
            {"Name": f"{PREFIX}/service-user", "Value": USER, "Type": "SecureString"},
            {"Name": f"{PREFIX}/service-password", "Value": PASSWORD, "Type": "SecureString"},
        ]
    }

    class FlakyClient:
        def get_parameters(self, **_: Any) -> dict[str, Any]:
            if not healthy["up"]:
                raise EndpointConnectionError(endpoint_url="https://ssm")
            return good

    p = SSMCredentialProvider(PREFIX, FlakyClient, 60, clock=clock)  # type: ignore[arg-type]
    await p.get()
    healthy["up"] = False
    clock.now += 61
    assert await p.get() == BasicCredentials(USER, PASSWORD)  # stale beats failing
    assert p.reads == 2
    await p.get()  # retried only after STALE_RETRY_SECONDS
    assert p.reads == 2
    with pytest.raises(CredentialsUnavailable):
        await p.refresh()  # after a 401 the old pair is known bad: no stale answer


async def test_plain_string_parameters_work_but_are_flagged(aws: Any, log: Recorder) -> None:
    aws.put_parameter(Name=f"{PREFIX}/service-user", Value=USER, Type="String", Overwrite=True)
    assert await provider().get() == BasicCredentials(USER, PASSWORD)
    assert [e[1] for e in log.events] == ["SSM parameters are not SecureString"]


def test_one_client_per_process(aws: Any) -> None:
    assert shared_ssm_client(REGION) is shared_ssm_client(REGION)


def test_credentials_repr_hides_the_password() -> None:
    assert PASSWORD not in repr(BasicCredentials(USER, PASSWORD))
