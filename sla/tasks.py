"""django-q2 tasks of the SLA engine."""

from django.core.mail import send_mail

from . import risks, services


def sweep():
    """Run every minute by the `sla-sweep` schedule (see the `sla_schedule` command)."""
    result = services.sweep()
    return {
        "tickets": result.tickets,
        "skipped": result.skipped,
        "failed": result.failed,
        "notified": result.notified,
    }


def send_email(subject: str, body: str, to: list[str]) -> int:
    """One SLA warning by e-mail, queued after the warning's transaction committed."""
    return send_mail(subject, body, None, to, fail_silently=False)


def risk_scan():
    """Run every five minutes by the `sla-risk-scan` schedule."""
    risks.scan()
