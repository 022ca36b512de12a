// The rubric editor: the YAML is checked as you type (POST /api/rubrics/validate, nothing saved); problems are
// listed with their line and marked in the gutter, and a problem's button moves the cursor to its line; a valid
// rubric is previewed as its criteria tree with weights, shares and each check's parameters. Saving makes the
// next version (POST /api/rubrics) and opens it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const root = document.querySelector("[data-rubric-editor]");
  if (!root) return;
  const source = root.querySelector("[data-source]");
  const gutter = root.querySelector("[data-gutter]");
  const status = root.querySelector("[data-validation]");
  const problemsList = root.querySelector("[data-problems]");
  const preview = root.querySelector("[data-preview]");
  const saveButton = root.querySelector("[data-save]");
  const saveErrors = root.querySelector("[data-save-errors]");
  let timer = null;
  let sequence = 0;
  let errorLines = new Set();

  function drawGutter() {
    const count = source.value.split("\n").length;
    gutter.textContent = "";
    for (let line = 1; line <= count; line += 1) {
      const mark = document.createElement("span");
      mark.textContent = String(line);
      mark.dataset.line = String(line);
      if (errorLines.has(line)) mark.className = "error-line";
      gutter.appendChild(mark);
      gutter.appendChild(document.createTextNode("\n"));
    }
    gutter.scrollTop = source.scrollTop;
  }

  function goToLine(line) {
    const lines = source.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((total, text) => total + text.length + 1, 0);
    source.focus();
    source.setSelectionRange(start, start + (lines[line - 1] || "").length);
    const lineHeight = parseFloat(getComputedStyle(source).lineHeight) || 20;
    source.scrollTop = Math.max(0, (line - 3) * lineHeight);
  }

  function showProblems(problems) {
    problemsList.textContent = "";
    errorLines = new Set(problems.filter((problem) => problem.line).map((problem) => problem.line));
    for (const problem of problems) {
      const item = document.createElement("li");
      item.className = "form-error";
      item.dataset.line = problem.line || "";
      const text = `${problem.path ? problem.path + ": " : ""}${problem.message}`;
      if (problem.line) {
        const jump = document.createElement("button");
        jump.type = "button";
        jump.className = "link";
        jump.textContent = `Line ${problem.line}`;
        jump.addEventListener("click", () => goToLine(problem.line));
        item.append(jump, document.createTextNode(` — ${text}`));
      } else {
        item.textContent = text;
      }
      problemsList.appendChild(item);
    }
    drawGutter();
  }

  function node(criterion) {
    const item = document.createElement("li");
    const head = document.createElement("div");
    const title = document.createElement("strong");
    title.textContent = criterion.title;
    const numbers = document.createElement("span");
    numbers.className = "share";
    numbers.textContent = ` weight ${criterion.weight} · ${(criterion.share * 100).toFixed(1)}% of the score`;
    const path = document.createElement("code");
    path.textContent = ` ${criterion.path}`;
    path.className = "meta";
    head.append(title, numbers, document.createElement("br"), path);
    item.appendChild(head);
    if (criterion.check) {
      const check = document.createElement("div");
      check.className = "meta";
      check.textContent = `${criterion.check.kind} check ${criterion.check.name}${criterion.check.summary ? " — " + criterion.check.summary : ""}`;
      item.appendChild(check);
      const entries = Object.entries(criterion.check.params || {});
      if (entries.length) {
        const list = document.createElement("dl");
        list.className = "params";
        for (const [key, value] of entries) {
          const term = document.createElement("dt");
          term.textContent = key;
          const detail = document.createElement("dd");
          detail.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
          list.append(term, detail);
        }
        item.appendChild(list);
      }
    }
    if (criterion.children && criterion.children.length) {
      const children = document.createElement("ul");
      criterion.children.forEach((child) => children.appendChild(node(child)));
      item.appendChild(children);
    }
    return item;
  }

  function showPreview(result) {
    preview.textContent = "";
    const heading = document.createElement("p");
    heading.textContent = `${result.title} — id ${result.id}, version ${result.version}`;
    const tree = document.createElement("ul");
    tree.className = "tree";
    tree.setAttribute("aria-label", "Criteria");
    result.tree.forEach((criterion) => tree.appendChild(node(criterion)));
    preview.append(heading, tree);
  }

  async function validate() {
    const mine = ++sequence;
    status.textContent = "Checking…";
    try {
      const result = await Viva.api("POST", "/api/rubrics/validate", { source: source.value });
      if (mine !== sequence) return;  // a newer edit is being checked
      if (result.valid) {
        showProblems([]);
        status.textContent = "Valid.";
        showPreview(result);
      } else {
        const count = result.problems.length;
        status.textContent = `${count} problem${count === 1 ? "" : "s"}.`;
        showProblems(result.problems);
      }
    } catch (error) {
      status.textContent = `Could not check: ${error.message}`;
    }
  }

  source.addEventListener("input", () => {
    drawGutter();
    window.clearTimeout(timer);
    timer = window.setTimeout(validate, 350);
  });
  source.addEventListener("scroll", () => { gutter.scrollTop = source.scrollTop; });
  source.addEventListener("keydown", (event) => {
    if (event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.altKey && source.dataset.tabs === "on") {
      event.preventDefault();
      source.setRangeText("  ", source.selectionStart, source.selectionEnd, "end");
    }
  });
  saveButton.addEventListener("click", async () => {
    saveErrors.textContent = "";
    saveButton.disabled = true;
    try {
      const saved = await Viva.api("POST", "/api/rubrics", { source: source.value });
      window.location.assign(`/rubrics/${saved.id}`);
    } catch (error) {
      Viva.showError(saveErrors, error);
      if (error.problems && error.problems.length) showProblems(error.problems);
      saveErrors.focus();
    } finally {
      saveButton.disabled = false;
    }
  });
  drawGutter();
  validate();
});
