"""The process-wide AWS SSM clients (boto3 clients are thread-safe; creating them is not)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

# Bounded waits: a credential read sits in front of a user's request.
BOTO_CONFIG = Config(
    connect_timeout=3, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}
)
_clients: dict[str | None, SSMClient] = {}
_clients_lock = threading.Lock()


def shared_ssm_client(region: str | None = None) -> SSMClient:
    """The process-wide SSM client for `region`, created on first use (it is thread-safe)."""
    with _clients_lock:
        client = _clients.get(region)
        if client is None:
            # Its own session: boto3's default session is not safe to create clients from
            # concurrently, and this runs in worker threads.
            client = boto3.session.Session().client("ssm", region_name=region, config=BOTO_CONFIG)
            _clients[region] = client
        return client


def reset_shared_ssm_clients() -> None:
    """Forget the shared clients (tests switch AWS mocks between cases)."""
    with _clients_lock:
        _clients.clear()
