"""One interview: the controller that owns the plan and the state, and calls the agents through llm's
metered, fail-over caller. Answers carry ids: sending the same answer id twice returns the same reply and
records the answer once (a reconnecting client cannot duplicate or lose an answer)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from pydantic_ai.messages import AgentStreamEvent, PartDeltaEvent, PartStartEvent, TextPart, TextPartDelta
from pydantic_ai.models import Model
from pydantic_ai.usage import UsageLimits

from grader.profile.model import RepoProfile
from grader.repo_index import RepoIndex
from interviewer.agent import (
    INTERVIEWER_INSTRUCTIONS,
    Directive,
    InterviewDeps,
    assessor_agent,
    interviewer_agent,
    render_turn_prompt,
)
from interviewer.assess import gate
from interviewer.claims import find_contradictions
from interviewer.errors import InterviewFinished
from interviewer.guard import fence, leaks
from interviewer.model import Assessment, Contradiction, InterviewPlan, Topic, Turn, VoiceMeta
from interviewer.signals import FOLLOW_UPS, follow_up_reason, is_silent, measure
from llm.errors import BudgetExceeded, NoModelAvailable
from llm.metered import MeteredCaller

CLOSING = "That is all my questions. Thank you for walking me through your project — your report is being prepared."
BUDGET_END = (
    "We have reached this interview's spending limit, so I have to stop here. Thank you — your report "
    "covers everything up to this point."
)
SILENT_END = "It sounds like this isn't a good moment. Let's stop here; you can start a new interview any time."
OUTAGE_END = "I can't reach the interviewing model right now, so I'll stop here. Your answers so far are saved."
WITHHELD = "I can't share how I'm set up. Let's get back to your project."
MAX_SILENT = 2

TokenSink = Callable[[str], None]


class SessionState(msgspec.Struct, forbid_unknown_fields=False):
    """Everything an interview has decided so far, saved after every answer: a session rebuilt from it (after a
    restart, or by another server process) continues exactly where this one stood — same topic, same follow-up
    count, the earlier answers' assessments kept for the report."""

    transcript: list[Turn] = msgspec.field(default_factory=list)
    replies: dict[str, str] = msgspec.field(default_factory=dict)
    assessments: list[Assessment] = msgspec.field(default_factory=list)
    contradictions: list[Contradiction] = msgspec.field(default_factory=list)
    injection_attempts: list[str] = msgspec.field(default_factory=list)
    ended: str = ""
    topic_index: int = 0
    follow_ups: int = 0
    silent: int = 0
    probed: list[str] = msgspec.field(default_factory=list)


