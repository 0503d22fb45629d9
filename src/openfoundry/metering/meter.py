"""The meter: takes usage records on the hot path and gets them to the database."""

from __future__ import annotations

from openfoundry.metering.record import UsageRecord


class Meter:
    """Interim in-memory meter; the durable spool replaces it."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    async def start(self) -> None:
        return None

    def record(self, record: UsageRecord) -> None:
        self.records.append(record)

    async def close(self) -> None:
        return None
