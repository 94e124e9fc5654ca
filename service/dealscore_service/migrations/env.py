"""Alembic environment: runs on the connection the service hands over, or on a URL.

The service runs migrations itself at start (``dealscore_service.store.migrate``)
and passes its open connection in ``config.attributes["connection"]``; an
operator may also run ``alembic -c <package>/alembic.ini upgrade head`` with
``DEALSCORE_DATABASE_URL`` set.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from dealscore_service.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the given connection, else through a new engine on the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("DEALSCORE_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set DEALSCORE_DATABASE_URL (or sqlalchemy.url in alembic.ini) to the score store URL")
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run against a database")
run_migrations_online()
