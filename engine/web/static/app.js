// 物业客服 staff pages: deadline countdowns and a self-refreshing inbox. No build step, no library.
(function () {
  "use strict";
  // Count down against the server's clock (the page says what "now" was when it was made).
  var offset = 0;
  function syncOffset() {
    var el = document.getElementById("refreshed") || document.body;
    if (el && el.dataset.now) { offset = Date.parse(el.dataset.now) - Date.now(); }
  }
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function text(ms) {
    var late = ms < 0, s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    var body = (d ? d + "天" : "") + (d || h ? h + "小时" : "") + two(m) + "分" + (d ? "" : two(s % 60) + "秒");
    return late ? "已超时 " + body : "剩余 " + body;
  }
  function tick() {
    var now = Date.now() + offset;
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var due = Date.parse(el.dataset.due);
      if (isNaN(due)) { return; }
      el.textContent = text(due - now);
      el.classList.toggle("late", due < now);
    });
  }
  function refresh() {
    var box = document.getElementById("inbox");
    if (!box || document.hidden) { return; }
    fetch(box.dataset.refresh, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected || !r.ok) { if (r.redirected) { location.reload(); } return null; }
        return r.text();
      })
      .then(function (html) {
        if (html === null || html === undefined) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.body;
        if (fresh) { box.innerHTML = fresh.innerHTML; syncOffset(); tick(); box.dataset.refreshedAt = String(Date.now()); }
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }
  document.addEventListener("DOMContentLoaded", function () {
    syncOffset();
    tick();
    setInterval(tick, 1000);
    var box = document.getElementById("inbox");
    if (box) { setInterval(refresh, 1000 * (parseInt(box.dataset.seconds, 10) || 20)); }
  });
  // A form sent once: its button is disabled after the click (a second click would only be
  // refused as a stale page, which would puzzle the person who sent the first).
  document.addEventListener("submit", function (e) {
    var button = e.target.querySelector("button[type=submit]");
    if (button) { setTimeout(function () { button.disabled = true; }, 0); }
  });
  window.sopRefreshInbox = refresh;
})();
