"""Records of alert delivery: acknowledgements on ``alerts.ack`` (key: ``alert_id``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from crisiswatch.stream.records import UtcDatetime, utcnow

ACK_ACTOR_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,127}$"


class AlertAck(BaseModel):
    """A person's acknowledgement of an alert episode: who, when, and an optional note."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["ack"] = "ack"
    alert_id: str = Field(min_length=1, max_length=256, description="The episode acknowledged.")
    brand: str | None = Field(default=None, max_length=256)
    actor: Annotated[str, StringConstraints(pattern=ACK_ACTOR_PATTERN)] = Field(
        description="User name of the person who acknowledged."
    )
    note: str = Field("", max_length=2000, description="What they are doing about it.")
    at: UtcDatetime = Field(default_factory=utcnow)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


SCHEMA_FILES: dict[str, type[BaseModel]] = {"alert_ack.v1.json": AlertAck}
"""For ``stream.schema_files`` (the lead registers it there)."""
