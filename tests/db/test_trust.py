"""A trust: two real gateways, each with its own `school.site`, write one PostgreSQL database;
each incident lands once, under its own site, and the `db` commands tell the sites apart."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from sqlalchemy import select

from addons.incidents import Incident, make_engine
from tests.blocklists.conftest import schoolgate
from tests.e2e.realparts import Gateway, curl, wait_until


def test_two_gateways_write_one_postgresql_database_each_under_its_site(
    postgres_url: str, start_gateway: Callable[..., Gateway]
) -> None:
    alpha = start_gateway("alpha", site="alpha", database=postgres_url)
    bravo = start_gateway("bravo", site="bravo", database=postgres_url)
    references: dict[int, str] = {}
    for gateway, site, count in ((alpha, "alpha", 3), (bravo, "bravo", 2)):
        for n in range(count):
            page = curl("-x", gateway.proxy, f"http://localhost:9/{site}/{n}").stdout
            found = re.search(r"Reference[^0-9]*([0-9]+)", page)
            assert found, page
            references[int(found.group(1))] = site

    engine = make_engine(postgres_url)

    def stored() -> dict[int, str]:
        with engine.connect() as connection:
            return {
                id_: site for id_, site in connection.execute(select(Incident.id, Incident.site))
            }

    wait_until(lambda: len(stored()) >= len(references), what="both gateways' incidents")
    assert stored() == references
    assert Counter(references.values()) == {"alpha": 3, "bravo": 2}
    engine.dispose()

    config = alpha.root / "config" / "policy.yaml"
    result = schoolgate("db", "purge", "--dry-run", "--all-sites", "--config", config)
    assert result.returncode == 0, result.stderr
    assert "(every site)" in result.stdout and "dry run: 0 incident(s)" in result.stdout
