"""Reference data of the knowledge base (a data migration, seed_demo and tests use it)."""

# Phrases from the field that ended up in complaint videos, each with what to say instead.
FORBIDDEN_PHRASES = [
    ("系统没提示", "非常抱歉给您带来不便，我马上帮您核实系统记录，并在今天内给您答复。"),
    ("这不是我们责任", "我理解您的心情，我们会先帮您把问题解决，再和相关方核实原因。"),
    ("这不是我们的责任", "我理解您的心情，我们会先帮您把问题解决，再和相关方核实原因。"),
    ("不归我们管", "这个问题我来帮您联系负责的部门，并跟进到有结果为止。"),
    ("我也没办法", "我先为您记录下来，马上请相关同事一起想办法，稍后给您回复。"),
    ("你自己去问", "我来帮您联系对应的部门，您不用再跑一趟。"),
    ("公司规定就是这样", "我向您解释一下这项规定的原因，也看看有没有其他方式能帮到您。"),
    ("你爱投诉就投诉", "非常抱歉让您不满意，您的意见我们会认真记录并尽快处理。"),
    ("不可能", "我先帮您核实一下具体情况，再给您准确的答复。"),
]

SYNONYM_GROUPS = [
    "快递 物流 配送 送货",
    "退款 退钱 返款",
    "退货 退换 换货",
    "客服 售后 服务人员",
    "坏了 故障 损坏 有问题",
    "发票 票据",
    "会员卡 会员 积分",
]

# Categories whose knowledge changes fast (carriers, prices, rules): weekly review.
FAST_MOVING_CATEGORIES = ["logistics", "policy", "returns"]


def ensure_kb_reference_data(
    phrase_model=None, synonym_model=None, policy_model=None, category_model=None
) -> None:
    """Idempotent: rows an admin changed or deleted-and-recreated are left alone."""
    if phrase_model is None:
        from complaints.models import Category

        from .models import CategoryReviewPolicy, ForbiddenPhrase, SynonymGroup

        phrase_model, synonym_model = ForbiddenPhrase, SynonymGroup
        policy_model, category_model = CategoryReviewPolicy, Category
    for phrase, approved in FORBIDDEN_PHRASES:
        phrase_model.objects.get_or_create(phrase=phrase, defaults={"approved_wording": approved})
    if not synonym_model.objects.exists():
        synonym_model.objects.bulk_create(synonym_model(words=w) for w in SYNONYM_GROUPS)
    for category in category_model.objects.filter(code__in=FAST_MOVING_CATEGORIES):
        policy_model.objects.get_or_create(category=category, defaults={"fast_moving": True})
