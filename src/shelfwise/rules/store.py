"""Rules in the database: optimistic concurrency, a versioned audit log, restore.

Every write runs in one transaction that validates the prospective rulebook,
changes ``rules`` and appends to ``rule_audit``. The rulebook version is
``max(rule_audit.seq)``: one index lookup, cheap enough to run on every request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from shelfwise.errors import Conflict, NotFound
from shelfwise.rules.model import Rule, parse_rule, rule_body
from shelfwise.store.engine import Database
from shelfwise.store.tables import rule_audit, rules
from shelfwise.store.types import utcnow

Clock = Callable[[], datetime]
Check = Callable[[Sequence[Rule], set[str]], None]


class AuditEntry(BaseModel):
    seq: int
    rule_id: str
    version: int
    action: str  # create | update | disable | enable | delete | restore
    who: str
    why: str
    at: datetime
    body: dict[str, Any] | None
    diff: dict[str, Any]


class ApplyResult(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    rulebook_version: int


def diff_bodies(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """Top-level fields that changed: ``{field: [old, new]}``."""
    old, new = old or {}, new or {}
    return {
        k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
    }


def stale(rule_id: str, expected: int, actual: int, *, deleted: bool = False) -> Conflict:
    now = f"was deleted at version {actual}" if deleted else f"is at version {actual}"
    return Conflict(
        f"rule {rule_id!r} {now}, not {expected}: reload it and retry",
        code="stale_version",
        details={"rule_id": rule_id, "expected": expected, "actual": actual, "deleted": deleted},
    )


class RuleStore:
    """CRUD over rules. ``check`` validates the prospective rulebook before each write;
    ``on_change`` hears the new rulebook version after each commit (Redis broadcast)."""

    def __init__(
        self,
        db: Database,
        *,
        check: Check | None = None,
        clock: Clock = utcnow,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self.db = db
        self.check = check
        self.clock = clock
        self.on_change = on_change

    def version(self) -> int:
        with self.db.engine.connect() as conn:
            return int(conn.execute(select(func.max(rule_audit.c.seq))).scalar() or 0)

    def list_rules(self, include_disabled: bool = True) -> list[Rule]:
        query = select(rules.c.body, rules.c.version).order_by(rules.c.rule_id)
        if not include_disabled:
            query = query.where(rules.c.enabled.is_(True))
        with self.db.engine.connect() as conn:
            return [_rule(r.body, r.version) for r in conn.execute(query)]

    def snapshot(self) -> tuple[int, list[Rule]]:
        """The rulebook version and its enabled rules, read consistently."""
        with self.db.engine.begin() as conn:
            version = int(conn.execute(select(func.max(rule_audit.c.seq))).scalar() or 0)
            rows = conn.execute(
                select(rules.c.body, rules.c.version).where(rules.c.enabled.is_(True))
            )
            return version, [_rule(r.body, r.version) for r in rows]

    def get(self, rule_id: str) -> Rule:
        with self.db.engine.connect() as conn:
            row = conn.execute(
                select(rules.c.body, rules.c.version).where(rules.c.rule_id == rule_id)
            ).first()
        if row is None:
            raise NotFound(f"unknown rule {rule_id!r}", code="rule_not_found")
        return _rule(row.body, row.version)

    def history(self, rule_id: str) -> list[AuditEntry]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(rule_audit).where(rule_audit.c.rule_id == rule_id).order_by(rule_audit.c.seq)
            ).all()
        if not rows:
            raise NotFound(f"unknown rule {rule_id!r}", code="rule_not_found")
        return [AuditEntry.model_validate(dict(r._mapping)) for r in rows]

    def recent_changes(self, limit: int = 50) -> list[AuditEntry]:
        """The audit log across every rule, newest first."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(rule_audit).order_by(rule_audit.c.seq.desc()).limit(limit)
            ).all()
        return [AuditEntry.model_validate(dict(r._mapping)) for r in rows]

    def save(self, rule: Rule, *, who: str, why: str, expected_version: int | None = None) -> Rule:
        """Create (``expected_version`` None or 0) or update a rule at ``expected_version``."""
        return self._write([(rule, expected_version)], who=who, why=why)[0]

    def apply(self, items: Sequence[Rule], *, who: str, why: str) -> ApplyResult:
        """Make the stored rules match ``items`` (others are left alone); unchanged ones
        keep their version. All or nothing."""
        current = {r.id: r for r in self.list_rules()}
        items = [
            r.model_copy(update={"author": current[r.id].author})
            if not r.author and r.id in current
            else r
            for r in items
        ]
        todo = [r for r in items if r.id not in current or rule_body(r) != rule_body(current[r.id])]
        written = self._write(
            [(r, current[r.id].version if r.id in current else 0) for r in todo], who=who, why=why
        )
        done = {r.id for r in written}
        return ApplyResult(
            created=sorted(r.id for r in items if r.id not in current),
            updated=sorted(i for i in done if i in current),
            unchanged=sorted(r.id for r in items if r.id not in done),
            rulebook_version=self.version(),
        )

    def set_enabled(
        self,
        rule_id: str,
        enabled: bool,
        *,
        who: str,
        why: str,
        expected_version: int | None = None,
    ) -> Rule:
        rule = self.get(rule_id)
        expected = rule.version if expected_version is None else expected_version
        changed = rule.model_copy(update={"enabled": enabled})
        return self._write(
            [(changed, expected)], who=who, why=why, action="enable" if enabled else "disable"
        )[0]

    def restore(
        self,
        rule_id: str,
        version: int,
        *,
        who: str,
        why: str,
        expected_version: int | None = None,
    ) -> Rule:
        """Make a past version current again (as a new version). With
        ``expected_version`` (the current version the caller saw, 0 for a deleted
        rule) a change made since is refused as ``stale_version``."""
        past = [e for e in self.history(rule_id) if e.version == version and e.body is not None]
        if not past:
            raise NotFound(
                f"rule {rule_id!r} has no version {version}", code="rule_version_not_found"
            )
        rule = parse_rule(past[-1].body)
        with self.db.engine.connect() as conn:
            row = conn.execute(select(rules.c.version).where(rules.c.rule_id == rule_id)).first()
        current = row.version if row is not None else 0
        expected = current if expected_version is None else expected_version
        return self._write([(rule, expected)], who=who, why=why, action="restore")[0]

    def delete(self, rule_id: str, *, who: str, why: str, expected_version: int) -> None:
        with self._writing() as conn:
            row = conn.execute(
                select(rules.c.version, rules.c.body).where(rules.c.rule_id == rule_id)
            ).first()
            if row is None:
                raise self._missing(conn, rule_id, expected_version)
            if row.version != expected_version:
                raise stale(rule_id, expected_version, row.version)
            done = conn.execute(
                delete(rules).where(rules.c.rule_id == rule_id, rules.c.version == row.version)
            )
            if done.rowcount != 1:  # not reached while _writing serialises the writers
                raise stale(rule_id, expected_version, row.version + 1)
            self._audit(
                conn,
                rule_id,
                row.version + 1,
                "delete",
                who,
                why,
                None,
                diff_bodies(row.body, None),
            )
        self._changed()

    def _write(
        self,
        items: Sequence[tuple[Rule, int | None]],
        *,
        who: str,
        why: str,
        action: str | None = None,
    ) -> list[Rule]:
        if not items:
            return []
        out: list[Rule] = []
        with self._writing() as conn:
            current = {
                r.rule_id: r
                for r in conn.execute(
                    select(rules.c.rule_id, rules.c.version, rules.c.body, rules.c.enabled)
                )
            }
            if self.check is not None:
                book = {rid: _rule(r.body, r.version) for rid, r in current.items()}
                book.update({rule.id: rule for rule, _ in items})
                self.check(list(book.values()), {rule.id for rule, _ in items})
            for rule, expected in items:
                old = current.get(rule.id)
                out.append(self._write_one(conn, rule, old, expected or 0, who, why, action))
        self._changed()
        return out

    def _write_one(
        self,
        conn: Connection,
        rule: Rule,
        old: Any,
        expected: int,
        who: str,
        why: str,
        action: str | None,
    ) -> Rule:
        now = self.clock()
        author = rule.author or (old.body.get("author") if old is not None else None) or who
        rule = rule.model_copy(update={"author": author})
        body = rule_body(rule)
        if old is None:
            if expected:
                raise self._missing(conn, rule.id, expected)
            last = conn.execute(
                select(func.max(rule_audit.c.version)).where(rule_audit.c.rule_id == rule.id)
            ).scalar()
            version = int(last or 0) + 1
            try:
                conn.execute(
                    insert(rules).values(
                        rule_id=rule.id,
                        version=version,
                        type=rule.type,
                        enabled=rule.enabled,
                        body=body,
                        updated_at=now,
                        updated_by=who,
                    )
                )
            except IntegrityError as e:
                raise Conflict(f"rule {rule.id!r} already exists", code="rule_exists") from e
            kind, diff = action or ("restore" if last else "create"), diff_bodies(None, body)
        else:
            if not expected:
                raise Conflict(f"rule {rule.id!r} already exists", code="rule_exists")
            if expected != old.version:
                raise stale(rule.id, expected, old.version)
            version = old.version + 1
            done = conn.execute(
                update(rules)
                .where(rules.c.rule_id == rule.id, rules.c.version == old.version)
                .values(
                    version=version,
                    type=rule.type,
                    enabled=rule.enabled,
                    body=body,
                    updated_at=now,
                    updated_by=who,
                )
            )
            if done.rowcount != 1:
                raise stale(rule.id, expected, old.version + 1)
            kind, diff = action or "update", diff_bodies(old.body, body)
        self._audit(conn, rule.id, version, kind, who, why, body, diff)
        return rule.model_copy(update={"version": version})

    def _audit(
        self,
        conn: Connection,
        rule_id: str,
        version: int,
        action: str,
        who: str,
        why: str,
        body: dict[str, Any] | None,
        diff: dict[str, Any],
    ) -> None:
        conn.execute(
            insert(rule_audit).values(
                rule_id=rule_id,
                version=version,
                action=action,
                who=who,
                why=why,
                at=self.clock(),
                body=body,
                diff=diff,
            )
        )

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """One rule writer at a time, from its first read to its commit: a version it
        checked is still the stored one when it writes, and audit ``seq`` values commit
        in order, so a reader that saw version N has seen every change up to N. SQLite
        takes its write lock at ``BEGIN IMMEDIATE``; PostgreSQL a table lock (readers
        are not blocked)."""
        with self.db.checked_write() as conn:
            if self.db.backend == "postgresql":
                conn.execute(text("LOCK TABLE rule_audit IN SHARE ROW EXCLUSIVE MODE"))
            yield conn

    def _missing(self, conn: Connection, rule_id: str, expected: int) -> Conflict | NotFound:
        """A rule that is not stored: deleted after the version the caller read (a
        stale write, 409), or one it cannot have read (404)."""
        last = conn.execute(
            select(func.max(rule_audit.c.version)).where(rule_audit.c.rule_id == rule_id)
        ).scalar()
        if last is not None and expected < last:
            return stale(rule_id, expected, int(last), deleted=True)
        return NotFound(f"unknown rule {rule_id!r}", code="rule_not_found")

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.version())


def _rule(body: dict[str, Any], version: int) -> Rule:
    rule = parse_rule(body)
    return rule.model_copy(update={"version": version})
