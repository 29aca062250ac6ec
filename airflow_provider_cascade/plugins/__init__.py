"""The provider's Airflow UI plugin: the "Cascade" views of a task instance and a run."""
