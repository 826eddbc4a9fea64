"""Alembic revisions of the incident log's schema; `addons.incidents.create_schema` applies them."""
