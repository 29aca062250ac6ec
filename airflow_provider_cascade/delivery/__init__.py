"""Delivery waits, step by step: the tracker of what is still waiting (:mod:`.tracker`),
one polling round shared by the sensor's poke and the trigger (:mod:`.rounds`), the status
budget one connection's waits share (:mod:`.budget`), checkpoints in a workspace
(:mod:`.checkpoints`), sampling (:mod:`.sampling`), the status row (:mod:`.rows`) and the
report (:mod:`.report`). The sensor and the trigger are thin faces over these."""

from airflow_provider_cascade.delivery.options import CascadeSample, CascadeWriteBack
from airflow_provider_cascade.delivery.tracker import (
    FAILED_STATUSES,
    FINAL_STATUSES,
    CascadeDeliveryError,
    DeliveryTracker,
    SuccessWhen,
)

__all__ = [
    "FAILED_STATUSES",
    "FINAL_STATUSES",
    "CascadeDeliveryError",
    "CascadeSample",
    "CascadeWriteBack",
    "DeliveryTracker",
    "SuccessWhen",
]
