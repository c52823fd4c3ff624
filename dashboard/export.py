"""The dashboard as an xlsx workbook: one sheet per panel, the same figures as the page."""

import io

from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font


def _pct(value):
    return None if value is None else round(value, 2)


def _sheet(book, title, header, rows):
    sheet = book.create_sheet(title=title[:31])
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
    for column in sheet.columns:
        width = max(len(str(c.value or "")) for c in column)
        sheet.column_dimensions[column[0].column_letter].width = min(max(width + 2, 10), 40)
    return sheet


def workbook(board) -> bytes:
    f = board.filters
    book = Workbook()
    book.remove(book.active)
    kpis = [
        (_("Period"), f"{f.first} – {f.last}", ""),
        (_("Tickets received"), board.received, ""),
        (_("Same period last year"), board.previous_received, ""),
        (_("Year-on-year change %"), _pct(board.yoy_percent), ""),
        (_("Repeat-complaint rate %"), _pct(board.repeat.percent), _denominator(board.repeat)),
        (
            _("First-contact resolution %"),
            _pct(board.first_contact.percent),
            _denominator(board.first_contact),
        ),
        (
            _("Data completeness %"),
            _pct(board.completeness.percent),
            _denominator(board.completeness),
        ),
        (_("Average handling time (hours)"), _pct(board.handling_hours), board.resolved),
        (_("NPS"), _pct(board.nps), board.nps_responses),
        (_("Compensation (CNY)"), float(board.compensation_total), board.compensation_count),
    ]
    kpis += [(s.label + " %", _pct(s.rate.percent), _denominator(s.rate)) for s in board.sla]
    _sheet(book, _("Summary"), [_("Measure"), _("Value"), _("Out of")], kpis)
    _sheet(
        book,
        _("Volume"),
        [_("Period"), _("Received"), _("Same period last year")],
        [(b.label, b.received, b.previous) for b in board.volume],
    )
    _sheet(
        book,
        _("Channels"),
        [_("Channel"), _("Tickets"), _("Share %")],
        [(s.label, s.count, _pct(s.percent)) for s in board.channels],
    )
    _sheet(
        book,
        _("Categories"),
        [_("Category"), _("Tickets"), _("Share %"), _("Cumulative %")],
        [(s.label, s.count, _pct(s.percent), _pct(s.cumulative)) for s in board.pareto],
    )
    _sheet(
        book,
        _("Satisfaction"),
        [_("Dimension"), _("Average (1–5)"), _("Satisfied (4–5) %"), _("Answers")],
        [
            (d.label, _pct(d.average), _pct(d.satisfied.percent), d.answers)
            for d in board.dimensions
        ],
    )
    _sheet(
        book,
        _("Departments"),
        [
            _("Department"),
            _("Tasks"),
            _("Claimed"),
            _("Average response (hours)"),
            _("Claimed in time %"),
            _("Completed"),
            _("Average completion (hours)"),
        ],
        [
            (
                d.name,
                d.opened,
                d.responded,
                _pct(d.response_hours),
                _pct(d.on_time.percent),
                d.completed,
                _pct(d.completion_hours),
            )
            for d in board.departments
        ],
    )
    _sheet(
        book,
        _("Compensation"),
        [_("Kind"), _("Count"), _("Amount (CNY)")],
        [(c.label, c.count, float(c.amount)) for c in board.compensation],
    )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _denominator(rate):
    return rate.denominator
