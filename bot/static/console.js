// Keeps lists fresh without reloading the page: every element with data-refresh is re-fetched
// every data-every seconds (server-rendered, escaped HTML from this origin) and replaced when it
// changed. data-stick="bottom" keeps a transcript scrolled to its newest message.
"use strict";
(function () {
  function scroller(element) {
    return element.querySelector(".transcript") || element;
  }
  function stickToBottom(element) {
    var box = scroller(element);
    box.scrollTop = box.scrollHeight;
  }
  function refresh(element) {
    fetch(element.dataset.refresh, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.redirected || !response.ok) { return null; }
        return response.text();
      })
      .then(function (html) {
        if (html === null || html === element.dataset.last) { return; }
        var box = scroller(element);
        var atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
        element.innerHTML = html;
        element.dataset.last = html;
        if (element.dataset.stick === "bottom" && atBottom) { stickToBottom(element); }
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(function (element) {
      if (element.dataset.stick === "bottom") { stickToBottom(element); }
      var seconds = Math.max(parseFloat(element.dataset.every || "5"), 1);
      setInterval(function () { refresh(element); }, seconds * 1000);
    });
  });
})();
