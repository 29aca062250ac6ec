"""Apache Airflow provider for the SMSBAT Cascade messaging API."""

from __future__ import annotations

__version__ = "0.2.0"
