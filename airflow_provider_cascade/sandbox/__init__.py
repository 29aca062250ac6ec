"""A local Cascade API on loopback, for demos and tests without an account.

Run it with ``cascade-sandbox --port 8765`` (or ``python -m airflow_provider_cascade.sandbox``);
drive one from Python with :class:`~airflow_provider_cascade.sandbox.client.Sandbox`.
Importing this package imports neither FastAPI nor uvicorn: only running a server does.
"""

#: What a sandbox prints, followed by its URL, once it accepts connections.
READY_LINE = "Cascade sandbox listening on "
#: The environment variable ``cascade-sandbox`` reads its API key from (kept out of ``ps``).
API_KEY_ENV = "CASCADE_SANDBOX_API_KEY"
