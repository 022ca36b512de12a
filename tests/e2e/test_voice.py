"""A voice interview in Chromium with a fake microphone fed from a WAV that flite spoke: the answer arrives over
the interview socket as 16 kHz PCM from the AudioWorklet, is transcribed offline (pocketsphinx), the interviewer
replies, and the transcript holds the answer's words (word error rate at most 0.3)."""

from __future__ import annotations

import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from tests.e2e.conftest import CHROMIUM, Site, shot, sign_in
from tests.unit.test_voice import word_error_rate

pytestmark = pytest.mark.browser

SPOKEN = "we keep a cache of the answers for one hour and we check the cost of every request"


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """flite's speech with quiet before (the page needs a moment to start the worklet) and after (the turn ends)."""
    folder = tmp_path_factory.mktemp("mic")
    speech = folder / "speech.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", SPOKEN, "-o", str(speech)], check=True)
    with wave.open(str(speech), "rb") as source:
        rate, frames = source.getframerate(), source.readframes(source.getnframes())
    padded = folder / "microphone.wav"
    with wave.open(str(padded), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * rate * 3 + frames + b"\0\0" * rate * 4)
    return padded


@pytest.fixture(scope="module")
def browser(playwright: Playwright, microphone: Path) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-background-networking",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}%noloop",
            "--autoplay-policy=no-user-gesture-required",
        ],
    )
    yield launched
    launched.close()


def test_a_spoken_answer_is_transcribed_and_answered(page: Page, site: Site) -> None:
    candidate = site.identity("candidate")
    with site.api(candidate) as api, site.grader():
        submitted = api.post("/api/submissions", json={"target": "fixture:middling"}).json()
        assert site.wait_graded(candidate, submitted["id"])["status"] == "done"
        interview = api.post("/api/interviews", json={"submission_id": submitted["id"]}).json()

    page.context.grant_permissions(["microphone"], origin=site.base)
    sign_in(page, site, candidate)
    page.goto(f"{site.base}/interviews/{interview['id']}")
    chat = page.locator("[data-chat]")
    expect(chat.locator(".turn.interviewer")).to_have_count(1)
    expect(page.get_by_label("Your answer")).to_be_enabled()

    page.get_by_role("button", name="Use my microphone").click()
    expect(page.get_by_role("button", name="Stop using my microphone")).to_be_visible()
    expect(page.locator("[data-talk]")).to_be_hidden()  # hands-free: no push-to-talk button
    caption = page.locator("[data-caption]")
    expect(caption).to_contain_text("Listening", timeout=10_000)
    shot(page, "voice-listening")

    # Hands-free: a confident transcript is sent by itself; a doubtful one waits in the answer box to be checked.
    page.wait_for_function(
        "() => document.querySelector('[data-chat] .turn.candidate') || document.getElementById('answer').value",
        timeout=30_000,
    )
    if "misheard" in caption.inner_text():  # a doubtful transcript waits for the candidate to send it
        page.get_by_role("button", name="Send answer").click()
    else:  # a confident one goes by itself after a moment in which it could be corrected
        expect(caption).to_contain_text("Sending in")
    expect(chat.locator(".turn.interviewer")).to_have_count(2, timeout=30_000)
    heard = chat.locator(".turn.candidate .said").first.inner_text()
    assert word_error_rate(SPOKEN, heard) <= 0.3, heard
    shot(page, "voice-answered")

    with site.api(candidate) as api:
        transcript = api.get(f"/api/interviews/{interview['id']}").json()["transcript"]
    [spoken] = [turn for turn in transcript if turn["role"] == "candidate"]
    assert spoken["voice"]["confidence"] > 0 and "transcript" in spoken["voice"]["stages_ms"]

    # The transcript on the interview's report page says the answer was spoken and how well it was recognised.
    page.goto(f"{site.base}/interviews/{interview['id']}/report")
    expect(page.locator(".chat .turn.candidate .who-said")).to_contain_text("spoken, recognition confidence")
    page.go_back()
    page.get_by_role("button", name="Use my microphone").click()

    # The candidate can switch back to typing at any time.
    page.get_by_role("button", name="Stop using my microphone").click()
    expect(caption).to_have_text("Voice is off; type your answers.")
    expect(page.get_by_label("Your answer")).to_be_enabled()
