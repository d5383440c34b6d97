"""ServiceClient.read_json: a peer's answer is JSON or None on 404; every doubt is the caller's 503."""

from __future__ import annotations

import httpx
import pytest
import respx

from mspkit.errors import Unavailable
from mspkit.service_tokens import MAX_PEER_BODY_BYTES, ServiceClient, ServiceTokenSource

TOKEN_URL = "https://idp.test/token"
PEER = "https://peer.test"


class PeerDown(Unavailable):
    """The caller's own 503 type."""


@pytest.fixture
def client() -> ServiceClient:
    tokens = ServiceTokenSource(token_url=TOKEN_URL, client_id="svc:test", client_secret="s")
    return ServiceClient(base_url=PEER, audience="peer", tokens=tokens, timeout_s=2.0)


@pytest.fixture
def idp() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).respond(200, json={"access_token": "tok", "expires_in": 300})
        yield router


def test_a_200_is_its_json_and_a_404_is_none(client: ServiceClient, idp: respx.MockRouter) -> None:
    found = idp.get(f"{PEER}/things/1").respond(200, json={"id": "1"})
    idp.get(f"{PEER}/things/2").respond(404, json={"error": "not_found"})

    assert client.read_json("/things/1", params={"a": "b"}) == {"id": "1"}
    assert client.read_json("/things/2") is None
    assert found.calls.last.request.headers["authorization"] == "Bearer tok"
    assert found.calls.last.request.url.params["a"] == "b"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(500, json={"error": "internal"}), "peer answered 500"),
        (httpx.Response(302, headers={"location": "https://elsewhere.test/"}), "peer answered 302"),
        (httpx.Response(200, text="<html>"), "peer's answer is not JSON"),
        (httpx.Response(200, content=b"[" + b"1," * MAX_PEER_BODY_BYTES + b"1]"), "peer answered 200"),
    ],
)
def test_an_unexpected_answer_is_the_callers_503(
    client: ServiceClient, idp: respx.MockRouter, answer: httpx.Response, message: str
) -> None:
    idp.get(f"{PEER}/things/1").mock(return_value=answer)

    with pytest.raises(PeerDown) as raised:
        client.read_json("/things/1", unavailable=PeerDown)

    assert (raised.value.status_code, raised.value.code, raised.value.detail) == (503, "unavailable", message)


def test_an_unreachable_peer_or_token_endpoint_is_503_naming_which(client: ServiceClient) -> None:
    with respx.mock() as router:
        router.post(TOKEN_URL).respond(200, json={"access_token": "tok", "expires_in": 300})
        router.get(f"{PEER}/things/1").mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(PeerDown, match=r"^peer unreachable \(connection failed\)$"):
            client.read_json("/things/1", unavailable=PeerDown)
        router.get(f"{PEER}/things/2").mock(side_effect=httpx.ReadTimeout("slow"))
        with pytest.raises(PeerDown, match=r"^peer unreachable \(timed out\)$"):
            client.read_json("/things/2", unavailable=PeerDown)

    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).respond(401, json={"error": "invalid_client"})
        peer = router.get(f"{PEER}/things/1").respond(200, json={})
        with pytest.raises(Unavailable, match=r"^service token for peer unavailable"):
            ServiceClient(
                base_url=PEER,
                audience="peer",
                tokens=ServiceTokenSource(token_url=TOKEN_URL, client_id="svc:test", client_secret="wrong"),
            ).read_json("/things/1")
        assert not peer.called


def test_a_call_made_while_a_request_is_handled_forwards_its_id(client: ServiceClient, idp: respx.MockRouter) -> None:
    from mspkit import requestid

    route = idp.get(f"{PEER}/things/1").respond(200, json={"id": "1"})
    binding = requestid.enter("caller-req-1")
    try:
        client.read_json("/things/1")
    finally:
        binding.leave()
    assert route.calls.last.request.headers["x-request-id"] == "caller-req-1"
    client.read_json("/things/1")  # outside any request: the peer makes its own id
    assert "x-request-id" not in route.calls.last.request.headers
