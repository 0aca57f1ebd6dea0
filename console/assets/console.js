// fedq officers' console: the policy editor's check as you type. Everything else works
// without script (plain forms, server-rendered pages).
"use strict";
(function () {
  const editor = document.getElementById("editor");
  if (!editor) return;
  const gutter = document.getElementById("gutter");
  const status = document.getElementById("check-status");
  const summary = document.getElementById("summary");
  const errors = document.getElementById("errors");
  const file = document.getElementById("file").value;
  let sent = 0;      // the newest check asked for
  let timer = null;

  function drawGutter(errorLines) {
    const lines = editor.value.split("\n").length;
    const frag = document.createDocumentFragment();
    for (let n = 1; n <= lines; n++) {
      const span = document.createElement("span");
      span.className = errorLines.has(n) ? "line error" : "line";
      span.dataset.line = String(n);
      span.textContent = String(n);
      frag.appendChild(span);
      frag.appendChild(document.createTextNode("\n"));
    }
    gutter.replaceChildren(frag);
    gutter.scrollTop = editor.scrollTop;
  }

  // Puts the caret at a 1-based line and column (columns count characters).
  function goTo(line, column) {
    const rows = editor.value.split("\n");
    let offset = 0;
    for (let i = 0; i < line - 1 && i < rows.length; i++) offset += rows[i].length + 1;
    const row = rows[line - 1] || "";
    offset += Math.min(Array.from(row).slice(0, column - 1).join("").length, row.length);
    editor.focus();
    editor.setSelectionRange(offset, offset);
    const lineHeight = 18;
    editor.scrollTop = Math.max(0, (line - 5) * lineHeight);
  }

  function drawErrors(list) {
    const lineWord = errors.dataset.lineWord;
    const columnWord = errors.dataset.columnWord;
    errors.replaceChildren();
    for (const e of list) {
      const li = document.createElement("li");
      li.className = "error";
      li.dataset.line = String(e.line);
      li.dataset.column = String(e.column);
      li.dataset.here = String(e.here);
      const a = document.createElement("a");
      a.href = "#editor";
      a.className = "goto";
      a.textContent = (e.here ? "" : e.file + " ") + lineWord + " " + e.line + ", " + columnWord + " " + e.column;
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = e.message;
      li.append(a, ": ", text);
      errors.appendChild(li);
    }
  }

  errors.addEventListener("click", function (ev) {
    const a = ev.target.closest("a.goto");
    if (!a) return;
    ev.preventDefault();
    const li = a.closest("li");
    if (li.dataset.here === "true") goTo(Number(li.dataset.line), Number(li.dataset.column));
  });

  async function check() {
    const mine = ++sent;
    let verdict;
    try {
      const r = await fetch(document.body.dataset.base + "/api/check", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ file: file, text: editor.value }),
        credentials: "same-origin",
      });
      if (!r.ok) throw new Error(await r.text());
      verdict = await r.json();
    } catch (err) {
      verdict = { ok: false, summary: "", errors: [{ file: "", line: 1, column: 1, message: String(err.message || err), here: false }] };
    }
    if (mine !== sent) return; // a newer check is on its way; this verdict is stale
    status.dataset.ok = String(verdict.ok);
    status.className = verdict.ok ? "ok" : "error";
    status.textContent = verdict.ok ? status.dataset.okText : status.dataset.badText;
    summary.textContent = verdict.summary;
    drawErrors(verdict.errors);
    drawGutter(new Set(verdict.errors.filter(function (e) { return e.here; }).map(function (e) { return e.line; })));
    status.dataset.checked = String(Number(status.dataset.checked) + 1);
  }

  editor.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });
  editor.addEventListener("scroll", function () { gutter.scrollTop = editor.scrollTop; });
  check();
})();
