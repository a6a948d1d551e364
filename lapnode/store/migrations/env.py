"""Alembic environment for the store: always run in-process on a connection the store hands over."""

from __future__ import annotations

from alembic import context

from lapnode.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("lapnode migrations run through Store.open, which provides the connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
