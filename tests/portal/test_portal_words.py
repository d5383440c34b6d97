"""Words shared by every area: the `when` date filter, credential kinds and categories, per-role task words."""

from __future__ import annotations

import pytest

from portal.credential_words import category_words, kind_words
from portal.dates import when
from portal.pages.client.words import words_for
from portal.templating import templates


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-12-06T01:52:09Z", "6 December 2026, 01:52 UTC"),
        ("2026-12-06T02:52:09+01:00", "6 December 2026, 01:52 UTC"),  # said in UTC whatever the offset
        ("2026-03-05T14:05:09.123456+00:00", "5 March 2026, 14:05 UTC"),
        (None, ""),
        ("", ""),
        ("soon", "soon"),  # not a time: shown as given rather than breaking the page
    ],
)
def test_when_reads_as_a_date_in_words(value: object, shown: str) -> None:
    assert when(value) == shown


def test_every_template_has_the_shared_filters() -> None:
    rendered = templates.env.from_string(
        "{{ t|when }} / {{ 'api_key'|credential_kind }} / {{ 'isp'|credential_category }}"
    ).render(t="2026-12-06T01:52:00Z")
    assert rendered == "6 December 2026, 01:52 UTC / API key / Internet provider"


def test_credential_kinds_and_categories_in_words() -> None:
    assert kind_words("password") == "Password"
    assert category_words("software_license") == "Software licence"
    assert category_words("dns_host") == "DNS host"
    assert category_words("something_new") == "Something new"


def test_a_task_awaiting_approval_is_worded_per_client_role() -> None:
    assert words_for("client_admin").task_status("awaiting_approval") == "Waiting for your approval"
    assert (
        words_for("client_user").task_status("awaiting_approval")
        == "Waiting for approval by your organisation's administrator"
    )
    assert words_for("client_user").task_status("in_progress") == "Being worked on"
