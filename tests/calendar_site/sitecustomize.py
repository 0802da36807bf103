"""Started by every Python process a moved-calendar test run starts (``pytest --calendar``):
move this process's wall clock by the same offset as the run's, so parent and child agree on
the date. Does nothing when the offset is not set."""

import datetime as dt
import os

_offset = os.environ.get("TAXBRIDGE_TEST_CALENDAR_OFFSET")
if _offset:
    import time_machine

    _traveller = time_machine.travel(
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=float(_offset)), tick=True
    )
    _traveller.start()