@dataclass
class InterviewSession:
    plan: InterviewPlan
    profile: RepoProfile
    index: RepoIndex
    interviewer: MeteredCaller
    assessor: MeteredCaller
    payers: list[str]
    findings: list[str] = field(default_factory=list)
    max_follow_ups: int = 2
    """For a dimension whose rubric says nothing (the plan's `max_follow_ups` is the rubric's word)."""
    clock: Callable[[], float] = time.time
    transcript: list[Turn] = field(default_factory=list)
    assessments: list[Assessment] = field(default_factory=list)
    contradictions: list[Contradiction] = field(default_factory=list)
    injection_attempts: list[str] = field(default_factory=list)
    replies: dict[str, str] = field(default_factory=dict)
    ended: str = ""
    _topic_index: int = 0
    _follow_ups: int = 0
    _silent: int = 0
    _probed: set[str] = field(default_factory=set)
    _code: str | None = None

    def _code_text(self) -> str:
        if self._code is None:
            self._code = self.index.code_text()
        return self._code

    @property
    def finished(self) -> bool:
        return bool(self.ended)

    @property
    def topic(self) -> Topic | None:
        return self.plan.topics[self._topic_index] if self._topic_index < len(self.plan.topics) else None

    def state(self) -> SessionState:
        return SessionState(
            list(self.transcript),
            dict(self.replies),
            list(self.assessments),
            list(self.contradictions),
            list(self.injection_attempts),
            self.ended,
            self._topic_index,
            self._follow_ups,
            self._silent,
            sorted(self._probed),
        )

    def note_voice(self, answer_id: str, voice: VoiceMeta) -> None:
        """Attach how a spoken answer was heard (and its timings) to the answer's turn."""
        for index, turn in enumerate(self.transcript):
            if turn.role == "candidate" and turn.answer_id == answer_id:
                self.transcript[index] = msgspec.structs.replace(turn, voice=voice)

    def restore(self, state: SessionState) -> None:
        """Continue a saved interview exactly where it stood."""
        self.transcript, self.replies = list(state.transcript), dict(state.replies)
        self.assessments, self.contradictions = list(state.assessments), list(state.contradictions)
        self.injection_attempts, self.ended = list(state.injection_attempts), state.ended
        self._topic_index, self._follow_ups, self._silent = state.topic_index, state.follow_ups, state.silent
        self._probed = set(state.probed)

    async def start(self, on_token: TokenSink | None = None) -> str:
        if self.transcript:
            return self.transcript[0].text
        topic = self.topic
        if topic is None:
            return await self._end("completed", CLOSING, on_token)
        return await self._say(Directive("ask", topic.question, topic.reason), None, on_token)

    async def answer(self, answer_id: str, text: str, on_token: TokenSink | None = None) -> str:
        if answer_id in self.replies:
            return self.replies[answer_id]
        if self.finished:
            raise InterviewFinished(f"the interview has ended ({self.ended})")
        topic = self.topic
        self.transcript.append(Turn("candidate", text, self.clock(), topic.id if topic else None, answer_id))
        reply = await self._respond(answer_id, text, topic, on_token)
        self.replies[answer_id] = reply
        return reply

    async def _respond(self, answer_id: str, text: str, topic: Topic | None, on_token: TokenSink | None) -> str:
        if topic is None:
            return await self._end("completed", CLOSING, on_token)
        if is_silent(text):
            self._silent += 1
            if self._silent >= MAX_SILENT:
                return await self._end("candidate_silent", SILENT_END, on_token)
            return await self._say(
                Directive("follow_up", topic.question, probe="Take your time. " + topic.question), text, on_token
            )
        self._silent = 0
        signals = measure(text)
        if signals.injection:
            self.injection_attempts.append(text[:300])
        claimed = find_contradictions(
            text, self.profile, self._code_text()
        )  # every unsupported claim in this answer counts against it
        known = {item.explanation for item in self.contradictions}
        found = [item for item in claimed if item.explanation not in known]  # the report lists each once
        self.contradictions += found
        try:
            await self._assess(answer_id, topic, text, claimed)
            directive = self._next_directive(topic, text, found)
            if directive.kind == "close":
                return await self._end("completed", CLOSING, on_token)
            return await self._say(directive, text, on_token)
        except BudgetExceeded:
            return await self._end("budget", BUDGET_END, on_token)
        except NoModelAvailable:
            return await self._end("model_unavailable", OUTAGE_END, on_token)

    def _next_directive(self, topic: Topic, text: str, found: list[Contradiction]) -> Directive:
        fresh = [c for c in found if c.explanation not in self._probed]
        if fresh:
            self._probed.add(fresh[0].explanation)
            where = f"{fresh[0].path}:{fresh[0].line}" if fresh[0].line else fresh[0].path
            return Directive(
                "contradiction", topic.question, claim=fresh[0].claim, location=where, explanation=fresh[0].explanation
            )
        reason = follow_up_reason(measure(text))
        allowed = self.plan.max_follow_ups.get(topic.dimension, self.max_follow_ups)
        if reason and self._follow_ups < allowed and not measure(text).injection:
            self._follow_ups += 1
            probe = topic.probes[(self._follow_ups - 1) % len(topic.probes)] if topic.probes else ""
            return Directive("follow_up", topic.question, reason=reason, probe=FOLLOW_UPS.get(reason, probe))
        self._topic_index += 1
        self._follow_ups = 0
        following = self.topic
        if following is None:
            return Directive("close", CLOSING)
        kind = "redirect" if measure(text).injection else "ask"
        return Directive(kind, following.question, following.reason)  # type: ignore[arg-type]

    async def _assess(self, answer_id: str, topic: Topic, text: str, found: list[Contradiction]) -> None:
        prompt = f"Dimension: {topic.dimension}\nQuestion: {topic.question}\n" + fence(text, "candidate_answer")

        async def call(model: Model) -> Any:
            return await assessor_agent.run(
                prompt,
                model=model,
                usage_limits=UsageLimits(request_limit=3),
                model_settings={"max_tokens": self.assessor.max_output_tokens},
            )

        result = await self.assessor.run("interview_assessment", self.payers, len(prompt), call)
        proposal = result.output
        self.assessments.append(
            gate(
                answer_id,
                topic_id=topic.id,
                dimension=topic.dimension,
                answer=text,
                proposed=proposal.rating,
                proposed_quote=proposal.quote,
                contradictions=found,
            )
        )
        self.assessments.append(
            gate(
                answer_id,
                topic_id=topic.id,
                dimension="communication",
                answer=text,
                proposed=None,
                proposed_quote="",
                contradictions=[],
            )
        )

    async def _say(self, directive: Directive, answer: str | None, on_token: TokenSink | None) -> str:
        prompt = render_turn_prompt(directive, answer)
        deps = InterviewDeps(self.index, self.findings)
        streamed = _SentenceGate(on_token)

        async def call(model: Model) -> Any:
            streamed.reset()
            return await interviewer_agent.run(
                prompt,
                model=model,
                deps=deps,
                usage_limits=UsageLimits(request_limit=4),
                model_settings={"max_tokens": self.interviewer.max_output_tokens},
                event_stream_handler=streamed.handler if on_token else None,
            )

        result = await self.interviewer.run("interview_turn", self.payers, len(prompt), call)
        text = str(result.output).strip()
        if leaks(text, INTERVIEWER_INSTRUCTIONS):
            text = f"{WITHHELD} {directive.question}"
            streamed.replace(text)
        else:
            streamed.flush()
        topic = self.topic
        self.transcript.append(Turn("interviewer", text, self.clock(), topic.id if topic else None))
        return text

    async def _end(self, reason: str, message: str, on_token: TokenSink | None) -> str:
        self.ended = reason
        if on_token:
            on_token(message)
        self.transcript.append(Turn("interviewer", message, self.clock()))
        return message


