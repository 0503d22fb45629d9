"""The catalog: every model card from the data files, loaded and checked once."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from openfoundry.catalog.card import ModelCard
from openfoundry.config import describe_errors


class CatalogError(Exception):
    pass


class Catalog:
    def __init__(self, cards: list[ModelCard]) -> None:
        self._cards = {card.id: card for card in sorted(cards, key=lambda c: c.id)}

    def get(self, model_id: str) -> ModelCard | None:
        return self._cards.get(model_id)

    def __iter__(self) -> Iterator[ModelCard]:
        return iter(self._cards.values())

    def __len__(self) -> int:
        return len(self._cards)

    @classmethod
    def load(cls, directory: Path | None = None) -> Catalog:
        """Read every `<publisher>.yaml`; a bad card names its file and field."""
        folder = directory or Path(str(resources.files("openfoundry.catalog") / "data"))
        cards: list[ModelCard] = []
        seen: set[str] = set()
        for file in sorted(folder.glob("*.yaml")):
            data = yaml.safe_load(file.read_text()) or {}
            publisher = data.get("publisher")
            if publisher != file.stem:
                raise CatalogError(f"{file.name}: publisher must be {file.stem!r}, not {publisher!r}")
            for index, raw in enumerate(data.get("models") or []):
                try:
                    card = ModelCard.model_validate(raw)
                except ValidationError as exc:
                    raise CatalogError(f"{file.name}: models[{index}]: {'; '.join(describe_errors(exc))}") from exc
                if card.publisher != publisher:
                    raise CatalogError(f"{file.name}: {card.id} does not belong to publisher {publisher!r}")
                if card.id in seen:
                    raise CatalogError(f"{file.name}: {card.id} is defined twice")
                seen.add(card.id)
                cards.append(card)
        return cls(cards)
