"""Read a process's ``/metrics`` over plain HTTP on loopback (tests, bench, the launcher's
end-of-run check). Returns parsed families so callers compare values, not text."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def scrape(host: str, port: int, timeout: float = 5.0) -> dict[str, list[Sample]]:
    """family name -> samples (histogram families keep their _bucket/_sum/_count samples;
    counters are keyed without the ``_total`` suffix, as the parser reports them)."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as resp:
        text = resp.read().decode()
    families: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = [
            Sample(s.name, dict(s.labels), float(s.value)) for s in family.samples
        ]
    return families


def value(families: dict[str, list[Sample]], sample: str, **labels: str) -> float | None:
    """The value of one sample (exact name, labels a subset match); None if absent."""
    for samples in families.values():
        for s in samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def total(families: dict[str, list[Sample]], sample: str) -> float:
    """Sum of a sample over all its label values (e.g. stragglers over every worker)."""
    return sum(s.value for ss in families.values() for s in ss if s.name == sample)
