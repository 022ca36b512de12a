// The voice panel of the interview page. The microphone's audio goes to the server as 16 kHz PCM (pcm-worklet.js)
// over the interview socket; the server finds the end of each turn and transcribes it. A confident transcript is
// sent at once when hands-free; otherwise it waits in the answer box for the candidate to check or correct it.
// The interviewer's reply is spoken sentence by sentence — by the browser, or from audio the server sends — and
// the candidate speaking stops it (barge-in). Everything works with the keyboard: Space holds push-to-talk, and
// the answer box is always there to switch to text.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const section = document.querySelector("[data-interview]");
  const panel = document.querySelector("[data-voice]");
  if (!section || !panel) return;
  const toggle = panel.querySelector("[data-voice-toggle]");
  const talk = panel.querySelector("[data-talk]");
  const meter = panel.querySelector("[data-level]");
  const caption = panel.querySelector("[data-caption]");
  const errors = panel.querySelector("[data-voice-errors]");
  const modes = [...panel.querySelectorAll('input[name="voice-mode"]')];
  const record = panel.querySelector("[data-record]");
  const voiceOn = () => ({ type: "voice", on: true, mode: mode(), record: record.checked });
  let on = false;
  let context = null;
  let stream = null;
  let node = null;
  let browserSpeaks = true;
  let lowMark = 0.6;
  let replyFor = null;       // the spoken answer whose reply is being spoken
  let firstToken = null;     // when the reply's first words arrived
  let reported = false;
  let playing = [];          // server audio sources still playing
  let playhead = 0;

  const GRACE_S = 2;
  const mode = () => (modes.find((radio) => radio.checked) || {}).value || "hands_free";

  async function start() {
    errors.textContent = "";
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    } catch (error) {
      errors.textContent = `The microphone is not available (${error.name}). Allow it in the browser, or keep typing.`;
      return;
    }
    context = new AudioContext();
    await context.audioWorklet.addModule("/static/pcm-worklet.js");
    const source = context.createMediaStreamSource(stream);
    node = new AudioWorkletNode(context, "pcm-sender");
    node.port.onmessage = (event) => { if (on) section.vivaSend(event.data); };
    source.connect(node);
    on = true;
    toggle.setAttribute("aria-pressed", "true");
    toggle.textContent = "Stop using my microphone";
    section.vivaSend(voiceOn());
    talk.hidden = mode() !== "push_to_talk";
  }

  function stop() {
    on = false;
    section.vivaSend({ type: "voice", on: false });
    if (stream) stream.getTracks().forEach((track) => track.stop());
    if (context) context.close();
    stream = context = node = null;
    toggle.setAttribute("aria-pressed", "false");
    toggle.textContent = "Use my microphone";
    talk.hidden = true;
    meter.value = meter.min;
    caption.textContent = "Voice is off; type your answers.";
    silence();
  }

  function silence() {
    if (window.speechSynthesis) window.speechSynthesis.cancel();
    playing.forEach((player) => { try { player.stop(); } catch (_) { /* already ended */ } });
    playing = [];
  }

  function speakInBrowser(text) {
    if (!window.speechSynthesis || !text.trim()) return;
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.onstart = () => reportFirstAudio();
    window.speechSynthesis.speak(utterance);
  }

  function reportFirstAudio() {
    if (reported || !replyFor || firstToken === null) return;
    reported = true;
    section.vivaSend({ type: "first_audio", id: replyFor, after_first_token_ms: Math.round(performance.now() - firstToken) });
  }

  function playServerAudio(message) {
    if (!context) return;
    const bytes = Uint8Array.from(atob(message.pcm), (c) => c.charCodeAt(0));
    const samples = new Int16Array(bytes.buffer, 0, Math.floor(bytes.length / 2));
    const buffer = context.createBuffer(1, samples.length, message.sample_rate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i += 1) channel[i] = samples[i] / 32768;
    const player = context.createBufferSource();
    player.buffer = buffer;
    player.connect(context.destination);
    playhead = Math.max(playhead, context.currentTime);
    player.start(playhead);
    playhead += buffer.duration;
    player.onended = () => { playing = playing.filter((p) => p !== player); };
    playing.push(player);
  }

  section.addEventListener("viva:open", () => { if (on) section.vivaSend(voiceOn()); });
  section.addEventListener("viva:message", (event) => {
    const message = event.detail;
    if (!on) return;
    if (message.type === "voice_ready") {
      browserSpeaks = message.browser_speaks;
      lowMark = message.low_confidence;
      caption.textContent = mode() === "push_to_talk" ? "Hold the button (or Space) while you speak." : "Listening — speak when you are ready.";
      if (message.problems.length) errors.textContent = message.problems.join(" ");
    } else if (message.type === "voice_unavailable") {
      errors.textContent = `Voice is not available here: ${message.problems.join(" ")} Please type your answers.`;
      stop();
    } else if (message.type === "level") {
      meter.value = Math.max(meter.min, message.dbfs);
    } else if (message.type === "speech") {
      if (message.state === "start") {
        if (playing.length || (window.speechSynthesis && window.speechSynthesis.speaking)) {
          silence();
          section.vivaSend({ type: "barge_in" });
        }
        caption.textContent = "Listening…";
      } else if (message.state === "noise") {
        caption.textContent = "That sounded like background noise; speak when you are ready.";
      } else if (message.state === "nothing") {
        caption.textContent = message.message;
      }
    } else if (message.type === "partial") {
      caption.textContent = message.text;
    } else if (message.type === "transcript") {
      caption.textContent = message.text;
      replyFor = message.id;
      firstToken = null;
      reported = false;
      if (mode() === "hands_free" && !message.low) {
        // Confident: it goes by itself in a moment, unless the candidate starts correcting it.
        const box = document.getElementById("answer");
        box.value = message.text;
        box.disabled = false;
        caption.textContent = `Sending in ${GRACE_S} seconds — edit the answer box to change it first.`;
        const timer = window.setTimeout(() => section.vivaAnswer(message.id, box.value), GRACE_S * 1000);
        box.addEventListener("input", () => {
          window.clearTimeout(timer);
          document.querySelector("[data-composer]").dataset.voiceId = message.id;
          caption.textContent = "Correct the answer, then send it.";
        }, { once: true });
      } else {
        const box = document.getElementById("answer");
        box.value = message.text;
        document.querySelector("[data-composer]").dataset.voiceId = message.id;
        box.disabled = false;
        box.focus();
        caption.textContent = message.low
          ? `We may have misheard (confidence ${message.confidence.toFixed(2)}): check the answer box, correct it if needed, and send.`
          : "Check the answer box and send.";
      }
    } else if (message.type === "token") {
      if (firstToken === null) firstToken = performance.now();
      if (browserSpeaks) speakInBrowser(message.text);
    } else if (message.type === "audio") {
      playServerAudio(message);
      reportFirstAudio();
    }
  });

  toggle.addEventListener("click", () => (on ? stop() : start()));
  record.addEventListener("change", () => { if (on) section.vivaSend(voiceOn()); });
  modes.forEach((radio) => radio.addEventListener("change", () => {
    talk.hidden = !on || mode() !== "push_to_talk";
    if (on) section.vivaSend(voiceOn());
    if (on) caption.textContent = mode() === "push_to_talk" ? "Hold the button (or Space) while you speak." : "Listening — speak when you are ready.";
  }));
  const press = () => { if (on) { silence(); section.vivaSend({ type: "talk", state: "start" }); talk.setAttribute("aria-pressed", "true"); } };
  const release = () => { if (on) { section.vivaSend({ type: "talk", state: "stop" }); talk.setAttribute("aria-pressed", "false"); } };
  talk.addEventListener("pointerdown", press);
  talk.addEventListener("pointerup", release);
  talk.addEventListener("keydown", (event) => { if (event.key === " " && !event.repeat) { event.preventDefault(); press(); } });
  talk.addEventListener("keyup", (event) => { if (event.key === " ") { event.preventDefault(); release(); } });
});
