// Viva's pages talk to the JSON API from here. A form with data-api sends its fields as JSON (or, with
// data-multipart, as a file upload) with the session's CSRF token; errors appear in the form's role="alert" box
// with every problem the API listed; on success data-next says where to go ({id} and other fields of the
// answer are filled in) or data-reload reloads. Buttons with data-api do the same with a fixed data-body.
// No inline script anywhere: the Content-Security-Policy allows scripts from this origin only.
"use strict";

const Viva = (() => {
  function csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  async function api(method, url, body, multipart) {
    const headers = { "x-csrf-token": csrf(), accept: "application/json" };
    let payload;
    if (multipart) {
      payload = body;
    } else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!response.ok) {
      const error = new Error((data && data.error && data.error.message) || `The server answered ${response.status}.`);
      error.problems = (data && data.error && data.error.details && data.error.details.problems) || [];
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function fill(template, data) {
    return template.replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent(data && data[key] !== undefined ? data[key] : ""));
  }

  function showError(box, error) {
    if (!box) return;
    box.textContent = error.message;
    if (error.problems && error.problems.length) {
      const list = document.createElement("ul");
      for (const problem of error.problems) {
        const item = document.createElement("li");
        item.textContent = typeof problem === "string" ? problem : describeProblem(problem);
        list.appendChild(item);
      }
      box.appendChild(list);
    }
  }

  function describeProblem(problem) {
    if (problem.message) {
      const where = problem.line ? `line ${problem.line}: ` : "";
      return `${where}${problem.path ? problem.path + ": " : ""}${problem.message}`;
    }
    if (problem.msg || problem.message) return `${problem.key || ""} ${problem.msg || problem.message}`.trim();
    return JSON.stringify(problem);
  }

  function fieldsOf(form) {
    const body = {};
    for (const element of form.elements) {
      if (!element.name || element.disabled || element.dataset.skip !== undefined) continue;
      if (element.type === "checkbox") { body[element.name] = element.checked; continue; }
      if (element.type === "radio" && !element.checked) continue;
      let value = element.value;
      if (value === "" && element.dataset.optional !== undefined) continue;
      if (element.type === "number" || element.dataset.number !== undefined) value = Number(value);
      body[element.name] = value;
    }
    return body;
  }

  // Where to go back to after signing in, only if the browser reads it as a page of this site (the server
  // already refuses anything else; this is the second lock on the same door).
  function sameSite(path) {
    try {
      const target = new URL(path, window.location.origin);
      return target.origin === window.location.origin ? target.href : null;
    } catch (_) {
      return null;
    }
  }

  function where(next, data) {
    if (next === "@home") return data && data.user && data.user.role === "candidate" ? "/home" : "/manage";
    return fill(next, data);
  }

  async function run(element, method, url, body, multipart, box) {
    const next = element.dataset.next;
    const done = element.querySelector ? element.querySelector("[data-done]") : null;
    const buttons = element.tagName === "FORM" ? element.querySelectorAll("button") : [element];
    buttons.forEach((button) => { button.disabled = true; });
    if (box) box.textContent = "";
    try {
      const data = await api(method, url, body, multipart);
      const override = element.dataset.nextField && element.querySelector(`[name="${element.dataset.nextField}"]`);
      const back = override && override.value && sameSite(override.value);
      if (back) { window.location.assign(back); return; }
      if (next) { window.location.assign(where(next, data)); return; }
      if (element.dataset.reload !== undefined) { window.location.reload(); return; }
      if (done) done.textContent = element.dataset.doneText || "Done.";
      element.dispatchEvent(new CustomEvent("viva:done", { detail: data, bubbles: true }));
    } catch (error) {
      showError(box, error);
      if (box) box.focus();
    } finally {
      buttons.forEach((button) => { button.disabled = false; });
    }
  }

  function boxFor(element) {
    const id = element.dataset.errors;
    if (id) return document.getElementById(id);
    return element.querySelector ? element.querySelector(".form-error") : null;
  }

  function wire(root) {
    root.querySelectorAll("form[data-api]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const required = form.querySelector("[data-confirm]");
        const box = boxFor(form);
        if (required && !required.checked) {
          showError(box, new Error(required.dataset.confirm));
          return;
        }
        const multipart = form.dataset.multipart !== undefined;
        const body = multipart ? new FormData(form) : fieldsOf(form);
        if (multipart) {
          for (const [key, value] of [...body.entries()]) if (value === "") body.delete(key);
        }
        run(form, form.dataset.method || "POST", fill(form.dataset.api, fieldsOf(form)), body, multipart, box);
      });
    });
    root.querySelectorAll("button[data-api]").forEach((button) => {
      button.addEventListener("click", () => {
        const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
        run(button, button.dataset.method || "POST", button.dataset.api, body, false, boxFor(button));
      });
    });
    root.querySelectorAll("input[type=file][data-fill]").forEach((input) => {
      // A CSV chosen here is read into the text box it names; the box's text is what is sent.
      input.addEventListener("change", async () => {
        const target = document.getElementById(input.dataset.fill);
        if (target && input.files && input.files[0]) target.value = await input.files[0].text();
      });
    });
    root.querySelectorAll("button[data-copy]").forEach((button) => {
      button.addEventListener("click", async () => {
        const source = document.getElementById(button.dataset.copy);
        try {
          await navigator.clipboard.writeText(source.value || source.textContent);
          button.textContent = "Copied";
        } catch (_) {
          source.select && source.select();
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => wire(document));
  return { api, csrf, showError, describeProblem };
})();
