"""Urgency words every installation starts with (data migration) and the demo's routing
rules, skill groups and availability (seed_demo)."""

# (reason, level, term, is_pattern). Media and regulator words (媒体, 曝光, 记者, 12315,
# 消协, 黑猫, 律师, 起诉, 投诉到) live in the SLA risk settings and count as "media" here.
HIGH, MEDIUM = 3, 2
URGENCY_TERMS = [
    ("safety", HIGH, "起火", False),
    ("safety", HIGH, "着火", False),
    ("safety", HIGH, "冒烟", False),
    ("safety", HIGH, "爆炸", False),
    ("safety", HIGH, "漏电", False),
    ("safety", HIGH, "触电", False),
    ("safety", HIGH, "烫伤", False),
    ("safety", HIGH, "受伤", False),
    ("safety", HIGH, "中毒", False),
    ("safety", HIGH, "住院", False),
    ("safety", HIGH, "燃气泄漏", False),
    ("safety", HIGH, "煤气", False),
    ("safety", HIGH, "孩子误食", False),
    ("media", HIGH, "微博", False),
    ("media", HIGH, "抖音", False),
    ("media", HIGH, "朋友圈曝光", False),
    ("regulator", HIGH, "市场监管", False),
    ("regulator", HIGH, "工商局", False),
    ("regulator", HIGH, "消费者协会", False),
    ("regulator", HIGH, "315", False),
    ("legal", HIGH, "法院", False),
    ("legal", HIGH, "律师函", False),
    ("legal", HIGH, "诉讼", False),
    ("legal", HIGH, "报警", False),
    ("legal", HIGH, "欺诈", False),
    ("legal", HIGH, "假一赔", False),
    ("emotion", MEDIUM, "气死", False),
    ("emotion", MEDIUM, "忍无可忍", False),
    ("emotion", MEDIUM, "太过分", False),
    ("emotion", MEDIUM, "骗子", False),
    ("emotion", MEDIUM, "无耻", False),
    ("emotion", MEDIUM, "最后一次", False),
    ("emotion", MEDIUM, "再也不", False),
    ("emotion", MEDIUM, "[!！]{3,}", True),
    ("emotion", MEDIUM, "投诉(了)?(\\d+|[两三四五六七八九十])次", True),
]


def ensure_urgency_terms(term_model=None) -> int:
    """Create the starting urgency words that are missing (idempotent)."""
    if term_model is None:
        from .models import UrgencyTerm

        term_model = UrgencyTerm
    created = 0
    for reason, level, term, is_pattern in URGENCY_TERMS:
        _row, made = term_model.objects.get_or_create(
            term=term, reason=reason, defaults={"level": level, "is_pattern": is_pattern}
        )
        created += made
    return created


def _train_if_untrained(write) -> None:
    """A first category model from the demo's resolved tickets, so suggestions show."""
    from . import classifier
    from .models import CategoryModel

    if CategoryModel.objects.exists():
        return
    try:
        result = classifier.train_and_store()
    except classifier.NotEnoughData as exc:
        write(f"分诊 Triage: no category model yet ({exc})")
        return
    write(
        f"分诊 Triage: category model trained on {result.samples} resolved tickets "
        f"({result.classes} categories)."
    )


def seed_triage_demo(*, users: dict, teams: dict, write=print) -> None:
    """Demo skill groups, availability and routing rules (idempotent, a few queries)."""
    from channels.models import Channel, ChannelKind
    from complaints.models import Category, Impact, Level, Priority

    from .models import AgentAvailability, RoutingRule, SkillGroup

    categories = {c.code: c for c in Category.objects.all()}
    groups = {
        "物流组 Logistics": ("team-a", ["agent", "agent2"], ["logistics", "returns"]),
        "售后组 After-sales": (
            "team-b",
            ["agent3", "agent4"],
            ["install-delay", "repair-response"],
        ),
        "综合组 General": ("team-a", ["agent", "agent2", "senior"], ["quality", "attitude"]),
    }
    made_groups = {}
    for name, (team, members, skills) in groups.items():
        if team not in teams:
            continue
        group, created = SkillGroup.objects.get_or_create(
            name=name,
            defaults={
                "team": teams[team],
                "strategy": SkillGroup.Strategy.LEAST_OPEN
                if "General" in name
                else SkillGroup.Strategy.ROUND_ROBIN,
                "max_open_per_agent": 40,
            },
        )
        if created:
            group.members.set([users[u] for u in members if u in users])
            group.categories.set([categories[c] for c in skills if c in categories])
        made_groups[name] = group
    for username in ("agent", "agent2", "agent3", "agent4", "senior", "senior2"):
        if username in users:
            AgentAvailability.objects.get_or_create(
                user=users[username],
                defaults={
                    "status": AgentAvailability.Status.AWAY
                    if username == "agent4"
                    else AgentAvailability.Status.ON_DUTY
                },
            )
    _train_if_untrained(write)
    if RoutingRule.objects.exists():
        write("分诊 Triage: routing rules already present, none added.")
        return
    rules = [
        RoutingRule(
            name="安全事件 Safety",
            position=10,
            keywords="起火\n冒烟\n爆炸\n漏电\n触电",
            set_category=categories.get("quality"),
            set_amount_level=Level.MEDIUM,
            set_impact=Impact.GROUP,
            set_urgency=Level.HIGH,
            assign_skill_group=made_groups.get("综合组 General"),
            add_watcher=users.get("supervisor"),
            stop_processing=True,
        ),
        RoutingRule(
            name="监管转办 Regulator",
            position=20,
            set_impact=Impact.PUBLIC,
            set_priority=Priority.P1,
            add_watcher=users.get("supervisor"),
            raise_risk="media_words",
            risk_message="监管部门转办投诉",
            stop_processing=False,
        ),
        RoutingRule(
            name="物流延误 Logistics",
            position=30,
            keywords="快递\n物流\n配送\n发货\n没收到",
            set_category=categories.get("logistics"),
            set_amount_level=Level.LOW,
            set_impact=Impact.INDIVIDUAL,
            set_urgency=Level.MEDIUM,
            assign_skill_group=made_groups.get("物流组 Logistics"),
            stop_processing=True,
        ),
        RoutingRule(
            name="大额订单 Large order",
            position=40,
            amount_min=5000,
            set_priority=Priority.P2,
            set_amount_level=Level.HIGH,
            stop_processing=False,
        ),
        RoutingRule(
            name="VIP 客户 VIP",
            position=50,
            vip_min_level=3,
            set_priority=Priority.P2,
            assign_team=teams.get("team-a"),
            stop_processing=False,
        ),
        RoutingRule(
            name="夜间热线 Night hotline",
            position=60,
            hour_from=22,
            hour_to=7,
            assign_team=teams.get("team-b"),
            stop_processing=False,
        ),
    ]
    RoutingRule.objects.bulk_create(rules)
    saved = {r.name: r for r in RoutingRule.objects.all()}
    saved["监管转办 Regulator"].channels.set(Channel.objects.filter(kind=ChannelKind.REGULATOR))
    saved["夜间热线 Night hotline"].channels.set(Channel.objects.filter(kind=ChannelKind.HOTLINE))
    write(
        f"分诊 Triage: {len(rules)} routing rules, {len(made_groups)} skill groups, "
        "agent availability."
    )
