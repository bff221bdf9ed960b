// The approval queue page (SPEC §4): countdowns and SLA colours that tick, keyboard
// shortcuts, and selection kept across live re-fetches. Hints and the 10 s polling fallback
// come from console/live.js (it fires "queueChanged" on <body>; #queue re-fetches itself).
// No inline script: the Content-Security-Policy forbids it.
(function () {
  "use strict";

  const body = document.body;
  let skew = 0; // server clock minus this browser's clock, in ms
  let selectedId = null;
  const refetchAsked = {}; // approval id → when this page last asked about its expiry

  function cards() { return Array.from(document.querySelectorAll("#queue .card[data-approval]")); }

  function readServerTime() {
    const body = document.querySelector("#queue [data-server-now]");
    const serverNow = body && Date.parse(body.dataset.serverNow);
    if (serverNow) skew = serverNow - Date.now();
  }

  function now() { return Date.now() + skew; }

  function duration(ms) {
    let seconds = Math.max(0, Math.round(ms / 1000));
    const hours = Math.floor(seconds / 3600);
    seconds -= hours * 3600;
    const minutes = Math.floor(seconds / 60);
    seconds -= minutes * 60;
    const pad = function (n) { return String(n).padStart(2, "0"); };
    if (hours) return hours + "h " + pad(minutes) + "m";
    return minutes + ":" + pad(seconds);
  }

  function askRefetch(id) {
    const last = refetchAsked[id] || 0;
    if (Date.now() - last < 2000) return;
    refetchAsked[id] = Date.now();
    // The server is the truth: it no longer lists a past-due request.
    setTimeout(function () {
      if (window.htmx) htmx.trigger(body, "queueChanged", { kind: "expired", approval_id: id });
    }, 300);
  }

  function tick() {
    const t = now();
    cards().forEach(function (card) {
      const atRisk = Date.parse(card.dataset.slaAtRiskAt);
      const due = Date.parse(card.dataset.slaDueAt);
      if (card.dataset.expiresAt) {
        const left = Date.parse(card.dataset.expiresAt) - t;
        const countdown = card.querySelector("[data-countdown]");
        if (left <= 0) {
          if (!card.classList.contains("expired")) {
            card.classList.add("expired");
            card.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
          }
          if (countdown) countdown.textContent = "expired";
          askRefetch(card.dataset.approval);
          return;
        }
        if (countdown) countdown.textContent = "expires in " + duration(left);
      }
      if (!card.classList.contains("closed")) {
        const state = t >= due ? "breached" : t >= atRisk ? "at_risk" : "ok";
        card.classList.remove("sla-ok", "sla-at_risk", "sla-breached");
        card.classList.add("sla-" + state);
        const badge = card.querySelector("[data-sla]");
        if (badge) {
          badge.textContent = state === "breached" ? "SLA breached " + duration(t - due) + " ago"
            : state === "at_risk" ? "SLA at risk · " + duration(due - t) + " left"
            : "SLA " + duration(due - t) + " left";
        }
      }
    });
  }

  // --- selection and keyboard ---------------------------------------------------------
  function select(card, focus) {
    cards().forEach(function (c) { c.classList.remove("selected"); });
    if (!card) { selectedId = null; return; }
    card.classList.add("selected");
    selectedId = card.dataset.approval;
    if (focus) {
      card.focus({ preventScroll: true });
      card.scrollIntoView({ block: "nearest" });
    }
  }

  function typing(target) {
    return target && target.closest && target.closest("input, textarea, select, [contenteditable]");
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
    const modal = document.getElementById("modal");
    if (modal && modal.open) return;
    const list = cards();
    if (!list.length) return;
    const index = list.findIndex(function (c) { return c.dataset.approval === selectedId; });
    if (event.key === "j") {
      event.preventDefault();
      select(list[index < 0 ? 0 : Math.min(index + 1, list.length - 1)], true);
    } else if (event.key === "k") {
      event.preventDefault();
      select(list[index < 0 ? 0 : Math.max(index - 1, 0)], true);
    } else if (event.key === "a" || event.key === "r") {
      const card = list[index];
      if (!card) return;
      const control = card.querySelector(event.key === "a" ? "[data-key='approve']" : "[data-key='reject']");
      if (control && !control.disabled) {
        event.preventDefault();
        // A card swapped in a moment ago may not be wired by htmx yet (it does so on settle):
        // wire it now, or the click would fall back to a full page load.
        if (window.htmx) htmx.process(card);
        control.click();
      }
    }
  });

  document.addEventListener("click", function (event) {
    const card = event.target.closest && event.target.closest("#queue .card[data-approval]");
    if (card) select(card, false);
  });

  // A refusal (403: separation of duties) is shown where the reviewer acted, not dropped.
  body.addEventListener("htmx:beforeSwap", function (event) {
    const target = event.detail.target;
    if (event.detail.xhr.status === 403 && target &&
        (target.closest("#queue") || target.id === "modal-body")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // The outcome of a decision, kept above the cards for a few seconds.
  let noticeTimer = null;
  body.addEventListener("warden:notice", function (event) {
    const notice = document.getElementById("queue-notice");
    if (!notice || !event.detail || !event.detail.message) return;
    notice.textContent = event.detail.message;
    notice.className = "queue-notice " + (event.detail.level === "error" ? "error" : "ok");
    notice.hidden = false;
    if (noticeTimer) clearTimeout(noticeTimer);
    noticeTimer = setTimeout(function () { notice.hidden = true; }, 8000);
  });

  // What a reviewer is typing in a card (a comment) survives the live re-fetches of the
  // queue, which replace every card: a new request arriving must not wipe it, nor the focus.
  let typed = null;
  function fieldKey(input) {
    const card = input.closest(".card[data-approval]");
    return card ? card.dataset.approval + " " + input.name : null;
  }
  body.addEventListener("htmx:beforeSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "queue") return;
    typed = { values: {}, focused: null, start: null, end: null };
    document.querySelectorAll("#queue .card[data-approval] input[type=text]").forEach(function (input) {
      const key = fieldKey(input);
      if (key && input.value) typed.values[key] = input.value;
      if (key && input === document.activeElement) {
        typed.focused = key;
        typed.start = input.selectionStart;
        typed.end = input.selectionEnd;
      }
    });
  });

  function restoreTyped() {
    if (!typed) return;
    const saved = typed;
    typed = null;
    document.querySelectorAll("#queue .card[data-approval] input[type=text]").forEach(function (input) {
      const key = fieldKey(input);
      if (key && saved.values[key] !== undefined && !input.value) input.value = saved.values[key];
      if (key && key === saved.focused) {
        input.focus({ preventScroll: true });
        if (saved.start !== null) input.setSelectionRange(saved.start, saved.end);
      }
    });
  }

  body.addEventListener("htmx:afterSwap", function () {
    restoreTyped();
    readServerTime();
    if (selectedId) {
      const again = document.querySelector("#queue .card[data-approval='" + selectedId + "']");
      if (again) again.classList.add("selected");
    }
    tick();
  });

  readServerTime();
  tick();
  setInterval(tick, 1000);
})();
