"""What the repaying users report while a run goes on, as Locust event hooks.

The users fire these; whatever shows a run live (the Prometheus exporter, the web UI tab)
listens. They carry what the client saw, so they mean the same in live and target runs: a
read is stale when it shows neither usable nor a legitimate hold
(docs/reference/target-file.md). Times are scenario seconds.
"""

from __future__ import annotations

from locust.event import EventHook

__all__ = ["repayment_acked", "read_seen", "user_done"]

#: Fired once per acknowledged repayment, with ``scenario`` (its name) and ``ack_at``
#: (scenario seconds since the run's start).
repayment_acked = EventHook()

#: Fired once per status read a user makes after its ack, with ``scenario``, ``usable`` and
#: ``hold`` (what the read showed), ``since_ack_s`` (from the ack to the read's instant) and
#: ``index`` (0 for the user's first look); and once per look of the holder of an account a
#: fault wrote a debt on (docs/explanation/semantics.md, 10b) with ``holder=True``,
#: ``since_ack_s`` then from the write. A holder's looks count in reads and stale reads, as
#: in result.json, but its account is no repayment: no affected user.
read_seen = EventHook()

#: Fired when a user stops reading, with ``scenario``, ``support_contact`` (it used every
#: check and saw only stale reads) and ``first_usable_s`` (from the ack to its first usable
#: read, or None).
user_done = EventHook()
