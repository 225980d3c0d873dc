"""Where the registry's two documents come from: the base file, and the stage overlay from a
file or, in a deployed stack, an SSM parameter (`SERVICE_OVERLAY_SSM_PARAMETER`).

The parameter is what makes a live reload useful where the image's files cannot change: an
operator puts a new overlay (`aws ssm put-parameter --overwrite`) and reloads, or lets the
watch (`SERVICE_CONFIG_RELOAD_INTERVAL`) notice it. Reads block (a file, boto3): callers run
them in a thread once the event loop runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from app.core.aws import shared_ssm_client
from app.core.config import Settings

SSM_LABEL = "ssm:{name}"
# An overlay is a few KB; SSM's advanced tier holds 8 KB, a file gets the same bound.
MAX_OVERLAY_BYTES = 256 * 1024


class SourceError(Exception):
    """A document that must exist cannot be read (the message names it, never its content)."""


@dataclass(frozen=True, slots=True)
class Document:
    label: str  # a path, or `ssm:<parameter name>`
    content: bytes


def overlay_label(settings: Settings) -> str:
    name = settings.service_overlay_ssm_parameter
    return SSM_LABEL.format(name=name) if name else str(settings.overlay_path)


def read_overlay(settings: Settings) -> Document | None:
    """The overlay, or None when none is configured and the stage's default file is absent."""
    name = settings.service_overlay_ssm_parameter
    if name:
        return Document(SSM_LABEL.format(name=name), _parameter(settings, name))
    path = settings.overlay_path
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        if settings.service_overlay_path is None:
            return None  # the default stage file may be absent
        raise SourceError(f"{path}: overlay file not found (SERVICE_OVERLAY_PATH)") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read: {type(exc).__name__}") from None
    return Document(str(path), content)


def _parameter(settings: Settings, name: str) -> bytes:
    region = settings.aws_region or os.environ.get("AWS_REGION")
    try:
        answer = shared_ssm_client(region).get_parameter(Name=name, WithDecryption=True)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        raise SourceError(f"ssm:{name}: cannot be read: {code}") from None
    except BotoCoreError as exc:
        raise SourceError(f"ssm:{name}: cannot be read: {type(exc).__name__}") from None
    content = answer["Parameter"].get("Value", "").encode("utf-8")
    if len(content) > MAX_OVERLAY_BYTES:
        raise SourceError(f"ssm:{name}: larger than {MAX_OVERLAY_BYTES} bytes")
    return content
