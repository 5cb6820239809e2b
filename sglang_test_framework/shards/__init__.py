"""Client shards: one part of a workload's schedule, sent by one client process.

:class:`~.runner.ShardRunner` is the transport-agnostic job (a :class:`~.runner.ShardSpec` in, records
and a :class:`~sglang_test_framework.records.ClientProcessStats` out); :mod:`.pool` runs N of them as
local worker processes (:mod:`.worker`, framed by :mod:`.wire`) and merges their records into the
driver's one stream. Kept light on imports: a worker process imports this package, not the scenarios.
"""

from __future__ import annotations
