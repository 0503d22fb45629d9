"""The model catalog: cards in data/<publisher>.yaml."""

from openfoundry.catalog.card import ModelCard
from openfoundry.catalog.catalog import Catalog, CatalogError

__all__ = ["Catalog", "CatalogError", "ModelCard"]
