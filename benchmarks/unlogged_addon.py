"""schoolgate with its incident log turned off: the baseline `writer.py` measures logging against.

The same addon in every respect but `_record`, which still returns a reference number for the
block page but builds, queues and writes no row (and logs no line for it). Not a feature:
the school's policy says every attempt is recorded, so only this benchmark turns it off.
"""

from __future__ import annotations

from addons.incidents import new_incident_id
from addons.schoolgate import SchoolGate


class Unlogged(SchoolGate):
    def _record(self, *_: object) -> int:
        return new_incident_id()


addons = [Unlogged()]
