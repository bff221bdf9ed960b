// Session replay (SPEC §7): play, pause, step and 0.5×–2× over the server-rendered steps.
// Without JavaScript every step is simply listed; with it the list becomes a player that
// reveals the session one event at a time. No inline script, so the strict CSP holds.
(function () {
  "use strict";
  const player = document.getElementById("player");
  const list = document.getElementById("replay-steps");
  if (!player || !list) return;

  const steps = Array.from(list.querySelectorAll(".step"));
  const count = steps.length;
  const marks = Array.from(player.querySelectorAll("[data-jump]"));
  const playButton = player.querySelector('[data-act="play"]');
  const speed = player.querySelector('[data-act="speed"]');
  const seek = player.querySelector('[data-act="seek"]');
  const position = player.querySelector('[data-testid="replay-position"]');
  const BASE_MS = 1200; // one step per 1.2 s at 1×
  let current = 1;
  let timer = null;

  function show(n, scroll) {
    current = Math.max(1, Math.min(count, n));
    steps.forEach(function (step, index) {
      step.classList.toggle("future", index + 1 > current);
      step.classList.toggle("current", index + 1 === current);
    });
    marks.forEach(function (mark) {
      const at = Number(mark.dataset.jump);
      mark.classList.toggle("current", at === current);
      mark.classList.toggle("future", at > current);
    });
    seek.value = String(current);
    position.textContent = current + " / " + count;
    if (scroll) steps[current - 1].scrollIntoView({ block: "nearest", behavior: "smooth" });
    if (current === count) pause();
  }

  function interval() {
    return BASE_MS / Number(speed.value || "1");
  }

  function tick() {
    if (current >= count) { pause(); return; }
    show(current + 1, true);
  }

  function play() {
    if (current >= count) show(1, true);
    pause();
    timer = setInterval(tick, interval());
    playButton.textContent = "❚❚ Pause";
    playButton.setAttribute("aria-pressed", "true");
    player.classList.add("playing");
  }

  function pause() {
    if (timer) clearInterval(timer);
    timer = null;
    playButton.textContent = "▶ Play";
    playButton.setAttribute("aria-pressed", "false");
    player.classList.remove("playing");
  }

  player.addEventListener("click", function (event) {
    const jump = event.target.closest("[data-jump]");
    if (jump) { event.preventDefault(); pause(); show(Number(jump.dataset.jump), true); return; }
    const button = event.target.closest("button[data-act]");
    if (!button) return;
    const act = button.dataset.act;
    if (act === "play") { timer ? pause() : play(); }
    else if (act === "step") { pause(); show(current + 1, true); }
    else if (act === "back") { pause(); show(current - 1, true); }
    else if (act === "first") { pause(); show(1, true); }
    else if (act === "last") { pause(); show(count, true); }
  });
  speed.addEventListener("change", function () { if (timer) play(); });
  seek.addEventListener("input", function () { pause(); show(Number(seek.value), true); });
  document.addEventListener("keydown", function (event) {
    if (event.target.closest("input, select, textarea")) return;
    if (event.key === " ") { event.preventDefault(); timer ? pause() : play(); }
    else if (event.key === "ArrowRight") { pause(); show(current + 1, true); }
    else if (event.key === "ArrowLeft") { pause(); show(current - 1, true); }
    else if (event.key === "Home") { pause(); show(1, true); }
    else if (event.key === "End") { pause(); show(count, true); }
  });

  // A link to #step-N opens the player there; otherwise it starts at the first step.
  const wanted = /^#step-(\d+)$/.exec(location.hash);
  document.body.classList.add("js-replay");
  show(wanted ? Number(wanted[1]) : 1, Boolean(wanted));
})();
