// The portal's own script. No inline script anywhere (CSP script-src 'self'): behaviour is declared
// with data- attributes and wired here.
(function () {
  "use strict";

  // <button type="button" data-copy-target="#secret-value">Copy</button>
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var target = document.querySelector(button.getAttribute("data-copy-target"));
    if (!target || !navigator.clipboard) return;
    var text = target.value !== undefined && target.tagName !== "DIV" ? target.value : target.textContent;
    navigator.clipboard.writeText(text).then(function () {
      var status = document.getElementById("flash");
      if (status) status.textContent = "Copied to the clipboard.";
    });
  });

  // <form data-confirm="Closing this client revokes ..."> asks before submitting (htmx uses hx-confirm).
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // After a sign-out elsewhere, htmx's 401 answers carry HX-Redirect; htmx handles those itself.
})();

// --- technician pages: reveal refusals ---------------------------------------------------------
// A reveal form's refusals (409 already used, 422 no reason, 403 a release rule, 401 sign in again)
// are fragments for its result region, but htmx swaps only 2xx answers by default: a form or a
// target region marked data-swap-errors takes 4xx fragments too. htmx follows HX-Redirect first.
(function () {
  "use strict";
  function marked(elt) {
    return !!(elt && elt.closest && elt.closest("[data-swap-errors]"));
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    // The event fires on the target region; the form that sent the request is in requestConfig.
    var config = event.detail.requestConfig || {};
    if (!marked(event.detail.target) && !marked(config.elt)) return;
    var status = event.detail.xhr.status;
    if (status >= 400 && status < 500) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
