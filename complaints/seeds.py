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
