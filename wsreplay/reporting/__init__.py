"""The self-contained HTML fleet health report (``wsreplay report CAPTURE``)."""

from __future__ import annotations

from .build import REPORT_COLUMNS, Report, default_output, report, write_report

__all__ = ["Report", "report", "write_report", "default_output", "REPORT_COLUMNS"]
