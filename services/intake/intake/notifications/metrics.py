"""Notification counters, labelled by template (the guard's own refusals: `msp_mail_refused{reason,template}`)."""

from __future__ import annotations

from prometheus_client import Counter

SENT = Counter("msp_notifications_sent", "Notification messages handed to the mail relay", ["template"])
RETRIED = Counter(
    "msp_notifications_retried", "Notification jobs retried after a transient failure (SMTP, broker)", ["template"]
)
REFUSED = Counter(
    "msp_notifications_refused", "Notification messages the outbound-mail guard refused (never retried)", ["template"]
)
FAILED = Counter(
    "msp_notifications_failed", "Notification messages the relay refused for good (5xx), not retried", ["template"]
)
SKIPPED = Counter(
    "msp_notifications_duplicates", "Recipients skipped because this event's mail already went to them", ["template"]
)
