"""What the chart script (static/js/dashboard.js) draws: plain numbers and labels.

Rendered into the page with `json_script`, so the strict CSP (no inline scripts) holds;
the same figures are in the tables beside each chart.
"""

from django.utils.translation import gettext as _


def _round(value, places=1):
    return None if value is None else round(value, places)


def chart_data(board) -> dict:
    return {
        "volume": {
            "labels": [b.label for b in board.volume],
            "series": [
                {"label": _("Received"), "data": [b.received for b in board.volume]},
                {"label": _("Same period last year"), "data": [b.previous for b in board.volume]},
            ],
        },
        "channels": {
            "labels": [s.label for s in board.channels],
            "data": [s.count for s in board.channels],
        },
        "pareto": {
            "labels": [s.label for s in board.pareto],
            "data": [s.count for s in board.pareto],
            "cumulative": [_round(s.cumulative) for s in board.pareto],
            "countLabel": _("Tickets"),
            "cumulativeLabel": _("Cumulative %"),
        },
        "sla": {
            "labels": [s.label for s in board.sla],
            "data": [_round(s.rate.percent) for s in board.sla],
            "label": _("Within target %"),
        },
        "satisfaction": {
            "labels": [d.label for d in board.dimensions],
            "data": [_round(d.average, 2) for d in board.dimensions],
            "label": _("Average (1–5)"),
        },
        "departments": {
            "labels": [d.name for d in board.departments],
            "data": [_round(d.response_hours) for d in board.departments],
            "label": _("Average response (hours)"),
        },
        "compensation": {
            "labels": [c.label for c in board.compensation],
            "data": [float(c.amount) for c in board.compensation],
            "label": _("Amount (CNY)"),
        },
    }
