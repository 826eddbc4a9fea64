"""A person's rights over the incident log: a copy of their incidents, and their erasure.

Incidents are personal data (UK GDPR): a subject-access request is answered with every incident
recorded under the person's proxy user name, an erasure request by deleting them. The CLI
(`schoolgate db export|erase`) records each erasure in `policy_changes`: who and why, never whose.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, delete, select

from addons.incidents import Incident
from addons.retention import of_site

COLUMNS = tuple(column.name for column in Incident.__table__.columns)


def incidents_of(engine: Engine, user: str, site: str | None) -> list[dict[str, Any]]:
    """Every incident recorded under the user name `user` (one site, or all), oldest first;
    times as ISO 8601 UTC."""
    query = (
        select(Incident.__table__)
        .where(Incident.username == user, of_site(site))
        .order_by(Incident.occurred_at, Incident.id)
    )
    with engine.connect() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
    for row in rows:
        row["occurred_at"] = row["occurred_at"].replace(tzinfo=dt.UTC).isoformat()
    return rows


def erase(engine: Engine, user: str, site: str | None) -> dict[str, int]:
    """Delete every incident recorded under `user` (one site, or all) in one transaction;
    how many were deleted, per site."""
    with engine.begin() as connection:
        sites = connection.execute(
            select(Incident.site)
            .where(Incident.username == user, of_site(site))
            .distinct()
            .order_by(Incident.site)
        ).scalars()
        return {
            each: connection.execute(
                delete(Incident).where(Incident.username == user, Incident.site == each)
            ).rowcount
            for each in list(sites)
        }
