"""Default SLA policies: one per priority with the departments' targets (4 h / 24 h / 72 h / 5 d)."""

from complaints.models import Priority

from .models import PolicyTerms


def ensure_default_policies(policy_model=None, version_model=None) -> None:
    """Create a 24×7 default policy (version 1) for each priority if it has none (idempotent).

    The data migration passes its historical models; tests use the defaults.
    """
    if policy_model is None or version_model is None:
        from .models import SlaPolicy, SlaPolicyVersion

        policy_model, version_model = SlaPolicy, SlaPolicyVersion
    for value in Priority.values:
        if policy_model.objects.filter(priority=value).exists():
            continue
        name = f"P{value} default"
        policy = policy_model.objects.create(name=name, priority=value)
        # A historical model (the data migration) may lack terms added since.
        known = {f.name for f in policy_model._meta.get_fields()}
        terms = {
            field: getattr(policy, field) for field in PolicyTerms.TERM_FIELDS if field in known
        }
        version = version_model.objects.create(policy=policy, number=1, **terms)
        policy.current_version = version
        policy.save(update_fields=["current_version"])
