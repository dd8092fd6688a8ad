"""Questions agents ask the operator, and approvals for what agents may not do alone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

import msgspec

from hyperhive.events.envelope import Event, Line, Text

MIN_TTL_SECONDS = 1
MAX_TTL_SECONDS = 7 * 24 * 3600  # a week: anything longer is a typo, not a plan

Ttl = Annotated[int, msgspec.Meta(ge=MIN_TTL_SECONDS, le=MAX_TTL_SECONDS)]


class QuestionAsked(Event, frozen=True, kw_only=True, tag="question.asked"):
    """An agent asked the operator a question; it expires at `expires_at`."""

    question_id: str
    question: Text
    options: list[Line] = []
    multi: bool = False  # the options may be picked together (the answer joins them with ", ")
    ttl_seconds: Ttl
    expires_at: datetime

    summary_fields: ClassVar[tuple[str, ...]] = ("question_id", "question", "expires_at")


class QuestionAnswered(Event, frozen=True, kw_only=True, tag="question.answered"):
    """The operator answered a question."""

    question_id: str
    answer: Text
    by: str

    summary_fields: ClassVar[tuple[str, ...]] = ("question_id", "answer", "by")


class QuestionExpired(Event, frozen=True, kw_only=True, tag="question.expired"):
    """A question's TTL ran out before anyone answered it."""

    question_id: str

    summary_fields: ClassVar[tuple[str, ...]] = ("question_id",)


class QuestionCancelled(Event, frozen=True, kw_only=True, tag="question.cancelled"):
    """A question was withdrawn before it was answered."""

    question_id: str
    by: str
    reason: str | None = None

    summary_fields: ClassVar[tuple[str, ...]] = ("question_id", "by", "reason")


class ApprovalRequested(Event, frozen=True, kw_only=True, tag="approval.requested"):
    """Something needs the operator's approval (`approval_kind`: spawn, apply_commit, ...)."""

    approval_id: str
    approval_kind: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
    description: Text
    payload: dict[str, Any] = {}
    ttl_seconds: Ttl
    expires_at: datetime | None = None

    summary_fields: ClassVar[tuple[str, ...]] = ("approval_id", "approval_kind", "description")


class ApprovalDecision(Event, frozen=True, kw_only=True):
    """Fields shared by the facts that settle an approval."""

    approval_id: str
    by: str | None = None
    note: Text | None = None

    summary_fields: ClassVar[tuple[str, ...]] = ("approval_id", "by", "note")


class ApprovalApproved(ApprovalDecision, frozen=True, kw_only=True, tag="approval.approved"):
    """The operator approved a request."""


class ApprovalDenied(ApprovalDecision, frozen=True, kw_only=True, tag="approval.denied"):
    """The operator denied a request."""


class ApprovalExpired(ApprovalDecision, frozen=True, kw_only=True, tag="approval.expired"):
    """A request's TTL ran out before anyone decided."""


class ApprovalFailed(ApprovalDecision, frozen=True, kw_only=True, tag="approval.failed"):
    """An approved request could not be carried out (e.g. `agent state dir missing`)."""


class ApprovalApplied(ApprovalDecision, frozen=True, kw_only=True, tag="approval.applied"):
    """An approved request was carried out."""
