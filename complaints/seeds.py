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
