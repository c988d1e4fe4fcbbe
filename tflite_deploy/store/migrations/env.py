"""alembic environment: the store passes its open connection in ``config.attributes``.

There is no alembic.ini: :mod:`tflite_deploy.store.engine` builds the Config in code.
"""

from alembic import context

from tflite_deploy.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
