"""The application layer: the ``hgc`` command and what it drives.

``hgc.cli`` and ``hgc.commands`` (one module per sub-command), ``hgc.testbed`` (the launcher
behind ``hgc run``), ``hgc.compose`` (the compose generator) and ``hgc.cluster`` (local
clusters of real processes or threads). It may import everything below it (``services``,
``common``); nothing below imports it (docs/architecture.md, tests/unit/test_layering.py).
"""
