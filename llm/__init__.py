"""Models and money: model strings → pydantic-ai models, fallback with per-provider cooldowns, pricing
(genai-prices), a usage ledger, and budgets with hard ceilings. Imports no other Viva room.

`offline` is only a name here: the caller supplies the deterministic model for its purpose (the offline
interviewer lives in interviewer/, the offline judge in grader/).
"""
