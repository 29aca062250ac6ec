"""TaskFlow decorators: ``@task.cascade``."""
