"""The client forms' pure parts: form values to an API body, and a 422's field paths back to the inputs."""

from __future__ import annotations

from portal.pages.client.forms import MONEY_WORDS, build, errors_of, place, plain
from portal.pages.client.formspec import FORMS
from portal.pages.client.words import WORDS


def test_purchase_skips_empty_rows_and_converts_prices_to_cents() -> None:
    built = build(
        FORMS["purchase"],
        {
            "items.1.description": " Keyboard ",
            "items.1.quantity": "2",
            "items.1.unit_price": "$1,200.50",
            "items.3.description": "Mouse",
            "justification": "Broken",
            "supplier.name": "Office Ltd",
        },
    )
    assert built.body == {
        "type": "purchase",
        "items": [{"description": "Keyboard", "quantity": 2, "unit_price_cents": 120050}, {"description": "Mouse"}],
        "justification": "Broken",
        "supplier": {"name": "Office Ltd"},
    }
    assert built.row_maps == {"items": [1, 3]}
    assert built.values["items.1.description"] == "Keyboard"


def test_blank_groups_are_sent_empty_so_the_api_names_each_missing_field() -> None:
    built = build(FORMS["isp_account_setup"], {})
    assert built.body["service_address"] == {} and built.body["site_contact"] == {}
    assert "isp_name" not in built.body


def test_errors_land_on_the_rows_and_lines_the_person_typed() -> None:
    spec = FORMS["purchase"]
    built = build(spec, {"items.2.description": "Desk", "items.2.quantity": "0", "items.2.unit_price": "cheap"})
    placed = place(
        spec,
        built,
        [
            {"field": "items.0.quantity", "detail": "items.0.quantity: Input should be greater than or equal to 1"},
            {
                "field": "items.0.unit_price_cents",
                "detail": "items.0.unit_price_cents: Input should be a valid integer",
            },
            {"field": "supplier.name", "detail": "supplier.name: is required"},
            {"field": "Idempotency-Key", "detail": "Idempotency-Key: is required"},
        ],
    )
    assert placed.by_name["items.2.quantity"] == ["Input should be greater than or equal to 1."]
    assert placed.by_name["items.2.unit_price"] == [MONEY_WORDS]
    assert placed.by_name["supplier.name"] == ["This is required."]
    assert [p.label for p in placed.unplaced] == ["The form's submission key"]
    assert len(placed.summary) == 4
    assert placed.summary[0].anchor == "f-items-2-quantity" and placed.summary[0].label == "Item 3: Quantity"

    spam = FORMS["spam_filter_setup"]
    built = build(spam, {"domain": "a.example", "downstream_hosts": "mx.a.example\n\nbad host\n"})
    assert built.body["downstream_hosts"] == ["mx.a.example", "bad host"]
    placed = place(spam, built, [{"field": "downstream_hosts.1", "detail": "downstream_hosts.1: must be a host"}])
    assert placed.by_name == {"downstream_hosts": ["Line 3: Must be a host."]}


def test_an_empty_list_gets_words_of_its_own() -> None:
    spec = FORMS["purchase"]
    built = build(spec, {})
    assert built.body["items"] == []
    placed = place(
        spec, built, [{"field": "items", "detail": "items: List should have at least 1 item after validation"}]
    )
    assert placed.by_name == {"items": ["Fill in at least one item."]}
    assert placed.summary[0].label == "What to buy" and placed.summary[0].anchor == "f-items"


def test_unknown_paths_go_to_the_summary_and_bodies_without_errors_still_say_something() -> None:
    spec = FORMS["vendor_contact_update"]
    placed = place(spec, build(spec, {}), errors_of({"field": "client_id", "detail": "client_id: unknown field"}))
    assert placed.unplaced and placed.unplaced[0].words == "Unknown field."
    assert errors_of(None)[0]["field"] == "body"
    assert plain("", "x") == "This value was not accepted."


def test_words_for_codes_and_times() -> None:
    assert WORDS.party("provider_for_client") == "a provider working for you"
    assert WORDS.party("something_new") == "Something new"
    assert WORDS.service("svc:vendor_sync") == "our automatic vendor set-up service"
