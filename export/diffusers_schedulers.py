"""diffusers schedulers by EditConfig.scheduler name: the source of the manifest's scheduler
tables and the torch reference's scheduler (the numpy runtime is held to them)."""

from __future__ import annotations

from lredit.config import SCHEDULER_CLASSES, SCHEDULER_OVERRIDES
from lredit.errors import InputError


def diffusers_scheduler(scheduler_config: dict, name: str):
    """A fresh diffusers scheduler: 'model' = the class the model folder names, else the variant
    lredit.config.SCHEDULER_CLASSES names, with its overrides."""
    import diffusers

    if name == "model":
        class_name, overrides = scheduler_config.get("_class_name", "PNDMScheduler"), {}
    elif name in SCHEDULER_CLASSES:
        class_name = SCHEDULER_CLASSES[name]
        overrides = SCHEDULER_OVERRIDES.get(class_name, {})
    else:
        raise InputError(f"scheduler {name!r} is unknown; expected 'model' or one of {tuple(SCHEDULER_CLASSES)}")
    cls = getattr(diffusers, class_name)
    return cls.from_config({**scheduler_config, **overrides})
