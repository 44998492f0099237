// Patchway console: refresh the live parts of a page by short polling.
// Each element with data-live="SECONDS" is replaced by the page's
// fragment of the same name (data-fragment, default "live"), fetched
// with the page's own query. A failed fetch shows the offline banner and
// keeps trying; the first answer after it hides the banner. A page
// with data-retry (the server was down) reloads itself.
(function () {
  "use strict";
  var offline = document.getElementById("offline");
  function setOffline(down) { if (offline) { offline.hidden = !down; } }

  function poll(el) {
    var seconds = Math.max(1, parseInt(el.getAttribute("data-live"), 10) || 5);
    var name = el.getAttribute("data-fragment") || "live";
    function tick() {
      var q = new URLSearchParams(window.location.search);
      q.set("fragment", name);
      fetch(window.location.pathname + "?" + q.toString(), { credentials: "same-origin", cache: "no-store" })
        .then(function (resp) {
          if (!resp.ok) { throw new Error(resp.status); }
          return resp.text();
        })
        .then(function (html) {
          // The server rendered it with html/template: everything in it
          // is escaped.
          el.innerHTML = html;
          setOffline(false);
        })
        .catch(function () { setOffline(true); })
        .finally(function () { window.setTimeout(tick, seconds * 1000); });
    }
    window.setTimeout(tick, seconds * 1000);
  }

  document.querySelectorAll("[data-live]").forEach(poll);
  var retry = document.querySelector("[data-retry]");
  if (retry) {
    var seconds = Math.max(1, parseInt(retry.getAttribute("data-retry"), 10) || 5);
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
})();
