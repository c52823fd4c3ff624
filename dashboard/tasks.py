"""django-q2 tasks that keep the dashboard's rollups current (schedules: `sla_schedule`)."""

from django.conf import settings

from . import rollups


def refresh_recent():
    """Every 10 minutes: the days whose tickets still change (surveys, call-backs, SLA)."""
    result = rollups.refresh_recent(settings.CLOSELOOP_DASHBOARD_REFRESH_DAYS)
    return {"first": str(result.first), "last": str(result.last), "rows": result.tickets}


def refresh_year():
    """Nightly: the last 400 days, for the rare late change to an older ticket."""
    result = rollups.refresh_recent(400)
    return {"first": str(result.first), "last": str(result.last), "rows": result.tickets}
