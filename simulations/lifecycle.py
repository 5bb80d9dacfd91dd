"""Bridge lifecycle states per (replica, bridge), shared by the fleet and the compiled passes.

OFF -> PROVISIONING -> SERVING -> DRAINING -> OFF, and FAILED from any state; the order of the
codes matters: PROVISIONING <= state <= DRAINING is "up" (paid for) and
SERVING <= state <= DRAINING is "live" (carrying media).
"""

OFF, PROVISIONING, SERVING, DRAINING, FAILED = 0, 1, 2, 3, 4
