"""The record of documented policy decisions (`policy_changes`): list edits, reloads and erasures.

One writer for the blocklist commands, `schoolgate db erase` and the running proxy, one reader
for `schoolgate blocklist history` and the governors' statement. Actions: `add`, `remove`,
`import` (list edits), `reload` (a policy version in force), `erase` (a person's incidents
deleted on request: who did it and why, never whose).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from addons.incidents import PolicyChange, create_schema


def record_change(
    engine: Engine,
    *,
    site: str,
    who: str,
    action: str,
    category: str | None = None,
    entries: Iterable[str] = (),
    reason: str = "",
    policy_version: str | None = None,
    at: dt.datetime | None = None,
) -> PolicyChange:
    """Write one change now, in its own transaction (creating or upgrading the schema first)."""
    create_schema(engine)
    change = PolicyChange(
        occurred_at=(at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None),
        site=site,
        who=who,
        action=action,
        category=category,
        entries="\n".join(entries),
        reason=reason,
        policy_version=policy_version,
    )
    with Session(engine, expire_on_commit=False) as session, session.begin():
        session.add(change)
    return change


def list_changes(
    engine: Engine,
    *,
    site: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[PolicyChange]:
    """Changes newest first, optionally for one site and a UTC time range [since, until)."""
    query = select(PolicyChange).order_by(PolicyChange.occurred_at.desc(), PolicyChange.id.desc())
    if site is not None:
        query = query.where(PolicyChange.site == site)
    if since is not None:
        query = query.where(PolicyChange.occurred_at >= since)
    if until is not None:
        query = query.where(PolicyChange.occurred_at < until)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(query))
