"""Markdown building blocks shared by the sections of RESULTS.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    """A number for a table cell; "-" when it was not measured."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def escape(text: str) -> str:
    """Free text (an error message) made safe for one table cell."""
    return text.replace("|", "/").replace("\n", " ")[:400]


def table_head(columns: list[str]) -> list[str]:
    """The header line and the rule line of a table."""
    return [table_row(columns), "|" + "---|" * len(columns)]


def table_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def problem_cell(record: dict[str, Any]) -> str:
    """Why a cell has no figures: it did not start, or it failed."""
    if record.get("did_not_start"):
        return escape(f"did not start: {record['did_not_start']}")
    return escape(f"failed: {record.get('failed')}")


def rps_cell(record: dict[str, Any]) -> str:
    """req/s of a measured cell, with the min-max over its runs when it was repeated."""
    text = fmt(record["result"].get("rps"))
    if record.get("rps_range") and record.get("runs", 1) > 1:
        low, high = record["rps_range"]
        text += f" ({low:,.0f}-{high:,.0f})"
    return text


def workers_label(n: int) -> str:
    return f"{n} worker" + ("s" if n > 1 else "")


@dataclass
class Verdict:
    target: str
    measured: str
    ratio: float | None
    met: bool | None  # None: could not be measured

    def row(self) -> str:
        status = "n/a (not measured)" if self.met is None else ("**met**" if self.met else "**missed**")
        return table_row([self.target, self.measured, fmt(self.ratio, 2, "x"), status])


VERDICT_HEAD = table_head(["target", "measured", "ratio", "verdict"])
