"""The request forms, described once: what each input is called, its label, and its API path.

Each input's `name` is the API's dotted field path (`service_address.city`), so a 422's
`errors[].field` finds its input directly; rows (`items.0.quantity`) and one-per-line lists need
the index maps that `build` returns, because empty rows and blank lines are not sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Input:
    """One labelled input."""

    name: str
    label: str
    kind: str = "text"  # text, email, tel, number, money, textarea, lines (a textarea, one item a line), select
    required: bool = False
    hint: str = ""
    autocomplete: str = "off"
    api: str = ""  # the API's name for it when the form's differs (a price in dollars sent as cents)

    @property
    def dom_id(self) -> str:
        """The element id (dots are awkward in CSS selectors and fragment links)."""
        return dom_id(self.name)


@dataclass(frozen=True)
class Group:
    """A fieldset of inputs; `name` is the API path of the group itself, for errors about the whole group."""

    legend: str
    inputs: tuple[Input, ...]
    name: str = ""
    hint: str = ""


@dataclass(frozen=True)
class Rows:
    """A fixed number of repeated rows (`{name}.{i}.{column}`); rows left empty are not sent."""

    legend: str
    name: str
    row_label: str
    count: int
    columns: tuple[Input, ...]
    hint: str = ""

    def row(self, index: int) -> tuple[Input, ...]:
        """The inputs of row `index`, named with the row's position on the form."""
        return tuple(
            Input(f"{self.name}.{index}.{c.name}", c.label, c.kind, c.required, c.hint, c.autocomplete, c.api)
            for c in self.columns
        )


Section = Group | Rows


@dataclass(frozen=True)
class FormSpec:
    """One request type's form."""

    type: str
    title: str
    intro: str
    sections: tuple[Section, ...]

    def inputs(self) -> list[Input]:
        """Every input on the form, rows expanded."""
        found: list[Input] = []
        for section in self.sections:
            if isinstance(section, Rows):
                for index in range(section.count):
                    found.extend(section.row(index))
            else:
                found.extend(section.inputs)
        return found

    def label_of(self, name: str) -> str:
        """The words that name an input or a group in the error summary."""
        for section in self.sections:
            if section.name == name:
                return section.legend
            if isinstance(section, Rows) and name.startswith(f"{section.name}."):
                index, _, column = name[len(section.name) + 1 :].partition(".")
                label = next((c.label for c in section.columns if c.name == column), "")
                return f"{section.row_label} {int(index) + 1}" + (f": {label}" if label else "")
            if isinstance(section, Group):
                for item in section.inputs:
                    if item.name == name:
                        return f"{section.legend}: {item.label}" if section.name else item.label
        return name


def dom_id(name: str) -> str:
    """The element id of the input called `name`."""
    return "f-" + name.replace(".", "-")


PURCHASE: Final = FormSpec(
    type="purchase",
    title="Ask for a purchase",
    intro="Tell us what to buy and from whom. Rows you leave empty are ignored.",
    sections=(
        Rows(
            legend="What to buy",
            name="items",
            row_label="Item",
            count=5,
            hint="Fill in one row per item: at least one.",
            columns=(
                Input("description", "Description"),
                Input("quantity", "Quantity", kind="number"),
                Input(
                    "unit_price",
                    "Price per item in dollars",
                    kind="money",
                    hint="Such as 12.50",
                    api="unit_price_cents",
                ),
            ),
        ),
        Group(
            legend="Why",
            inputs=(Input("justification", "Why it is needed", kind="textarea", required=True),),
        ),
        Group(
            legend="Supplier",
            name="supplier",
            inputs=(
                Input("supplier.name", "Name", required=True, autocomplete="organization"),
                Input("supplier.contact_email", "Contact email (optional)", kind="email"),
            ),
        ),
    ),
)

ISP_ACCOUNT_SETUP: Final = FormSpec(
    type="isp_account_setup",
    title="Ask for an internet service (ISP) account",
    intro="We open the account with the internet provider you name, at the address below.",
    sections=(
        Group(
            legend="Internet provider",
            inputs=(
                Input("isp_name", "Provider name", required=True),
                Input("isp_contact_email", "Provider contact email (optional)", kind="email"),
                Input("service_tier", "Service or plan", required=True, hint="For example: Business 500"),
            ),
        ),
        Group(
            legend="Service address",
            name="service_address",
            inputs=(
                Input("service_address.line1", "Address line 1", required=True, autocomplete="address-line1"),
                Input("service_address.line2", "Address line 2 (optional)", autocomplete="address-line2"),
                Input("service_address.city", "City", required=True, autocomplete="address-level2"),
                Input("service_address.region", "State or region", required=True, autocomplete="address-level1"),
                Input("service_address.postal_code", "Postal code", required=True, autocomplete="postal-code"),
                Input("service_address.country", "Country", required=True, autocomplete="country"),
            ),
        ),
        Group(
            legend="Site contact",
            name="site_contact",
            hint="The person the provider meets on site.",
            inputs=(
                Input("site_contact.name", "Name", required=True),
                Input("site_contact.email", "Email", kind="email", required=True),
                Input("site_contact.phone", "Phone", kind="tel", required=True),
            ),
        ),
    ),
)

SPAM_FILTER_SETUP: Final = FormSpec(
    type="spam_filter_setup",
    title="Ask for spam filtering",
    intro="Incoming mail for the domain is filtered by MailChannels, then delivered to your mail servers.",
    sections=(
        Group(
            legend="Domain and mail servers",
            inputs=(
                Input("domain", "Domain", required=True, hint="For example: example.com"),
                Input(
                    "downstream_hosts",
                    "Your mail servers, one per line",
                    kind="lines",
                    required=True,
                    hint="Where filtered mail is delivered: host names or IPv4 addresses, 1 to 10 lines.",
                ),
            ),
        ),
    ),
)

VENDOR_CONTACT_UPDATE: Final = FormSpec(
    type="vendor_contact_update",
    title="Add a contact at a vendor",
    intro="We add the people below to your account at the vendor. Rows you leave empty are ignored.",
    sections=(
        Group(
            legend="Vendor account",
            inputs=(Input("vendor_account_id", "Vendor account", kind="select", required=True),),
        ),
        Rows(
            legend="Contacts to add",
            name="contacts.add",
            row_label="Contact",
            count=3,
            columns=(
                Input("name", "Name"),
                Input("role", "Role", hint="For example: billing"),
                Input("email", "Email (optional)", kind="email"),
                Input("phone", "Phone (optional)", kind="tel"),
            ),
        ),
    ),
)

FORMS: Final[dict[str, FormSpec]] = {
    spec.type: spec for spec in (PURCHASE, ISP_ACCOUNT_SETUP, SPAM_FILTER_SETUP, VENDOR_CONTACT_UPDATE)
}
