"""The catalog in the store: idempotent upserts, hot stock/price patches, a change log."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from shelfwise.catalog.model import Product, ProductPatch, StoredProduct, margin_band_for
from shelfwise.errors import InvalidInput, NotFound
from shelfwise.store.engine import Database
from shelfwise.store.tables import product_changes, products
from shelfwise.store.types import utcnow

# Changes worth a line in the history with old and new values.
TRACKED_FIELDS = ("price", "cost", "stock_qty", "availability", "margin_band", "active")
_CHUNK = 500


@dataclass(frozen=True)
class UpsertResult:
    inserted: int
    updated: int
    unchanged: int

    def as_dict(self) -> dict[str, int]:
        return {"inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged}


def _row_to_product(row: Any) -> StoredProduct:
    data = dict(row._mapping)
    data.pop("content_hash", None)
    return StoredProduct.model_validate(data)


def _product_values(p: Product, now: datetime) -> dict[str, Any]:
    values = p.model_dump(mode="json")
    values["content_hash"] = p.content_hash()
    values["created_at"] = now
    values["updated_at"] = now
    return values


class CatalogRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self) -> Any:
        return (postgresql if self.db.backend == "postgresql" else sqlite).insert(products)

    def upsert(
        self,
        items: Sequence[Product],
        source: str = "import",
        progress: Callable[[int], None] | None = None,
    ) -> UpsertResult:
        """Insert new products, update changed ones, leave identical ones alone, in one
        transaction (a failure part-way writes nothing); ``progress`` hears of each
        chunk's size as it is written."""
        inserted = updated = unchanged = 0
        with self.db.engine.begin() as conn:
            for start in range(0, len(items), _CHUNK):
                chunk = items[start : start + _CHUNK]
                i, u, n = self._upsert_chunk(conn, chunk, source)
                inserted, updated, unchanged = inserted + i, updated + u, unchanged + n
                if progress is not None:
                    progress(len(chunk))
        return UpsertResult(inserted, updated, unchanged)

    def _upsert_chunk(
        self, conn: Connection, chunk: Sequence[Product], source: str
    ) -> tuple[int, int, int]:
        ids = [p.product_id for p in chunk]
        existing = {
            r.product_id: r
            for r in conn.execute(select(products).where(products.c.product_id.in_(ids)))
        }
        now = utcnow()
        rows: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        inserted = updated = 0
        for p in chunk:
            values = _product_values(p, now)
            old = existing.get(p.product_id)
            if old is not None and old.content_hash == values["content_hash"]:
                continue
            if old is None:
                inserted += 1
                diff: dict[str, Any] = {"created": True}
            else:
                updated += 1
                values["created_at"] = old.created_at
                diff = {
                    f: [getattr(old, f), values[f]]
                    for f in TRACKED_FIELDS
                    if getattr(old, f) != values[f]
                }
            rows.append(values)
            history.append(
                {"product_id": p.product_id, "source": source, "changes": diff, "changed_at": now}
            )
        if rows:
            stmt = self._insert()
            stmt = stmt.on_conflict_do_update(
                index_elements=[products.c.product_id],
                set_={c.name: stmt.excluded[c.name] for c in products.c if c.name != "product_id"},
            )
            conn.execute(stmt, rows)
            conn.execute(product_changes.insert(), history)
        return inserted, updated, len(chunk) - inserted - updated

    def patch(self, product_id: str, change: ProductPatch, source: str = "patch") -> StoredProduct:
        return self.patch_many([(product_id, change)], source=source)[0]

    def patch_many(
        self, changes: Sequence[tuple[str, ProductPatch]], source: str = "patch"
    ) -> list[StoredProduct]:
        """Apply hot stock/price changes atomically; an unknown id fails the whole batch."""
        now = utcnow()
        out: list[StoredProduct] = []
        # The patch is computed from the rows read (availability from stock, the margin
        # band from price and cost): they stay as read until commit.
        with self.db.checked_write() as conn:
            ids = [pid for pid, _ in changes]
            current = {
                r.product_id: r
                for r in conn.execute(
                    select(products).where(products.c.product_id.in_(ids)).with_for_update()
                )
            }
            missing = sorted(set(ids) - set(current))
            if missing:
                raise NotFound(
                    f"unknown product id(s): {', '.join(missing[:10])}",
                    code="product_not_found",
                    details={"missing": missing},
                )
            for pid, change in changes:
                if change.is_empty():
                    raise InvalidInput(f"empty patch for {pid}", code="patch_empty")
                row = current[pid]
                old = _row_to_product(row)
                fields = change.model_dump(exclude_unset=True)
                # A null stock means "not tracked any more": availability stays as it was.
                if (
                    fields.get("stock_qty") is not None
                    and "availability" not in fields
                    and old.availability in ("in_stock", "out_of_stock")
                ):
                    fields["availability"] = (
                        "in_stock" if fields["stock_qty"] > 0 else "out_of_stock"
                    )
                price = fields.get("price", old.price)
                cost = fields.get("cost", old.cost)
                if price is not None and cost is not None:
                    fields["margin_band"] = margin_band_for(price, cost)
                elif "price" in fields or "cost" in fields:
                    # Clearing the price or the cost leaves no margin to band.
                    fields["margin_band"] = None
                new = Product.model_validate(
                    {**old.model_dump(exclude={"created_at", "updated_at"}), **fields}
                )
                diff = {
                    f: [getattr(old, f), getattr(new, f)]
                    for f in fields
                    if getattr(old, f) != getattr(new, f)
                }
                if diff:
                    conn.execute(
                        update(products)
                        .where(products.c.product_id == pid)
                        .values(**fields, content_hash=new.content_hash(), updated_at=now)
                    )
                    conn.execute(
                        product_changes.insert().values(
                            product_id=pid, source=source, changes=diff, changed_at=now
                        )
                    )
                current[pid] = conn.execute(
                    select(products).where(products.c.product_id == pid)
                ).one()
                out.append(_row_to_product(current[pid]))
        return out

    def get(self, product_id: str) -> StoredProduct:
        with self.db.engine.connect() as conn:
            row = conn.execute(
                select(products).where(products.c.product_id == product_id)
            ).one_or_none()
        if row is None:
            raise NotFound(f"unknown product id {product_id!r}", code="product_not_found")
        return _row_to_product(row)

    def get_many(self, ids: Iterable[str]) -> list[StoredProduct]:
        ids = list(ids)
        out: list[StoredProduct] = []
        with self.db.engine.connect() as conn:
            for start in range(0, len(ids), _CHUNK):
                rows = conn.execute(
                    select(products).where(products.c.product_id.in_(ids[start : start + _CHUNK]))
                )
                out.extend(_row_to_product(r) for r in rows)
        return out

    def iter_all(self) -> Iterator[StoredProduct]:
        with self.db.engine.connect() as conn:
            result = conn.execution_options(yield_per=2000).execute(
                select(products).order_by(products.c.product_id)
            )
            for row in result:
                yield _row_to_product(row)

    def count(self) -> int:
        with self.db.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(products)).scalar_one())

    def page(self, offset: int = 0, limit: int = 100) -> list[StoredProduct]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(products).order_by(products.c.product_id).offset(offset).limit(limit)
            )
            return [_row_to_product(r) for r in rows]

    def last_change_seq(self) -> int:
        with self.db.engine.connect() as conn:
            return int(
                conn.execute(select(func.coalesce(func.max(product_changes.c.seq), 0))).scalar_one()
            )

    def changed_since(self, seq: int) -> tuple[int, list[str]]:
        """Product ids changed after ``seq`` and the newest seq seen."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(product_changes.c.seq, product_changes.c.product_id)
                .where(product_changes.c.seq > seq)
                .order_by(product_changes.c.seq)
            ).all()
        if not rows:
            return seq, []
        return int(rows[-1].seq), list(dict.fromkeys(r.product_id for r in rows))

    def history(self, product_id: str, limit: int = 100) -> list[dict[str, Any]]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(product_changes)
                .where(product_changes.c.product_id == product_id)
                .order_by(product_changes.c.seq.desc())
                .limit(limit)
            )
            return [dict(r._mapping) for r in rows]
