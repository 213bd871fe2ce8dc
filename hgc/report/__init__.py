"""The run report: one self-contained HTML page of a run folder (``hgc report``)."""

from hgc.report.page import REPORT_NAME, ReportError, render, write_report

__all__ = ["REPORT_NAME", "ReportError", "render", "write_report"]
