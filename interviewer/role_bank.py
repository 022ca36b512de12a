"""The question bank of role interviews: interviews without a repository, on the topics AI-engineer interviews
cover, at three levels. Each question has the follow-ups it expects to need (asked when an answer is vague, one-
sided or hedged; interviewer.steer) and what a strong answer covers (for the reader of the report and for whoever
edits the bank: the assessment itself is the same code-gated reading of substance as in project interviews).

Levels ask different things, not the same thing harder: a junior explains a mechanism and its main failure, an
intermediate engineer chooses between alternatives with numbers, a senior one designs under constraints, says what
breaks first and how they would know.
"""

from __future__ import annotations

from typing import Literal

import msgspec

RoleLevel = Literal["junior", "intermediate", "senior"]
LEVELS: tuple[RoleLevel, ...] = ("junior", "intermediate", "senior")


class RoleQuestion(msgspec.Struct, frozen=True):
    id: str
    topic: str
    """The interview rubric dimension it is asked for (rubrics/builtin/ai-engineer-role-*.yaml)."""
    level: RoleLevel
    question: str
    follow_ups: list[str]
    covers: list[str]


TOPICS = {
    "rag_design": "RAG design: chunking, hybrid search, reranking, embedding updates and re-indexing",
    "evaluation": "evaluating non-deterministic output",
    "agents": "agents and tool failures",
    "cost_latency": "cost and latency: async vs threads for provider calls, caching, tokens to money",
    "security": "prompt injection and PII",
    "scale": "what breaks at 100x",
    "models": "API vs open-weight models, and quantisation",
}

