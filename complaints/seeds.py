"""Reference data every installation starts with (used by a data migration and seed_demo)."""

# (code, name, children[(code, name)]) — the seeds' two-level category tree.
CATEGORIES = [
    ("quality", "产品质量", []),
    ("logistics", "物流配送", []),
    ("after-sales", "售后服务", [("install-delay", "安装延误"), ("repair-response", "维修响应")]),
    ("returns", "退换货政策", []),
    ("attitude", "服务态度", []),
    ("account", "账户异常", []),
    ("policy", "政策解释", []),
    ("other", "其他", []),
]

COLLABORATING_DEPARTMENTS = [
    ("logistics", "物流部"),
    ("tech", "技术部"),
    ("warehouse", "仓储部"),
    ("installation", "安装部"),
    ("sales", "销售部"),
    ("quality", "品控部"),
]


def ensure_reference_data(category_model=None, department_model=None) -> None:
    """Create the category tree and collaborating departments if missing (idempotent).

    The data migration passes its historical models; tests and seed_demo use the defaults.
    """
    if category_model is None or department_model is None:
        from .models import Category, Department

        category_model, department_model = Category, Department
    for order, (code, name, children) in enumerate(CATEGORIES):
        root, _ = category_model.objects.get_or_create(
            code=code, defaults={"name": name, "sort_order": order * 10}
        )
        for child_order, (child_code, child_name) in enumerate(children):
            category_model.objects.get_or_create(
                code=child_code,
                defaults={"name": child_name, "parent": root, "sort_order": child_order},
            )
    for code, name in COLLABORATING_DEPARTMENTS:
        department_model.objects.get_or_create(
            code=code, defaults={"name": name, "kind": "collaborating"}
        )


# Default authority per tier on one ticket, in CNY (admins edit them).
COMPENSATION_LIMITS = {1: "10.00", 2: "100.00", 3: "5000.00"}

# Default (response, completion) hours of collaboration tasks per department; the
# technical department answers within 2 h and finishes in 24 h ("green channel").
DEPARTMENT_TASK_HOURS = {
    "logistics": (4, 48),
    "tech": (2, 24),
    "warehouse": (4, 48),
    "installation": (4, 72),
    "sales": (4, 48),
    "quality": (8, 72),
}


def ensure_collaboration_defaults(limit_model=None, department_model=None) -> None:
    """Create the tier limits and the departments' task deadlines if missing (idempotent).

    Departments still on the field defaults (4 h / 48 h) get their seeded values; values
    an admin changed are left alone.
    """
    if limit_model is None or department_model is None:
        from .models import CompensationLimit, Department

        limit_model, department_model = CompensationLimit, Department
    for tier, amount in COMPENSATION_LIMITS.items():
        limit_model.objects.get_or_create(tier=tier, defaults={"amount": amount})
    for code, (response, completion) in DEPARTMENT_TASK_HOURS.items():
        department_model.objects.filter(
            code=code, task_response_hours=4, task_completion_hours=48
        ).update(task_response_hours=response, task_completion_hours=completion)