class _SentenceGate:
    """Streams the interviewer's words a sentence at a time, holding each sentence back until it is known not
    to repeat the instructions; a leaking reply is replaced, never shown."""

    def __init__(self, sink: TokenSink | None) -> None:
        self.sink = sink
        self.buffer = ""
        self.sent = ""
        self.blocked = False

    def reset(self) -> None:
        self.buffer, self.sent, self.blocked = "", "", False

    async def handler(self, ctx: Any, events: Any) -> None:
        async for event in events:
            self._event(event)

    def _event(self, event: AgentStreamEvent) -> None:
        delta = ""
        if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
            delta = event.part.content
        elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
            delta = event.delta.content_delta
        if not delta or self.blocked:
            return
        self.buffer += delta
        while (match := re.search(r"[.!?]\s", self.buffer)) is not None:
            sentence, self.buffer = self.buffer[: match.end()], self.buffer[match.end() :]
            if leaks(self.sent + sentence, INTERVIEWER_INSTRUCTIONS):
                self.blocked = True
                return
            self._emit(sentence)

    def _emit(self, text: str) -> None:
        self.sent += text
        if self.sink:
            self.sink(text)

    def flush(self) -> None:
        if self.buffer and not self.blocked:
            self._emit(self.buffer)
        self.buffer = ""

    def replace(self, text: str) -> None:
        """After a withheld reply: say the safe text instead of whatever had not been shown."""
        self.blocked = True
        self.buffer = ""
        if self.sink:
            self.sink(("\n" if self.sent else "") + text)