BANK: tuple[RoleQuestion, ...] = (
    # --- RAG design ---------------------------------------------------------------------------------------------
    RoleQuestion(
        "rag-chunking-basics",
        "rag_design",
        "junior",
        "Walk me through how you would split a set of PDF manuals into chunks for retrieval. What size would you "
        "start with, and what goes wrong if chunks are too small or too large?",
        ["What would you measure to know the size is right?", "What happens to a table that spans a page break?"],
        ["a starting size with a reason", "too small loses context", "too large dilutes the match and costs tokens"],
    ),
    RoleQuestion(
        "rag-retrieval-miss",
        "rag_design",
        "junior",
        "A user asks about an error code that is in the documents, but retrieval returns unrelated chunks. Why "
        "might embedding search miss an exact code, and what would you add?",
        ["How would you check that your fix helped?", "What does keyword search cost you in return?"],
        ["embeddings blur exact tokens", "keyword or BM25 search", "a test query set"],
    ),
    RoleQuestion(
        "rag-hybrid-rerank",
        "rag_design",
        "intermediate",
        "You have vector search today. When would you add BM25 for hybrid search, and when a cross-encoder "
        "reranker? What does each cost in latency and what does it buy in recall?",
        ["How do you merge the two result lists?", "How many candidates go to the reranker, and why that many?"],
        ["hybrid for exact terms", "reciprocal rank fusion or weights", "reranker latency per candidate", "recall@k"],
    ),
    RoleQuestion(
        "rag-reindex",
        "rag_design",
        "senior",
        "You need to move to a new embedding model with 40 million chunks indexed and traffic that cannot stop. "
        "How do you re-index, how do you decide the new model is better, and how do you roll back?",
        [
            "What does the re-embedding cost, in money and time?",
            "What breaks if queries and documents use different models?",
        ],
        ["dual index or versioned index", "offline eval before switching", "shadow traffic", "cost of re-embedding"],
    ),
    RoleQuestion(
        "rag-freshness",
        "rag_design",
        "senior",
        "Documents change daily and users complain about stale answers. Design the ingestion so an update is "
        "searchable within minutes. What are the failure modes and how would you detect each?",
        ["What happens to a deleted document?", "How do you know the index and the source agree?"],
        ["incremental upserts", "deletes and tombstones", "a freshness metric", "reconciliation"],
    ),
    # --- evaluation ---------------------------------------------------------------------------------------------
    RoleQuestion(
        "eval-basics",
        "evaluation",
        "junior",
        "The same prompt gives different answers on different runs. How would you test that a change to the "
        "prompt did not make the answers worse?",
        ["How many test cases would you start with, and where from?", "What counts as a pass when wording differs?"],
        ["a fixed test set", "several runs per case", "a pass criterion beyond exact match"],
    ),
    RoleQuestion(
        "eval-judge",
        "evaluation",
        "intermediate",
        "You use an LLM as a judge to grade answers. How do you know the judge is right, and what do you do "
        "about position bias or a judge that likes long answers?",
        ["What agreement with humans would you accept?", "What does running the judge cost per evaluation run?"],
        ["labelled sample", "agreement measure like kappa", "swap order", "length control", "cost"],
    ),
    RoleQuestion(
        "eval-regression-gate",
        "evaluation",
        "senior",
        "Design the evaluation that gates every release of an assistant whose outputs are non-deterministic. "
        "What is in the suite, what threshold blocks a release, and how do you keep it from going stale?",
        ["How do you tell a real regression from run-to-run noise?", "Who adds cases, and from what?"],
        ["suite from production failures", "repeated runs and confidence intervals", "thresholds", "refresh loop"],
    ),
    # --- agents and tools ---------------------------------------------------------------------------------------
    RoleQuestion(
        "agents-tool-error",
        "agents",
        "junior",
        "An agent calls a weather API as a tool and the API times out. What should the agent do, and what should "
        "the user see?",
        ["How many times would you retry, and how long would you wait?", "How would the model know the tool failed?"],
        ["a timeout", "bounded retries", "an error returned to the model", "an honest message to the user"],
    ),
    RoleQuestion(
        "agents-loop",
        "agents",
        "intermediate",
        "An agent sometimes loops, calling the same tool with the same arguments again and again. How do you stop "
        "it, and how do you find out why it happens?",
        ["What limit would you set, and what happens when it is hit?", "What would you log to debug it?"],
        ["step or cost limits", "detect repeated calls", "traces of tool calls", "fix the tool's error message"],
    ),
    RoleQuestion(
        "agents-side-effects",
        "agents",
        "senior",
        "Your agent can refund orders through a tool. Design it so a failure halfway — the model, the tool or the "
        "network — never refunds twice or leaves a refund half done.",
        ["Where does a human approve, and for which refunds?", "How do you test this before it touches money?"],
        ["idempotency keys", "a state machine or saga", "approval thresholds", "least privilege", "dry runs"],
    ),
    # --- cost and latency ---------------------------------------------------------------------------------------
    RoleQuestion(
        "cost-tokens",
        "cost_latency",
        "junior",
        "A request sends 3,000 input tokens and gets 500 back. How do you work out what 1,000 requests cost, and "
        "what would you change first to make it cheaper?",
        ["What does a longer system prompt do to that number?", "What would you give up by using a smaller model?"],
        ["price per token times tokens", "input vs output prices", "trim the prompt", "smaller model trade-off"],
    ),
    RoleQuestion(
        "cost-async",
        "cost_latency",
        "intermediate",
        "Your service calls a model provider for each request. Would you use threads or async for those calls, and "
        "why? What limits how many calls you can have in flight?",
        ["What happens when the provider rate-limits you?", "Where would you put a cache, and what would it key on?"],
        ["I/O bound so async", "a semaphore or pool limit", "provider rate limits", "backoff", "cache keys"],
    ),
    RoleQuestion(
        "cost-budget",
        "cost_latency",
        "senior",
        "Spend tripled last week and p95 latency doubled. Walk me through how you find out why, and what you put in "
        "place so it cannot happen silently again.",
        ["What would you alert on, and at what threshold?", "How do you cap spend without breaking users?"],
        ["per-feature cost attribution", "token and latency traces", "alerts", "hard ceilings", "caching or routing"],
    ),
    # --- security -----------------------------------------------------------------------------------------------
    RoleQuestion(
        "security-injection-basics",
        "security",
        "junior",
        "What is prompt injection? Give an example that comes in through a document the app retrieves, not from "
        "the user.",
        ["What could that injection make the app do?", "How would you test for it?"],
        ["instructions hidden in data", "indirect injection", "what the model can be made to do", "a test"],
    ),
    RoleQuestion(
        "security-pii",
        "security",
        "intermediate",
        "Users paste customer records into your assistant. What do you do about personal data in prompts, logs and "
        "the provider's retention, and what does each measure cost you?",
        ["How would you find PII you missed?", "What does redaction do to answer quality?"],
        ["redaction before sending", "log scrubbing", "provider retention settings", "cost of false positives"],
    ),
    RoleQuestion(
        "security-threat-model",
        "security",
        "senior",
        "Your agent reads email and can send replies. Give me its threat model: what can an attacker who sends it "
        "one email make it do, what stops each attack, and what is left?",
        ["Which of your defences would you trust without a model in the loop?", "How do you red-team it continuously?"],
        ["indirect injection via email", "tool permissions", "human confirmation", "output filtering", "residual risk"],
    ),
    # --- scale --------------------------------------------------------------------------------------------------
    RoleQuestion(
        "scale-basics",
        "scale",
        "junior",
        "Your demo serves 10 users. What would you expect to break first at 1,000 users, and how would you notice?",
        ["What would you measure before it breaks?", "What is the cheapest fix?"],
        ["rate limits", "latency", "a concrete first bottleneck", "monitoring"],
    ),
    RoleQuestion(
        "scale-100x",
        "scale",
        "intermediate",
        "Traffic and the document corpus both grow 100x. Go through retrieval, the model calls and the data store: "
        "what breaks first in each, and what would you change, at what cost?",
        ["Which of those changes would you make now, and which wait?", "What does it do to cost per request?"],
        ["index type changes", "provider quotas", "queueing", "cost per request", "order of changes"],
    ),
    RoleQuestion(
        "scale-capacity",
        "scale",
        "senior",
        "Plan capacity for a launch expected to bring 50 requests a second at peak, each a 2-second model call. What "
        "do you need from the provider, what do you do when you get less, and how do you degrade gracefully?",
        ["How many calls are in flight at peak?", "What do users see when you shed load?"],
        ["concurrency = rate x latency", "quota negotiation", "fallback models", "load shedding", "queues"],
    ),
    # --- models -------------------------------------------------------------------------------------------------
    RoleQuestion(
        "models-api-vs-open",
        "models",
        "junior",
        "When would you use a hosted model API, and when an open-weight model you run yourself? Name one cost of each.",
        ["What does running your own model need that an API does not?", "What about data leaving your network?"],
        ["ops burden", "data control", "per-token price vs fixed hardware", "quality gap"],
    ),
    RoleQuestion(
        "models-quantisation",
        "models",
        "intermediate",
        "You want to run a 70B open-weight model on fewer GPUs by quantising it to 4 bits. What do you gain, what do "
        "you lose, and how would you measure the loss on your task?",
        ["What memory does it need before and after?", "Which tasks suffer most from quantisation?"],
        ["memory roughly quartered", "quality loss varies by task", "task-specific eval", "throughput"],
    ),
    RoleQuestion(
        "models-migration",
        "models",
        "senior",
        "Leadership wants to move from a hosted frontier model to a self-hosted open-weight one to cut cost. How do "
        "you decide, what would the total cost really be, and what would make you stop the migration?",
        ["What is the break-even volume?", "How do you compare quality on your traffic, not on benchmarks?"],
        ["total cost of ownership", "break-even", "eval on own traffic", "latency", "a stop criterion"],
    ),
)


def questions_for(topic: str, level: RoleLevel) -> list[RoleQuestion]:
    """The bank's questions on `topic` at `level`; when it has none there, the nearest level's (lower first)."""
    for distance in range(len(LEVELS)):
        for candidate in _around(level, distance):
            found = [q for q in BANK if q.topic == topic and q.level == candidate]
            if found:
                return found
    return []


def _around(level: RoleLevel, distance: int) -> list[RoleLevel]:
    index = LEVELS.index(level)
    if distance == 0:
        return [level]
    return [LEVELS[i] for i in (index - distance, index + distance) if 0 <= i < len(LEVELS)]
