"""mspkit.http resolves each host itself and connects only to checked addresses (DNS rebinding, Vault, metadata)."""

from __future__ import annotations

import ipaddress
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mspkit.http import (
    AddressGuard,
    AddressNotAllowed,
    HostPolicy,
    VendorTransientError,
    address_kind,
)

sys.path.insert(0, str(Path(__file__).parent))
from test_http_servers import (
    API_KEY,
    ConnectSpy,
    RecordingServer,
    Reply,
    fake_resolver,
    make_http,
    serve,
)

__all__ = ["serve"]  # a fixture, used by name
Serve = Callable[..., RecordingServer]


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "non-public"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("93.184.216.34", None),
        ("2606:4700::6810:84e5", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("::ffff:127.0.0.1", "loopback address 127.0.0.1"),
        ("64:ff9b::a9fe:a9fe", "link-local address 169.254.169.254"),
        ("::a00:1", "private address 10.0.0.1"),
    ],
)
def test_ipv6_spellings_of_ipv4_addresses_are_judged_as_ipv4(answer: str, reason: str) -> None:
    guard = AddressGuard(resolver=fake_resolver({"api.vendor.test": [answer]}))
    with pytest.raises(AddressNotAllowed, match=reason):
        guard.addresses_for("api.vendor.test", 443)


def test_public_answers_pass_in_the_resolver_order() -> None:
    guard = AddressGuard(resolver=fake_resolver({"api.vendor.test": ["93.184.216.34", "2606:4700::6810:84e5"]}))
    assert guard.addresses_for("api.vendor.test", 443) == ["93.184.216.34", "2606:4700::6810:84e5"]


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.169.254", "10.0.0.1"])
def test_allowlisted_name_resolving_to_an_internal_address_is_refused_before_connecting(
    address: str, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve()
    server.replies["/x"] = Reply()
    spy = ConnectSpy().install(monkeypatch)
    origin = f"http://rebind.vendor.test:{server.port}"
    resolver = fake_resolver({"rebind.vendor.test": [address]})
    with make_http([origin], resolver=resolver) as http, pytest.raises(AddressNotAllowed) as info:
        http.get_json(f"{origin}/x", headers={"Authorization": f"Bearer {API_KEY}"})
    kind = address_kind(ipaddress.ip_address(address))
    assert str(info.value) == (
        f"request refused: rebind.vendor.test:{server.port} resolves to {kind} address {address}, "
        "which is not allowlisted"
    )
    assert info.value.vendor == "test"
    assert spy == []
    assert server.connections == 0 and server.requests == []


def test_the_default_resolver_is_guarded_too(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve()
    server.replies["/x"] = Reply()
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        # DNS that re-points a vendor's name at this machine.
        return real("127.0.0.1" if host == "rebind.vendor.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    origin = f"http://rebind.vendor.test:{server.port}"
    with make_http([origin]) as http, pytest.raises(AddressNotAllowed, match="resolves to loopback address"):
        http.get_json(f"{origin}/x")
    assert server.connections == 0


def test_one_internal_answer_among_public_ones_refuses_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = ConnectSpy().install(monkeypatch)
    resolver = fake_resolver({"api.vendor.test": ["93.184.216.34", "10.0.0.1"]})
    refused = re.escape("api.vendor.test:443 resolves to private address 10.0.0.1")
    with (
        make_http(["https://api.vendor.test"], resolver=resolver) as http,
        pytest.raises(AddressNotAllowed, match=refused),
    ):
        http.get_json("https://api.vendor.test/x")
    assert spy == []


def test_an_address_listed_as_an_ip_literal_is_reached_with_the_original_host(serve: Serve) -> None:
    server = serve()
    server.replies["/x"] = Reply()
    origin = f"http://sim.vendor.test:{server.port}"
    resolver = fake_resolver({"sim.vendor.test": ["127.0.0.1"]})
    with make_http([origin, server.origin()], resolver=resolver) as http:
        assert http.get_json(f"{origin}/x").data == {"ok": True}
        # The dev stack's form: the simulator's IP literal, legacy bare or as an origin.
        assert http.get_json(f"{server.origin()}/x").data == {"ok": True}
    with make_http([f"127.0.0.1:{server.port}"]) as http:
        assert http.get_json(f"{server.origin()}/x").data == {"ok": True}
    assert [r.headers["host"] for r in server.requests] == [
        f"sim.vendor.test:{server.port}",
        f"127.0.0.1:{server.port}",
        f"127.0.0.1:{server.port}",
    ]


def test_vault_is_refused_under_any_name_even_when_its_address_is_listed(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = serve()
    spy = ConnectSpy().install(monkeypatch)
    alias = f"http://alias.vendor.test:{vault.port}"
    resolver = fake_resolver({"alias.vendor.test": ["127.0.0.1"]})
    with make_http([alias, vault.origin()], resolver=resolver, denied_hosts=[vault.origin()]) as http:
        with pytest.raises(AddressNotAllowed, match=re.escape("resolves to denied address 127.0.0.1")):
            http.get_json(f"{alias}/v1/sys/health")
    assert spy == [] and vault.connections == 0


def test_a_vault_name_is_resolved_to_refuse_its_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = ConnectSpy().install(monkeypatch)
    resolver = fake_resolver({"vault.internal": ["10.9.9.9"], "api.vendor.test": ["10.9.9.9"]})
    allowed = ["https://api.vendor.test:8200", "https://10.9.9.9:8200"]
    with make_http(allowed, resolver=resolver, denied_hosts=["https://vault.internal:8200"]) as http:
        with pytest.raises(AddressNotAllowed, match=re.escape("denied address 10.9.9.9")):
            http.get_json("https://api.vendor.test:8200/v1/secret")
    assert spy == []


def test_link_local_is_refused_even_when_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = ConnectSpy().install(monkeypatch)
    resolver = fake_resolver({"meta.vendor.test": ["169.254.169.254"]})
    with make_http(["http://meta.vendor.test", "http://169.254.169.254"], resolver=resolver) as http:
        with pytest.raises(AddressNotAllowed, match=re.escape("link-local address 169.254.169.254")):
            http.get_json("http://meta.vendor.test/latest/meta-data/")
    assert spy == []


def test_a_name_that_does_not_resolve_is_a_transient_error(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = ConnectSpy().install(monkeypatch)
    with make_http(["https://gone.vendor.test"], resolver=fake_resolver({})) as http:
        with pytest.raises(VendorTransientError, match=r"transport error \(ConnectError\)"):
            http.get_json("https://gone.vendor.test/x")
    assert spy == []


def test_guard_for_policy_exempts_only_ip_literal_entries() -> None:
    policy = HostPolicy.build(["http://127.0.0.1:9000", "https://api.vendor.test", "http://localhost:9100"])
    table = {"api.vendor.test": ["127.0.0.1"], "localhost": ["::1", "127.0.0.1"]}
    guard = AddressGuard.for_policy(policy, fake_resolver(table))
    assert guard.addresses_for("127.0.0.1", 9000) == ["127.0.0.1"]
    assert guard.addresses_for("localhost", 9100) == ["::1", "127.0.0.1"]
    with pytest.raises(AddressNotAllowed):
        guard.addresses_for("api.vendor.test", 443)
    with pytest.raises(AddressNotAllowed):
        guard.addresses_for("127.0.0.1", 9001)
