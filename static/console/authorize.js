// Authorize pages: line numbers beside the Rego editor (marking lines with compile
// errors), jumping to a problem's line, and showing only the fields of the chosen kind in
// the rule and guardrail forms. Plain script, no build step; pages work without it.
(function () {
  "use strict";

  function gutterFor(textarea) {
    return document.querySelector('[data-gutter-for="' + textarea.id + '"]');
  }

  function errorLines(gutter) {
    const raw = (gutter && gutter.dataset.errorLines) || "";
    return raw.split(",").filter(Boolean).map(Number);
  }

  function renderGutter(textarea) {
    const gutter = gutterFor(textarea);
    if (!gutter) return;
    const count = textarea.value.split("\n").length;
    const marked = new Set(errorLines(gutter));
    const parts = [];
    for (let n = 1; n <= count; n++) {
      parts.push('<span data-line="' + n + '"' + (marked.has(n) ? ' class="error-line"' : "") + ">" + n + "</span>");
    }
    gutter.innerHTML = parts.join("");
    gutter.scrollTop = textarea.scrollTop;
    const editor = textarea.closest(".code-editor");
    if (editor) editor.classList.toggle("has-errors", marked.size > 0);
  }

  function setupEditor(textarea) {
    if (textarea.dataset.ready) return;
    textarea.dataset.ready = "1";
    textarea.addEventListener("input", function () { renderGutter(textarea); });
    textarea.addEventListener("scroll", function () {
      const gutter = gutterFor(textarea);
      if (gutter) gutter.scrollTop = textarea.scrollTop;
    });
    renderGutter(textarea);
  }

  function goToLine(textarea, line) {
    const rows = textarea.value.split("\n");
    let start = 0;
    for (let i = 0; i < line - 1 && i < rows.length; i++) start += rows[i].length + 1;
    const end = start + (rows[line - 1] || "").length;
    textarea.focus();
    textarea.setSelectionRange(start, end);
    const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
    textarea.scrollTop = Math.max(0, (line - 3) * lineHeight);
  }

  // A swapped check or test result says which lines have problems: mark them.
  function applyResult(root) {
    const source = root.querySelector && root.querySelector("[data-error-lines-for]");
    const holder = source || (root.dataset && root.dataset.errorLinesFor ? root : null);
    if (!holder) return;
    const textarea = document.getElementById(holder.dataset.errorLinesFor);
    const gutter = textarea && gutterFor(textarea);
    if (!gutter) return;
    gutter.dataset.errorLines = holder.dataset.errorLines || "";
    renderGutter(textarea);
  }

  // Rule and guardrail forms: show the fields of the chosen kind only.
  function applyKind(form) {
    const select = form.querySelector("[data-kind-select]");
    if (!select) return;
    const kind = select.value;
    form.querySelectorAll("[data-kinds]").forEach(function (block) {
      const kinds = block.dataset.kinds.split(" ");
      block.hidden = kinds.indexOf(kind) === -1;
    });
  }

  function setup(root) {
    root.querySelectorAll("textarea[data-line-numbers]").forEach(setupEditor);
    root.querySelectorAll("form[data-kind-form]").forEach(function (form) {
      if (form.dataset.kindReady) return;
      form.dataset.kindReady = "1";
      const select = form.querySelector("[data-kind-select]");
      if (select) select.addEventListener("change", function () { applyKind(form); });
      applyKind(form);
    });
    applyResult(root);
  }

  document.addEventListener("click", function (event) {
    const link = event.target.closest("[data-goto-line]");
    if (!link) return;
    const textarea = document.getElementById(link.dataset.gotoFor);
    if (!textarea) return;
    event.preventDefault();
    goToLine(textarea, Number(link.dataset.gotoLine));
  });

  // Long runs (backtests replay up to 5,000 actions in the request): say so while waiting.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!form.matches("form[data-busy]") || event.defaultPrevented) return;
    const button = form.querySelector("button[type=submit]");
    const note = form.querySelector("[data-busy-note]");
    if (button) { button.disabled = true; button.textContent = form.dataset.busy; }
    if (note) note.hidden = false;
  });

  document.body.addEventListener("htmx:afterSwap", function (event) {
    setup(event.detail.target);
  });
  setup(document);
})();
