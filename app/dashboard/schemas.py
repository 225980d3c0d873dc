"""The dashboard's body: one slot per source declared in the registry."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class SourceOk(BaseModel):
    ok: Literal[True]
    data: Any = Field(description="The source's JSON (its `result` when it is an envelope)")

    model_config = {"json_schema_serialization_defaults_required": True}


class SourceFailed(BaseModel):
    ok: Literal[False]
    error: str = Field(
        description="Why the source failed: an `ErrorCode` (`FORBIDDEN` when the caller may "
        "not read it, `DOWNSTREAM_ERROR` when it answered an error status, ...)"
    )
    http_status: int | None = Field(
        None, description="With `DOWNSTREAM_ERROR`: the status the source answered"
    )


class DashboardPage(BaseModel):
    sources: dict[str, SourceOk | SourceFailed] = Field(
        description="Each source's slot, by the key the registry gives it"
    )

    model_config = {"json_schema_serialization_defaults_required": True}
