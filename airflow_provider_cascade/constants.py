"""Every default and limit of the provider, once. A leaf module: the runtime and
``get_provider_info`` both read it, so the connection form and the hook cannot disagree."""

from __future__ import annotations

from datetime import timedelta

#: The connection id the hook, operator, sensor and notifier use unless told otherwise.
DEFAULT_CONN_ID = "cascade_default"
#: The connection type the provider registers.
CONN_TYPE = "cascade"

# --- the connection's defaults ------------------------------------------------------------
DEFAULT_BASE_URL = "https://restapi.smsbat.com"
DEFAULT_STATUS_PATH = "/bat/message/{message_id}"
#: Below the published 100 requests/s, so a send stays under the limit instead of hitting it.
DEFAULT_MAX_REQUESTS_PER_SECOND = 80.0
#: Status look-ups per second: under the published 50/s limit of the data group.
DEFAULT_STATUS_REQUESTS_PER_SECOND = 40.0
#: Status look-ups in flight at once: enough to hold the pace up to 2 s of latency.
MAX_STATUS_CONCURRENCY = 256
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0

# --- retries of one request ----------------------------------------------------------------
DEFAULT_MAX_RETRIES = 4
DEFAULT_RETRY_WAIT = 1.0
DEFAULT_MAX_RETRY_WAIT = 60.0

# --- a send -------------------------------------------------------------------------------
#: The most messages one request carries (the service's bulk guidance: 100-1,000).
MAX_BATCH_SIZE = 1_000
#: Requests in flight at once on the pooled session, and the most a send may ask for. It
#: also bounds the batches at risk (in flight, or answered and not yet recorded: the
#: ledger's invariant 3); 16 lets one state-store write record many answered batches, where
#: 8 made nearly one write a batch (each a round trip to the API server; in `airflow dags
#: test` 17 ms of the task's CPU: benchmarks/throughput.py went from 0.84x to 0.96x).
DEFAULT_MAX_IN_FLIGHT = 16
MAX_IN_FLIGHT = 32
#: Past this many messages, per-message results leave XCom for ``results_path``.
DEFAULT_XCOM_INLINE_LIMIT = 10_000

# --- write-backs: the named parameters each row binds -------------------------------------
MARK_SENT_PARAMETERS = ("message_id", "tracking_id", "sent_at")
MARK_DELIVERED_PARAMETERS = ("message_id", "tracking_id", "status", "channel", "cost", "checked_at")

# --- the contract's rules -----------------------------------------------------------------
MAX_TRACKING_ID_LENGTH = 255
MAX_SURVEY_TEXT_LENGTH = 85
SURVEY_OPTIONS_RANGE = (2, 5)
MAX_SCHEDULE_AHEAD = timedelta(days=30)
#: How far in the past a scheduled time may be and still be sent (clock skew, send delay).
SCHEDULE_PAST_TOLERANCE = timedelta(minutes=5)
#: A guard of the provider's own, not a documented limit: no channel carries more, and a
#: runaway template should fail loudly rather than be sent.
MAX_TEXT_LENGTH = 4_096
