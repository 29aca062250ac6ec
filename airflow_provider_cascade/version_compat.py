"""Which Airflow this runs on, read once (the official providers' ``version_compat`` pattern).

Compare against these flags rather than importing to find out, so a missing feature is a
decision in one place and not an ``ImportError`` somewhere else.
"""

from __future__ import annotations


def get_base_airflow_version_tuple() -> tuple[int, int, int]:
    """``(major, minor, micro)`` of the installed Airflow, pre-release tags dropped."""
    from airflow import __version__
    from packaging.version import Version

    version = Version(__version__)
    return version.major, version.minor, version.micro


_AIRFLOW_VERSION = get_base_airflow_version_tuple()

AIRFLOW_V_3_0_PLUS: bool = _AIRFLOW_VERSION >= (3, 0, 0)
#: The UI shows plugin views (``fastapi_apps``, ``external_views``).
AIRFLOW_V_3_1_PLUS: bool = _AIRFLOW_VERSION >= (3, 1, 0)
#: Connection forms are read from ``conn-fields`` in the provider info (hooks not asked).
AIRFLOW_V_3_2_PLUS: bool = _AIRFLOW_VERSION >= (3, 2, 0)

__all__ = ["AIRFLOW_V_3_0_PLUS", "AIRFLOW_V_3_1_PLUS", "AIRFLOW_V_3_2_PLUS"]
