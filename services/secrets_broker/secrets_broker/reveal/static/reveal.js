// The reveal code arrives in the URL fragment, which browsers never send to a server or in a Referer.
// It is removed from the address bar at once, so a reload (or the history) shows nothing.
(function () {
  "use strict";
  var code = "";
  var $ = function (id) { return document.getElementById(id); };

  function takeFragment() {
    if (window.location.hash.length > 1) {
      code = decodeURIComponent(window.location.hash.slice(1));
      history.replaceState(null, "", window.location.pathname);
    }
  }
  takeFragment();

  // `retry`: the code is still good (a bad paste, a limit, an outage), so offer the paste form again;
  // opening the mailed link again works too.
  function fail(message, retry) {
    $("error").textContent = message;
    $("error").hidden = false;
    $("paste-form").hidden = !retry;
  }

  // A pasted value may be the whole link: only what follows "#" is the code.
  function codeOf(value) {
    var at = value.lastIndexOf("#");
    return (at >= 0 ? value.slice(at + 1) : value).trim();
  }

  function reveal(value) {
    // An explicit click: mail scanners that prefetch links must not consume the single use.
    $("ready").hidden = true;
    $("paste-form").hidden = true;
    fetch("/v1/reveal", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code: value }),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer"
    }).then(function (response) {
      return response.json().then(function (body) { return { status: response.status, body: body }; });
    }).then(function (r) {
      if (r.status !== 200) {
        if (r.status === 410) {
          fail("This link was already used, has expired or was withdrawn.", false);
        } else if (r.status === 429) {
          fail("Too many attempts. Wait a minute, then try again.", true);
        } else if (r.status === 422) {
          fail("That is not a reveal code. Copy the whole link from your e-mail.", true);
        } else {
          fail("The credential cannot be shown right now. Try again in a few minutes.", true);
        }
        return;
      }
      $("r-name").textContent = r.body.name || "";
      $("r-username").textContent = r.body.username || "";
      $("r-secret").textContent = r.body.secret;
      $("r-url").textContent = r.body.url || "";
      $("result").hidden = false;
    }).catch(function () { fail("The credential service could not be reached.", true); });
  }

  $("copy").addEventListener("click", function () {
    navigator.clipboard.writeText($("r-secret").textContent).then(function () {
      $("copy").textContent = "Copied";
    });
  });
  $("reveal-button").addEventListener("click", function () { reveal(code); code = ""; });
  $("paste-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var value = codeOf($("code").value);
    $("code").value = "";
    if (value) { reveal(value); }
  });
  function showStart() {
    $("result").hidden = true;
    $("r-secret").textContent = "";
    $("error").hidden = true;
    $("ready").hidden = !code;
    $("paste-form").hidden = !!code;
  }
  // The same link opened again in this tab changes only the fragment: no reload, so read it here.
  window.addEventListener("hashchange", function () { takeFragment(); showStart(); });
  showStart();
})();
