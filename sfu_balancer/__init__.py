"""sfu-balancer: routing and signaling for self-hosted video conferencing.

Importing this package stays cheap on purpose: bridges import ``sfu_balancer.wire`` and the
simulator imports ``sfu_balancer.core``, and neither may pull in aiohttp or redis.
"""

__version__ = "0.1.0"
