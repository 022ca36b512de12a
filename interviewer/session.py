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
    DirectiveKind,
    InterviewDeps,
    assessor_agent,
    interviewer_agent,
    render_turn_prompt,
)
from interviewer.assess import gate
from interviewer.belief import OFF_QUESTION_WEIGHT, Belief, belief_of
from interviewer.claims import find_contradictions
from interviewer.errors import InterviewFinished
from interviewer.guard import fence, leaks
from interviewer.model import Assessment, Contradiction, InterviewPlan, Topic, Turn, VoiceMeta
from interviewer.relevance import off_question
from interviewer.signals import FOLLOW_UPS, follow_up_reason, is_silent, measure
from interviewer.steer import Move, askable, next_move, settle_state
from llm.budget import CallRecord
from llm.errors import BudgetExceeded, NoModelAvailable
from llm.metered import MeteredCaller

CLOSING = "That is all my questions. Thank you for walking me through your project — your report is being prepared."
BUDGET_END = (
    "We have reached this interview's spending limit, so I have to stop here. Thank you — your report "
    "covers everything up to this point."
)
SILENT_END = "It sounds like this isn't a good moment. Let's stop here; you can start a new interview any time."
OUTAGE_END = "I can't reach the interviewing model right now, so I'll stop here. Your answers so far are saved."
TIME_END = "We are at the end of our time, so I'll stop here. Thank you — your report covers everything so far."
WITHHELD = "I can't share how I'm set up. Let's get back to your project."
MAX_SILENT = 2
CONTENT_GAPS = frozenset({"no_costs", "no_numbers", "no_failure_mode", "hedged"})
"""Shortcomings of what an answer says (not of its length or aim): a question's own expected follow-ups fit them."""
MAX_QUESTIONS = 30
"""A backstop: the stop rule ends a real interview long before (every dimension settles within its follow-ups)."""

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
    current: str = ""
    """The id of the topic being answered (topic_index is its place in the plan)."""
    asked: dict[str, int] = msgspec.field(default_factory=dict)
    """Questions asked per dimension, follow-ups included: what `max_follow_ups` is spent against."""
    used: list[str] = msgspec.field(default_factory=list)
    started_at: float | None = None
    calls: list[CallRecord] = msgspec.field(default_factory=list)
    """The interview's model calls so far: its cost in the report, whichever processes made them."""


