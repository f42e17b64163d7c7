"""Reading a Prometheus scrape as Prometheus does (prometheus-client's own text parser)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


@dataclass(frozen=True)
class Scrape:
    types: dict[str, str]  # family name → type
    samples: list[tuple[str, dict[str, str], float]]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        types: dict[str, str] = {}
        samples: list[tuple[str, dict[str, str], float]] = []
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            samples += [(s.name, dict(s.labels), float(s.value)) for s in family.samples]
        return cls(types, samples)

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels` (0 if none)."""
        return sum(v for n, lab, v in self.samples if n == name and labels.items() <= lab.items())

    def series_names(self) -> set[str]:
        """Every name a query may use: each family's with the suffixes its type gives it."""
        return {name + suffix for name, kind in self.types.items() for suffix in SUFFIXES.get(kind, ("",))}
