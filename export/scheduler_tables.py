"""The scheduler's tables from diffusers, written to the manifest: the runtime applies the update
rules with numpy and checks its own timesteps against these."""

from __future__ import annotations

from lredit.config import SCHEDULERS

from .diffusers_schedulers import diffusers_scheduler

TABLE_STEPS = (10, 25, 50)


def scheduler_tables(config: dict) -> dict:
    base = diffusers_scheduler(config, "model")
    tables = {}
    for name in SCHEDULERS:
        per_steps = {}
        for steps in TABLE_STEPS:
            sched = diffusers_scheduler(config, name)
            sched.set_timesteps(steps)
            row = {"timesteps": [float(t) for t in sched.timesteps.tolist()]}
            if getattr(sched, "sigmas", None) is not None:
                row["sigmas"] = [float(s) for s in sched.sigmas.tolist()]
            per_steps[str(steps)] = row
        tables[name] = {"class": type(sched).__name__, "steps": per_steps}
    return {
        "config": dict(config),
        "alphas_cumprod": [float(a) for a in base.alphas_cumprod.tolist()],
        "tables": tables,
    }
