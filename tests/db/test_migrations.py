"""Schema versions: Alembic revisions make the model's tables, upgrade older logs in place with
their rows, and a log upgraded by a newer schoolgate is refused, by the CLI and the proxy."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, Table, insert, select, text

from addons.incidents import (
    MIGRATIONS,
    Base,
    Incident,
    SchemaState,
    SchemaTooNew,
    create_schema,
    make_engine,
)
from tests.blocklists.conftest import schoolgate
from tests.db.conftest import incident, run_refused, stored_ids
from tests.e2e.realparts import Gateway, wait_until

HEAD = "0003"


def migrate_to(engine: Engine, revision: str) -> None:
    """Apply the revisions up to `revision` only, as an older schoolgate left the log."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def revision_of(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def insert_as_of_0001(engine: Engine) -> dict[str, object]:
    """A row written by schoolgate before `device` existed."""
    row = incident()
    del row["device"]
    table = Table("incidents", MetaData(), autoload_with=engine)
    assert "device" not in table.columns
    with engine.begin() as connection:
        connection.execute(insert(table), [row])
    return row


def test_a_new_log_gets_exactly_the_model(engine: Engine) -> None:
    assert create_schema(engine) == SchemaState(None, HEAD)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert revision_of(engine) == HEAD


def test_a_current_log_is_left_as_it_is(engine: Engine) -> None:
    create_schema(engine)
    assert create_schema(engine) == SchemaState(HEAD, HEAD)
    assert create_schema(engine).describe() == f"already at schema revision {HEAD}"


def test_an_older_log_is_upgraded_with_its_rows(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    migrate_to(engine, "0001")
    old = insert_as_of_0001(engine)
    assert create_schema(engine) == SchemaState("0001", HEAD)
    with engine.connect() as connection:
        [row] = connection.execute(select(Incident.__table__)).mappings()
    assert dict(row) == old | {"device": None}
    [line] = [r.getMessage() for r in caplog.records if "upgraded" in r.getMessage()]
    assert f"upgraded from schema revision 0001 to {HEAD}" in line


def test_a_log_made_before_migrations_counts_as_the_first_revision(engine: Engine) -> None:
    migrate_to(engine, "0001")
    old = insert_as_of_0001(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
    assert create_schema(engine) == SchemaState("0001", HEAD)
    assert revision_of(engine) == HEAD
    assert stored_ids(engine) == {old["id"]}


def test_a_log_from_a_newer_schoolgate_is_refused_and_left_alone(
    engine: Engine, tmp_path: Path, config_for: Callable[..., Path], database_url: str
) -> None:
    create_schema(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(SchemaTooNew, match="revision '0099', which this schoolgate"):
        create_schema(engine)
    assert revision_of(engine) == "0099"

    result = schoolgate("db", "upgrade", "--config", config_for(database_url))
    assert result.returncode == 1
    assert "'0099'" in result.stderr and "newer schoolgate" in result.stderr
    assert revision_of(engine) == "0099"


def test_db_upgrade_creates_then_says_it_is_current(
    database_url: str, config_for: Callable[..., Path]
) -> None:
    config = config_for(database_url)
    first = schoolgate("db", "upgrade", "--config", config)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().endswith(f": created at schema revision {HEAD}")
    again = schoolgate("db", "upgrade", "--config", config)
    assert again.stdout.strip().endswith(f": already at schema revision {HEAD}")


def test_gateways_starting_together_on_one_postgresql_database_upgrade_it_once(
    postgres_url: str,
) -> None:
    engines = [make_engine(postgres_url) for _ in range(4)]
    states: list[SchemaState] = []
    start = threading.Barrier(len(engines))

    def upgrade(engine: Engine) -> None:
        start.wait()
        states.append(create_schema(engine))

    threads = [threading.Thread(target=upgrade, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    assert Counter(states) == {SchemaState(None, HEAD): 1, SchemaState(HEAD, HEAD): 3}


# --- the proxy at start ---------------------------------------------------------------------


def test_the_proxy_creates_a_new_log_at_start(start_gateway: Callable[..., Gateway]) -> None:
    gateway = start_gateway()
    engine = make_engine(f"sqlite:///{gateway.database}")
    wait_until(lambda: revision_of(engine) == HEAD, what="the schema")  # the addon loads async
    engine.dispose()


def test_the_proxy_upgrades_an_older_log_at_start_and_says_so_once(
    tmp_path: Path, start_gateway: Callable[..., Gateway]
) -> None:
    path = tmp_path / "old" / "incidents.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate_to(engine, "0001")
    old = insert_as_of_0001(engine)
    gateway = start_gateway(database=f"sqlite:///{path}")
    wait_until(lambda: revision_of(engine) == HEAD, what="the upgrade")
    assert stored_ids(engine) == {old["id"]}
    wait_until(lambda: "upgraded from" in gateway.log(), what="the log line")
    lines = [line for line in gateway.log().splitlines() if "upgraded from" in line]
    assert len(lines) == 1 and f"schema revision 0001 to {HEAD}" in lines[0]
    engine.dispose()


def test_the_proxy_refuses_to_start_on_a_log_from_a_newer_schoolgate(
    tmp_path: Path, config_for: Callable[..., Path]
) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'incidents.db'}"
    engine = make_engine(url)
    create_schema(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    result = run_refused(config_for(url), tmp_path)
    assert result.returncode != 0
    assert f"the incident log {url} is at schema revision '0099'" in result.stdout
    assert revision_of(engine) == "0099"
    engine.dispose()
