"""Canonical wire types (OpenAI chat-completions shape) and the SSE codec."""
