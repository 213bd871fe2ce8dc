"""The image's HEALTHCHECK: healthy when the service answers on its ``/metrics`` port
(``HGC_METRICS_PORT``, default 9100). Exit 0 healthy, 1 not."""

from __future__ import annotations

import os
import sys
import urllib.request

# = common.runtime.metrics.HEALTH_USER_AGENT (not imported: the check must start quickly on
# a loaded Pi; a unit test keeps the two equal).
HEALTH_USER_AGENT = "hgc-health"

DEFAULT_METRICS_PORT = 9100


def main() -> int:
    port = os.environ.get("HGC_METRICS_PORT", str(DEFAULT_METRICS_PORT))
    try:
        # Identified, so a node's end-of-run linger never mistakes it for a scrape.
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics", headers={"User-Agent": HEALTH_USER_AGENT}
        )
        with urllib.request.urlopen(request, timeout=3) as resp:
            return 0 if resp.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: /metrics on port {port}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