@dataclass
class InterviewSession:
    plan: InterviewPlan
    profile: RepoProfile | None
    """None in a role interview (no repository): then no claim is checked against code."""
    index: RepoIndex | None
    interviewer: MeteredCaller
    assessor: MeteredCaller
    payers: list[str]
    findings: list[str] = field(default_factory=list)
    clock: Callable[[], float] = time.time
    time_limit_s: float | None = None
    """The interview ends at its first answer after this many seconds from its first question."""
    max_questions: int = MAX_QUESTIONS
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
    _current: str = ""
    _asked: dict[str, int] = field(default_factory=dict)
    _used: list[str] = field(default_factory=list)
    _started_at: float | None = None
    _code: str | None = None

    def _code_text(self) -> str:
        if self._code is None:
            self._code = self.index.code_text() if self.index is not None else ""
        return self._code

    @property
    def finished(self) -> bool:
        return bool(self.ended)

    @property
    def topic(self) -> Topic | None:
        """The topic the candidate is answering."""
        return next((topic for topic in self.plan.topics if topic.id == self._current), None)

    def beliefs(self) -> dict[str, Belief]:
        """Each dimension's belief, from every assessment so far (derived, so a restored session agrees)."""
        scores: dict[str, list[float]] = {}
        weights: dict[str, list[float]] = {}
        for item in self.assessments:
            scores.setdefault(item.dimension, []).append(item.score)
            weights.setdefault(item.dimension, []).append(OFF_QUESTION_WEIGHT if item.off_question else 1.0)
        return {dimension: belief_of(values, weights[dimension]) for dimension, values in scores.items()}

    def settlement(self) -> dict[str, str]:
        """Per dimension the interview asks about: "confident", "follow-ups spent" or "" (still open)."""
        beliefs, asked = self.beliefs(), self._asked
        return {
            dimension: settle_state(self.plan, dimension, beliefs.get(dimension, Belief()), asked.get(dimension, 0))
            for dimension in askable(self.plan)
        }

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
            self._current,
            dict(self._asked),
            list(self._used),
            self._started_at,
            self.interviewer.book.records_for(self.payers[0]) if self.payers else [],
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
        self._current, self._asked, self._used = state.current, dict(state.asked), list(state.used)
        self._started_at = state.started_at
        if self.payers and state.calls:
            self.interviewer.book.restore(self.payers[0], state.calls)
        if not self._current and self.transcript and self._topic_index < len(self.plan.topics):
            # saved before topics were chosen adaptively: the plan's order was the interview's
            self._current = self.plan.topics[self._topic_index].id
            self._used = [topic.id for topic in self.plan.topics[: self._topic_index + 1]]

    async def start(self, on_token: TokenSink | None = None) -> str:
        if self.transcript:
            return self.transcript[0].text
        self._started_at = self.clock()
        move = next_move(self.plan, {}, {}, set(), current=None, follow_up=None)
        if move.kind == "close" or move.topic is None:
            return await self._end("settled", CLOSING, on_token)
        return await self._say(self._take(move, injected=False), None, on_token)

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
            return await self._end("settled", CLOSING, on_token)
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
        # every unsupported claim in this answer counts against it (a role interview has no code to check against)
        claimed = find_contradictions(text, self.profile, self._code_text()) if self.profile is not None else []
        known = {item.explanation for item in self.contradictions}
        found = [item for item in claimed if item.explanation not in known]  # the report lists each once
        self.contradictions += found
        try:
            off = off_question(topic.question, topic.dimension, text)
            await self._assess(answer_id, topic, text, claimed, off=off)
            if self.time_limit_s is not None and self.clock() - (self._started_at or 0.0) >= self.time_limit_s:
                return await self._end("time_limit", TIME_END, on_token)
            if sum(self._asked.values()) >= self.max_questions:
                return await self._end("question_limit", CLOSING, on_token)
            directive = self._next_directive(topic, text, found, off=off)
            if directive.kind == "close":
                return await self._end("settled", CLOSING, on_token)
            return await self._say(directive, text, on_token)
        except BudgetExceeded:
            return await self._end("budget", BUDGET_END, on_token)
        except NoModelAvailable:
            return await self._end("model_unavailable", OUTAGE_END, on_token)

    def _next_directive(self, topic: Topic, text: str, found: list[Contradiction], *, off: bool) -> Directive:
        fresh = [c for c in found if c.explanation not in self._probed]
        if fresh:  # a claim the code contradicts is put to the candidate at once, whatever the belief says
            self._probed.add(fresh[0].explanation)
            self._count(topic)
            where = f"{fresh[0].path}:{fresh[0].line}" if fresh[0].line else fresh[0].path
            return Directive(
                "contradiction", topic.question, claim=fresh[0].claim, location=where, explanation=fresh[0].explanation
            )
        signals = measure(text)
        reason = None
        if not signals.injection:  # an answer that tried to instruct is not followed up: the interview moves on
            reason = follow_up_reason(signals, off_question=off)
        move = next_move(self.plan, self.beliefs(), self._asked, set(self._used), current=topic, follow_up=reason)
        return self._take(move, injected=signals.injection)

    def _take(self, move: Move, *, injected: bool) -> Directive:
        """The directive for `move`, with the interview's position moved to it."""
        topic = move.topic
        if move.kind == "close" or topic is None:
            return Directive("close", CLOSING)
        self._count(topic)
        if move.kind == "follow_up":
            probe = FOLLOW_UPS.get(move.reason, "")
            if move.reason == "off_question":
                probe = f"{probe} {topic.question}"
            elif move.reason in CONTENT_GAPS and self._follow_ups < len(topic.expected_follow_ups):
                probe = topic.expected_follow_ups[self._follow_ups]  # what this question expects to be asked next
            self._follow_ups += 1
            return Directive("follow_up", topic.question, reason=move.reason, probe=probe)
        self._current, self._follow_ups = topic.id, 0
        self._topic_index = self.plan.topics.index(topic)
        if topic.id not in self._used:
            self._used.append(topic.id)
        kind: DirectiveKind = "redirect" if injected else "ask"
        if move.kind == "revisit":
            title = self.plan.dimension_titles.get(topic.dimension, topic.dimension.replace("_", " "))
            return Directive(kind, f"Coming back to {title.lower()}: {move.reason}", f"revisiting: {topic.reason}")
        return Directive(kind, topic.question, topic.reason)

    def _count(self, topic: Topic) -> None:
        self._asked[topic.dimension] = self._asked.get(topic.dimension, 0) + 1

    async def _assess(self, answer_id: str, topic: Topic, text: str, found: list[Contradiction], *, off: bool) -> None:
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
                off_question=off,
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
                off_question=off,  # communication's low level: "answers a different question"
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
