// The ticket pod's script (the pod page, framed by the PSA). CSP script-src 'self': no inline script.
//
// Sign in: a click opens the portal's sign-in pop-up; the pop-up answers with a 60-second code by
// postMessage. Only a message from the portal's own origin AND from that very pop-up is taken, and
// only as a code: nothing (identity, ticket) is ever read from the PSA's page or its messages; the
// ticket id comes from this page's own markup, which the portal rendered from its URL. The code is
// traded for the pod cookie (POST /pod/session); if the cookie does not come back on the next
// request (the browser refuses cookies in frames), the pod offers the task in a new tab instead.
(function () {
  "use strict";
  var origin = window.location.origin;
  var CODE = /^[A-Za-z0-9_-]{43}$/;
  var TASK = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  var popup = null;

  function say(text) {
    var status = document.getElementById("pod-status") || document.getElementById("flash");
    if (status) status.textContent = text;
  }

  function ticketId() {
    var pod = document.getElementById("pod");
    return pod ? pod.getAttribute("data-ticket-id") : null;
  }

  function offerNewTab(taskId) {
    var box = document.getElementById("pod-newtab");
    var link = document.getElementById("pod-newtab-link");
    if (!box || !link) return;
    if (taskId && TASK.test(taskId)) {
      link.setAttribute("href", "/tasks/" + taskId);
      say("");
      box.hidden = false;
      link.focus();
    } else {
      say("No task you may see is linked to this ticket.");
    }
  }

  function exchange(code) {
    say("Signing in…");
    fetch("/pod/session", {
      method: "POST",
      credentials: "include",
      cache: "no-store",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({code: code, ticket_id: ticketId()})
    }).then(function (response) {
      return response.json().then(function (body) { return [response.ok, body]; });
    }).then(function (answer) {
      if (!answer[0]) {
        say("The sign-in did not complete; press Sign in again.");
        return null;
      }
      // Did the browser keep the cookie? Only a request that carries it finds a pod session.
      return fetch("/pod/session", {credentials: "include", cache: "no-store"})
        .then(function (response) { return response.json(); })
        .then(function (probe) {
          if (probe && probe.signed_in === true) window.location.reload();
          else offerNewTab(answer[1] && answer[1].task_id);
        });
    }).catch(function () {
      say("The portal did not answer; press Sign in again.");
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-pod-signin]");
    if (!button) return;
    popup = window.open("/pod-signin", "msp-pod-signin", "popup,width=520,height=700");
    if (!popup) say("The sign-in window was blocked: allow pop-ups for the ticket screen and press Sign in again.");
  });

  window.addEventListener("message", function (event) {
    if (event.origin !== origin || popup === null || event.source !== popup) return;
    if (typeof event.data !== "string" || !CODE.test(event.data)) return;
    popup = null; // one code per pop-up
    exchange(event.data);
  });
})();
