"""The compose generator behind ``hgc compose``: one service per node of a scenario's plan,
Prometheus and Grafana beside them. The container entry point and health check the image
runs live with the services (``services.common.entrypoint``, ``services.common.health``).
See ``docs/containers.md``."""
