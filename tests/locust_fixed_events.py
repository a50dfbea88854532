"""A Locust user that fires a fixed, seeded script of the repaying users' events once, then stops.

Settings: ``SCRIPT_USERS`` (users in the script, default 300) and ``SCRIPT_SEED`` (default 1).
"""

from __future__ import annotations

import os
import sys

from locust import User, constant, task
from locust.exception import StopUser

sys.path.insert(0, os.path.dirname(__file__))

from staleness_events import script  # noqa: E402

from repaychaos.load import events  # noqa: E402

USERS = int(os.environ.get("SCRIPT_USERS", "300"))
SEED = int(os.environ.get("SCRIPT_SEED", "1"))


class ScriptedRepayers(User):
    wait_time = constant(0)

    @task
    def fire(self) -> None:
        for name, kwargs in script(USERS, SEED):
            getattr(events, name).fire(**kwargs)
        raise StopUser()
