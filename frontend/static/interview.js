// The text interview over the interview WebSocket. Every answer gets an id before it is sent and is kept in
// localStorage until its reply arrives: after a reload or a dropped connection it is sent again with the same
// id, and the server answers it once (it never records the same id twice). The interviewer's words stream in as
// they are generated.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const section = document.querySelector("[data-interview]");
  if (!section) return;
  const id = section.dataset.interview;
  const chat = section.querySelector("[data-chat]");
  const state = section.querySelector("[data-state]");
  const errors = section.querySelector("[data-errors]");
  const form = section.querySelector("[data-composer]");
  const input = form.querySelector("textarea");
  const send = form.querySelector("button");
  const finished = section.querySelector("[data-finished]");
  const pendingKey = `viva-interview-${id}-pending`;
  let socket = null;
  let streaming = null;
  let ended = false;
  let retries = 0;

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  function bubble(role, text, extra) {
    const turn = document.createElement("div");
    turn.className = `turn ${role}${extra ? " " + extra : ""}`;
    const who = document.createElement("span");
    who.className = "who-said";
    who.textContent = role === "interviewer" ? "Interviewer" : "You";
    const body = document.createElement("span");
    body.className = "said";
    body.textContent = text;
    turn.append(who, body);
    chat.appendChild(turn);
    turn.scrollIntoView({ block: "nearest" });
    return turn;
  }

  function pending() {
    try { return JSON.parse(localStorage.getItem(pendingKey) || "null"); } catch (_) { return null; }
  }

  function setReady(ready) {
    input.disabled = !ready || ended;
    send.disabled = !ready || ended;
    if (ready && !ended) input.focus();
  }

  function finish() {
    ended = true;
    setReady(false);
    finished.hidden = false;
    state.textContent = "The interview is over.";
  }

  function interviewerText(text) {
    if (streaming) {
      streaming.querySelector(".said").textContent = text;
      streaming.classList.remove("pending");
      streaming = null;
    } else {
      bubble("interviewer", text);
    }
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${window.location.host}/api/interviews/${id}/ws`);
    state.textContent = "Connecting…";
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      section.dispatchEvent(new CustomEvent("viva:message", { detail: message }));
      if (message.type === "hello") {
        retries = 0;
        chat.textContent = "";
        for (const turn of message.transcript) bubble(turn.role, turn.text);
        let waiting = pending();
        if (message.finished) { finish(); localStorage.removeItem(pendingKey); return; }
        if (waiting) {
          // Already answered before the page went away: the reply is in the transcript, nothing to resend.
          const at = message.transcript.findIndex((turn) => turn.answer_id === waiting.id);
          if (at >= 0 && at < message.transcript.length - 1) { localStorage.removeItem(pendingKey); waiting = null; }
        }
        if (waiting) {
          if (!message.acknowledged.includes(waiting.id)) bubble("candidate", waiting.text, "pending");
          socket.send(JSON.stringify({ type: "answer", id: waiting.id, text: waiting.text }));
          state.textContent = "Sending your last answer again…";
        } else if (message.transcript.length) {
          state.textContent = "Connected.";
          setReady(true);
        } else {
          state.textContent = "The interviewer is preparing the first question…";
        }
      } else if (message.type === "token") {
        if (!streaming) streaming = bubble("interviewer", "", "pending");
        streaming.querySelector(".said").textContent += message.text;
      } else if (message.type === "question") {
        interviewerText(message.text);
        state.textContent = "Your turn.";
        setReady(true);
      } else if (message.type === "ack") {
        const waiting = pending();
        if (waiting && waiting.id === message.id) {
          chat.querySelectorAll(".turn.candidate.pending").forEach((turn) => turn.classList.remove("pending"));
        }
        state.textContent = "Answer received. The interviewer is replying…";
      } else if (message.type === "reply") {
        interviewerText(message.text);
        localStorage.removeItem(pendingKey);
        state.textContent = "Your turn.";
        setReady(true);
      } else if (message.type === "end") {
        localStorage.removeItem(pendingKey);
        finish();
      } else if (message.type === "error") {
        errors.textContent = message.message;
        setReady(true);
      }
    };
    socket.onopen = () => section.dispatchEvent(new CustomEvent("viva:open"));
    socket.onclose = (event) => {
      setReady(false);
      if (ended) return;
      if (event.code >= 4400 && event.code < 4500) {
        errors.textContent = event.reason || "The interview cannot continue here.";
        state.textContent = "Disconnected.";
        return;
      }
      retries += 1;
      const wait = Math.min(10000, 500 * 2 ** Math.min(retries, 5));
      state.textContent = `Connection lost; reconnecting in ${Math.round(wait / 1000)} s…`;
      window.setTimeout(connect, wait);
    };
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
    const answer = { id: form.dataset.voiceId || newId(), text };  // a spoken answer keeps the id it was heard with
    delete form.dataset.voiceId;
    localStorage.setItem(pendingKey, JSON.stringify(answer));  // kept until its reply arrives
    errors.textContent = "";
    bubble("candidate", text, "pending");
    input.value = "";
    setReady(false);
    state.textContent = "Sending…";
    socket.send(JSON.stringify({ type: "answer", id: answer.id, text: answer.text }));
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  // The voice panel (voice.js) talks over the same socket.
  section.vivaSend = (message) => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(message instanceof ArrayBuffer ? message : JSON.stringify(message));
    return true;
  };
  section.vivaAnswer = (answerId, text) => {
    form.dataset.voiceId = answerId;
    input.value = text;
    form.requestSubmit();
  };
  connect();
});
