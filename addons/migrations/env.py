"""Alembic's entry point: runs the revisions in `versions/` against the incident model.

`create_schema` hands in its open connection (and transaction). The `alembic` command, which a
developer runs to write a revision (`alembic revision --autogenerate -m "..."`), connects to the
database of the schoolgate config instead: SCHOOLGATE_CONFIG, else `config/policy.yaml`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from addons.config import default_config_path, load_config
from addons.incidents import Base, make_engine


def run(connection: Connection) -> None:
    """Run the pending revisions on `connection`, compared with the model's metadata."""
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite alters a table by copying it: autogenerate writes revisions that do so.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    engine = make_engine(load_config(default_config_path()).database)
    with engine.connect() as connection:
        run(connection)
    engine.dispose()
