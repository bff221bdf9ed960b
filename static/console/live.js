// Warden console behaviour: live hints over a websocket (with polling fallback),
// confirmation dialogs loaded by htmx, and a few keyboard conveniences.
// No inline script is needed, so the Content-Security-Policy can forbid it.
(function () {
  "use strict";

  // --- live hints ---------------------------------------------------------------
  const body = document.body;
  const liveUrl = body.dataset.liveUrl;
  const indicator = document.getElementById("live-indicator");
  let socket = null;
  let pollTimer = null;
  let backoff = 1000;

  function setLive(online) {
    if (!indicator) return;
    indicator.textContent = online ? "● live" : "○ reconnecting… (polling every 10 s)";
    indicator.classList.toggle("offline", !online);
  }

  function broadcast(hint) {
    // Pages listen with hx-trigger="agentChanged from:body" / "queueChanged from:body".
    const name = hint.topic === "approval" ? "queueChanged" : "agentChanged";
    if (window.htmx) htmx.trigger(body, name, hint);
    body.dispatchEvent(new CustomEvent("warden:hint", { detail: hint }));
  }

  function startPolling() {
    if (pollTimer) return;
    pollTimer = setInterval(function () {
      broadcast({ topic: "agent", kind: "poll" });
      broadcast({ topic: "approval", kind: "poll" });
    }, 10000);
  }

  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }

  function connect() {
    if (!liveUrl || !("WebSocket" in window)) { startPolling(); return; }
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + liveUrl);
    socket.onopen = function () {
      backoff = 1000;
      stopPolling();
      setLive(true);
      // Re-sync after a reconnect: whatever happened while offline gets fetched.
      broadcast({ topic: "agent", kind: "resync" });
      broadcast({ topic: "approval", kind: "resync" });
    };
    socket.onmessage = function (event) {
      try { broadcast(JSON.parse(event.data)); } catch (e) { /* ignore malformed hints */ }
    };
    socket.onclose = function () {
      setLive(false);
      startPolling();
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }
  connect();

  // --- dialogs ------------------------------------------------------------------
  const modal = document.getElementById("modal");
  const modalBody = document.getElementById("modal-body");
  body.addEventListener("htmx:afterSwap", function (event) {
    if (modal && event.detail.target === modalBody && !modal.open) {
      modal.showModal();
      const first = modalBody.querySelector("textarea, input[type=text]");
      if (first) first.focus();
    }
  });
  body.addEventListener("warden:done", function () {
    if (modal && modal.open) setTimeout(function () { modal.close(); }, 900);
  });
  document.addEventListener("click", function (event) {
    const closer = event.target.closest("[data-close-dialog]");
    if (closer && modal) { event.preventDefault(); modal.close(); }
  });

  // Forms and buttons marked data-confirm ask before acting (destructive actions).
  document.addEventListener("submit", function (event) {
    const form = event.target;
    const message = form.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);
})();
