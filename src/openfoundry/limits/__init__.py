"""Rate limits (requests/min, tokens/min, concurrency) and budgets, in memory or shared through Redis."""
