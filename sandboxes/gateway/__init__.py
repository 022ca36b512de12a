"""The LLM gateway: the only way out of a sandbox. An HTTP service speaking the OpenAI (chat, Responses,
embeddings), Azure OpenAI, Anthropic and Ollama wire APIs, served on a Unix socket bind-mounted into the
network-less container (a tiny forwarder inside turns it into 127.0.0.1:18080), that records every call with the
client that made it, plays a deterministic offline model (or a gullible one), models latency on a time scale, and
injects faults on demand. It knows nothing of server/."""
