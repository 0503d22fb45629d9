"""What one call used and cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class UsageRecord:
    id: str
    """Unique per call (uuid4 hex): replays of the spool never count a call twice."""
    ts: float
    """Epoch seconds when the call arrived."""
    project: str | None
    key_id: str | None
    deployment: str
    backend: str
    """The provider that served the call ("" when none did)."""
    kind: str
    status: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
