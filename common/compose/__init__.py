"""The containerised testbed: the compose generator (``hgc compose``), the container
entry point that applies a node's link profile with ``tc`` and then starts its service as an
unprivileged user, and the image's health check. See ``docs/containers.md``."""
