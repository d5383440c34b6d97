// The token arrives in the URL fragment, which browsers never send to a server or in a Referer.
// It is removed from the address bar at once, so a reload (or the history) shows nothing.
(function () {
  "use strict";
  var token = "";
  var $ = function (id) { return document.getElementById(id); };

  function takeFragment() {
    if (window.location.hash.length > 1) {
      token = decodeURIComponent(window.location.hash.slice(1));
      history.replaceState(null, "", window.location.pathname);
    }
  }
  takeFragment();

  function fail(message) {
    $("error").textContent = message;
    $("error").hidden = false;
  }

  function reveal(value) {
    // An explicit click: mail scanners that prefetch links must not consume the single use.
    $("ready").hidden = true;
    $("paste-form").hidden = true;
    fetch("/v1/reveal", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ wrap_token: value }),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer"
    }).then(function (response) {
      return response.json().then(function (body) { return { status: response.status, body: body }; });
    }).then(function (r) {
      if (r.status !== 200) {
        fail(r.status === 410 ? "This link was already used, revoked or has expired." : "The credential cannot be shown.");
        return;
      }
      $("r-name").textContent = r.body.name || "";
      $("r-username").textContent = r.body.username || "";
      $("r-secret").textContent = r.body.secret;
      $("r-url").textContent = r.body.url || "";
      $("result").hidden = false;
    }).catch(function () { fail("The credential service could not be reached."); });
  }

  $("copy").addEventListener("click", function () {
    navigator.clipboard.writeText($("r-secret").textContent).then(function () {
      $("copy").textContent = "Copied";
    });
  });
  $("reveal-button").addEventListener("click", function () { reveal(token); token = ""; });
  $("paste-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var value = $("token").value.trim();
    $("token").value = "";
    if (value) { reveal(value); }
  });
  function showStart() {
    $("result").hidden = true;
    $("r-secret").textContent = "";
    $("error").hidden = true;
    $("ready").hidden = !token;
    $("paste-form").hidden = !!token;
  }
  // The same link opened again in this tab changes only the fragment: no reload, so read it here.
  window.addEventListener("hashchange", function () { takeFragment(); showStart(); });
  showStart();
})();
