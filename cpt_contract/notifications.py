"""Notifications: who is told what when a run ends, and how (a webhook or an e-mail).

A channel is the user's (every run) or one run's; it names the events it wants. The API queues
one delivery per channel and event in the same transaction as the status change (an outbox),
and a background task delivers them with retries and backoff, so a slow or dead receiver never
holds up the worker's reports.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NotifyEvent = Literal["succeeded", "failed", "stalled", "cancelled", "experiment_finished"]
NOTIFY_EVENTS: tuple[str, ...] = (
    "succeeded",
    "failed",
    "stalled",
    "cancelled",
    "experiment_finished",
)
#: What a new channel is told of, unless it says otherwise.
DEFAULT_EVENTS: tuple[NotifyEvent, ...] = ("succeeded", "failed", "stalled", "cancelled")
ChannelKind = Literal["webhook", "email"]
#: ``slack``: ``{"text"}`` (Slack's incoming webhooks, Mattermost, Rocket.Chat); ``discord``:
#: ``{"content"}``; ``generic``: the run's summary and link as JSON (``payloads.py``).
WebhookFormat = Literal["slack", "discord", "generic"]
DeliveryStatus = Literal["pending", "delivered", "failed"]

#: A plain address (no display name): ``user@host``.
EMAIL_PATTERN = r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9.-]{1,253}$"


class ChannelIn(BaseModel):
    """Body of ``POST /api/notifications/channels``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, title="Name")
    kind: ChannelKind = Field(title="Kind")
    url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        title="Webhook URL",
        description="Kept encrypted; shown only as its host.",
    )
    format: WebhookFormat = Field(default="generic", title="Webhook body")
    to: list[Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=320)]] = Field(
        default_factory=list, max_length=20, title="E-mail to"
    )
    events: list[NotifyEvent] = Field(
        default_factory=lambda: list(DEFAULT_EVENTS),
        min_length=1,
        title="Events",
    )
    run_id: str | None = Field(
        default=None, max_length=32, title="Run", description="Empty: every run."
    )

    @model_validator(mode="after")
    def _target(self) -> ChannelIn:
        if self.kind == "webhook" and not self.url:
            raise ValueError("url: a webhook channel needs the URL to POST to")
        if self.kind == "email" and not self.to:
            raise ValueError("to: an e-mail channel needs at least one address")
        return self
