"""CatalogService logic over a ProductStore: validation, page tokens, errors. No protobuf here."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Sequence

import pandas as pd

from libs import validation
from libs.errors import FieldViolation, InvalidArgumentError, NotFoundError, UnavailableError, invalid
from libs.products.model import (
    Availability,
    DeleteResult,
    Money,
    Product,
    ProductContent,
    UpsertResult,
    check_delete,
    check_upsert,
)
from libs.products.store import ProductStore
from libs.products.view import CatalogView

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def dataset_products(items: pd.DataFrame) -> list[ProductContent]:
    """The prepared dataset's items (product_id, title, price in GBP) as in-stock products."""
    return [
        ProductContent(str(pid), str(title), Money.from_decimal(float(price)), Availability.IN_STOCK)
        for pid, title, price in zip(items["product_id"], items["title"], items["price"])
    ]


def _encode_token(after_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after_id}).encode()).decode()


def _decode_token(token: str) -> str:
    """The last id of the previous page; INVALID_ARGUMENT for anything ListProducts did not issue."""
    if not token:
        return ""
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise invalid("page_token", "is not a next_page_token of ListProducts") from exc
    if not isinstance(after, str):
        raise invalid("page_token", "is not a next_page_token of ListProducts")
    return after


class Catalog:
    """`view`: this replica's CatalogView, refreshed after each write so this replica serves the change when the
    caller gets the answer (the others follow within their poll interval)."""

    def __init__(self, store: ProductStore, view: CatalogView | None = None) -> None:
        self.store = store
        self.view = view

    async def _refresh_view(self) -> None:
        if self.view is not None:
            try:
                await self.view.refresh()
            except UnavailableError:
                pass  # the write is stored; the view catches up on its next poll

    async def upsert(self, products: Sequence[ProductContent]) -> UpsertResult:
        valid = check_upsert(products)
        result = await asyncio.to_thread(self.store.upsert, valid, time.time())
        await self._refresh_view()
        return result

    async def get(self, product_id: str) -> tuple[Product, bool]:
        """The product and whether it is the view's copy (the database is down: as last read, maybe stale)."""
        if why := validation.product_id_problem(product_id):
            raise invalid("product_id", why)
        try:
            product, stale = await asyncio.to_thread(self.store.get, product_id), False
        except UnavailableError:
            if self.view is None or (product := self.view.get(product_id)) is None:
                raise  # not in the last known catalogue either: the caller should retry, not conclude NOT_FOUND
            stale = True
        if product is None:
            raise NotFoundError(f"product {product_id!r} is not in the catalogue")
        return product, stale

    async def list(self, page_size: int, page_token: str) -> tuple[list[Product], str, bool]:
        """A page, the next page's token, and whether the page is the view's copy (the database is down)."""
        size = validation.page_size(page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = _decode_token(page_token)
        # One more than asked tells whether a next page exists without a second query.
        try:
            found, stale = await asyncio.to_thread(self.store.page, after, size + 1), False
        except UnavailableError:
            if self.view is None or self.view.cursor == 0:
                raise  # nothing read yet: no last known catalogue to serve
            found, stale = self.view.page(after, size + 1), True
        page = found[:size]
        return page, (_encode_token(page[-1].product_id) if len(found) > size else ""), stale

    async def delete(self, product_ids: Sequence[str]) -> DeleteResult:
        ids = check_delete(product_ids)
        result = await asyncio.to_thread(self.store.delete, ids, time.time())
        await self._refresh_view()
        if result.unknown:
            first = {p: i for i, p in reversed(list(enumerate(product_ids)))}
            raise InvalidArgumentError(
                [
                    FieldViolation(f"product_ids[{first[p]}]", "is not a product of the catalogue")
                    for p in result.unknown
                ]
            )
        return result
