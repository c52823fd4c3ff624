"""django-q2 tasks of smart triage."""

from . import classifier, services


def train():
    """Run nightly by the `triage-train` schedule (see the `triage_schedule` command)."""
    try:
        result = services.train()
    except classifier.NotEnoughData as exc:
        # Not an error on a young installation: there is nothing to learn from yet.
        return {"trained": False, "reason": str(exc)}
    return {
        "trained": True,
        "samples": result.samples,
        "classes": result.classes,
        "holdout_accuracy": result.holdout_accuracy,
    }
