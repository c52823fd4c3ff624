"""Daily rollups the management dashboard reads (see docs/metrics.md).

One row per (day the tickets were received, channel, category, team) holds the counts
and sums every KPI is computed from, so a year of dashboard reads a few hundred
thousand small rows instead of a million tickets with their clocks, surveys, tasks
and compensations. Rows are rebuilt (never edited) by `dashboard.rollups.refresh`,
which django-q2 runs on a schedule; the current day is always computed live.
"""

from django.db import models

from complaints.models import Category, Channel, Department

# Survey dimensions (Survey.DIMENSIONS): per dimension a sum, a count of answers and a
# count of satisfied answers (4 or 5 out of 5).
DIMENSIONS = ("efficiency", "attitude", "clarity", "resolution", "empathy")
# SLA stages (sla.models.STAGE_ORDER) with the column prefix of their counts.
STAGE_PREFIX = {
    "first_response": "fr",
    "assessment": "as",
    "solution": "so",
    "closure": "cl",
}


class RollupKey(models.Model):
    day = models.DateField()
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    category = models.ForeignKey(
        Category, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    team = models.ForeignKey(
        Department, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return (
            f"{self.day} channel {self.channel_id} category {self.category_id} team {self.team_id}"
        )


def _count():
    return models.PositiveIntegerField(default=0)


class TicketCounts(models.Model):
    """Tickets received (merged tickets left out) and what became of them."""

    received = _count()
    repeats = _count()
    resolved = _count()
    complete = _count()
    first_contact = _count()
    handling_seconds = models.BigIntegerField(default=0)
    fr_on_time = _count()
    fr_late = _count()
    as_on_time = _count()
    as_late = _count()
    so_on_time = _count()
    so_late = _count()
    cl_on_time = _count()
    cl_late = _count()
    surveys = _count()
    overall_n = _count()
    promoters = _count()
    detractors = _count()
    efficiency_sum = _count()
    efficiency_n = _count()
    efficiency_satisfied = _count()
    attitude_sum = _count()
    attitude_n = _count()
    attitude_satisfied = _count()
    clarity_sum = _count()
    clarity_n = _count()
    clarity_satisfied = _count()
    resolution_sum = _count()
    resolution_n = _count()
    resolution_satisfied = _count()
    empathy_sum = _count()
    empathy_n = _count()
    empathy_satisfied = _count()

    class Meta:
        abstract = True


class TicketDay(RollupKey, TicketCounts):
    """The tickets received on `day`."""

    class Meta:
        indexes = [
            models.Index(fields=["day"], name="dash_ticketday_day"),
            # PostgreSQL: the volume, channel, category and last-year reads scan only this.
            models.Index(
                fields=["day", "channel"],
                include=["category", "team", "received"],
                name="dash_ticketday_counts",
            ),
        ]


class TaskCounts(models.Model):
    """Collaboration tasks (cancelled ones left out) on the tickets received."""

    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+")
    opened = _count()
    responded = _count()
    responded_on_time = _count()
    response_seconds = models.BigIntegerField(default=0)
    completed = _count()
    completion_seconds = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class TaskDay(RollupKey, TaskCounts):
    class Meta:
        indexes = [models.Index(fields=["day"], name="dash_taskday_day")]


class CompensationCounts(models.Model):
    """Granted and approved compensation on the tickets received, per kind."""

    kind = models.CharField(max_length=20)
    count = _count()
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    class Meta:
        abstract = True


class CompensationDay(RollupKey, CompensationCounts):
    class Meta:
        indexes = [models.Index(fields=["day"], name="dash_compday_day")]


# The same sums per calendar month (`day` is the month's first day), rebuilt from the
# day rows whenever a day of the month is: a year reads ~12 rows per key, not ~365.


class TicketMonth(RollupKey, TicketCounts):
    class Meta:
        indexes = [models.Index(fields=["day"], name="dash_ticketmonth_day")]


class TaskMonth(RollupKey, TaskCounts):
    class Meta:
        indexes = [models.Index(fields=["day"], name="dash_taskmonth_day")]


class CompensationMonth(RollupKey, CompensationCounts):
    class Meta:
        indexes = [models.Index(fields=["day"], name="dash_compmonth_day")]


class RollupState(models.Model):
    """One row: when the rollups were last rebuilt, and the lock refreshes queue on."""

    refreshed_at = models.DateTimeField(null=True, blank=True)
    first_day = models.DateField(null=True, blank=True)
    last_day = models.DateField(null=True, blank=True)
    # Bumped by every refresh: cached reads of the stored rows are keyed on it.
    version = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"rollups {self.first_day}..{self.last_day} as of {self.refreshed_at}"
