// Live grading progress on a submission page: server-sent events from /api/submissions/{id}/events. Each
// `progress` event moves the bar and marks the stage; the final `status` event reloads the page with the report.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const panel = document.querySelector("[data-progress]");
  if (!panel || !window.EventSource) return;
  const bar = panel.querySelector("[data-progress-bar]");
  const label = panel.querySelector("[data-progress-label]");
  const stages = [...panel.querySelectorAll("[data-stage]")];
  const order = stages.map((item) => item.dataset.stage);
  const source = new EventSource(`/api/submissions/${panel.dataset.submission}/events`);

  function show(progress) {
    const index = order.indexOf(progress.stage);
    if (index >= 0) {
      stages.forEach((item, position) => {
        item.classList.toggle("finished", position < index);
        item.classList.toggle("current", position === index);
        if (position === index) item.setAttribute("aria-current", "step"); else item.removeAttribute("aria-current");
      });
      // Each stage is an equal share of the bar; within a stage, its own done/total.
      const within = progress.total ? Math.min(1, progress.done / progress.total) : 0;
      bar.value = Math.round(((index + within) / order.length) * 100);
      const count = progress.total ? ` (${progress.done} of ${progress.total})` : "";
      label.textContent = `Stage ${index + 1} of ${order.length}: ${progress.stage}${count}`;
    }
  }

  source.addEventListener("progress", (event) => show(JSON.parse(event.data)));
  source.addEventListener("status", (event) => {
    const status = JSON.parse(event.data);
    source.close();
    label.textContent = `Grading ${status.status}. Loading the report…`;
    bar.value = 100;
    window.location.reload();
  });
  source.onerror = () => { label.textContent = "Connection lost; trying again…"; };
});
