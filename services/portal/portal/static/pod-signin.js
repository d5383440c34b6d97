// The ticket pod's sign-in pop-up, last page: hand the code to the pod that opened this window, then
// close. postMessage names the portal's own origin, so the code reaches only a portal page (the pod
// frame), never the PSA's page or any other opener.
(function () {
  "use strict";
  var holder = document.getElementById("pod-code");
  if (!holder) return;
  var code = holder.getAttribute("data-code");
  holder.removeAttribute("data-code");
  if (!code || !window.opener) return;
  window.opener.postMessage(code, window.location.origin);
  window.close();
})();
