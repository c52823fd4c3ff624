"""Demo knowledge for `manage.py seed_demo`: articles, SOP templates with scripts, and
search tokens for the bulk-built demo tickets. Idempotent and fast (~2 s)."""

from complaints.models import Category

from . import services
from .models import Article, ArticleStatus, ScriptKind, SopTemplate
from .seeds import ensure_kb_reference_data

# (category code, title, tags, Markdown body)
ARTICLES = [
    (
        "logistics",
        "快递延误处理流程",
        "物流 延误 催件",
        "## 适用\n包裹超过承诺时效未送达。\n\n1. 在物流系统核实轨迹\n2. 联系**物流部**加急派送\n"
        "3. 超过 3 天未动：补发并赠送运费券（一线可直接发放 ¥10 以内）",
    ),
    (
        "logistics",
        "包裹显示签收但客户没收到",
        "签收 丢件",
        "先核实签收人与签收照片；24 小时内联系快递员确认投递位置，仍未找到按丢件补发。",
    ),
    (
        "returns",
        "七天无理由退货规则",
        "退货 七天",
        "商品完好、配件齐全即可在签收后 7 天内申请退货，运费由我方承担的情形见附表。",
    ),
    (
        "returns",
        "退款到账时间说明",
        "退款 到账",
        "退款审核通过后**原路退回**：支付宝/微信 1 个工作日内，银行卡 1-3 个工作日，信用卡最长 7 个工作日。",
    ),
    (
        "quality",
        "笔记本电脑屏幕故障处理",
        "电脑 屏幕 维修",
        "屏幕闪烁、亮点、坏点：先远程指导更新显卡驱动；硬件问题安排上门检测，7 天内可换新。",
    ),
    (
        "quality",
        "酒店房间隔音差的投诉",
        "酒店 隔音 换房",
        "客人反映隔音差、噪音大：前台立即安排换房并致歉，必要时赠送早餐券。",
    ),
    (
        "install-delay",
        "安装师傅未按约上门",
        "安装 改约",
        "联系安装部确认原因，2 小时内给客户新的上门时间；延误超过 24 小时赠送延保。",
    ),
    (
        "repair-response",
        "维修进度查询话术",
        "维修 进度",
        "告诉客户维修单号、当前环节和预计完成时间；超时未完成的主动致电说明。",
    ),
    (
        "account",
        "账户被锁定或无法登录",
        "登录 密码 账户",
        "核实身份后可重置密码；多次失败被锁定的 30 分钟后自动解锁，紧急情况由技术部手动解锁。",
    ),
    (
        "attitude",
        "客户投诉服务态度",
        "态度 致歉",
        "先诚恳致歉，不争辩；记录涉事人员与时间，交由组长 24 小时内回访。",
    ),
    (
        "policy",
        "发票开具与补开",
        "发票 开票",
        "订单完成后可在订单页申请电子发票；补开纸质发票需 3-5 个工作日。",
    ),
]

FIRST = (
    "{customer_name}您好，您的投诉已受理，工单号 {ticket_number}。我们将在 {deadline} 前"
    "回复处理结果，您也可以随时通过 {status_url} 输入工单号和手机后四位查询进度。"
)
SOPS = [
    (
        None,
        "通用投诉 SOP",
        [("核实客户诉求与订单信息", 2), ("给出处理方案", 24), ("回访确认满意", 72)],
        {
            ScriptKind.FIRST_RESPONSE: FIRST,
            ScriptKind.APOLOGY: "{customer_name}，非常抱歉给您带来不便，我们一定跟进到底。",
        },
    ),
    (
        "logistics",
        "物流配送 SOP",
        [("核实物流轨迹", 2), ("联系物流部加急或补发", 8), ("确认客户签收", 48), ("回访", 72)],
        {
            ScriptKind.FIRST_RESPONSE: FIRST,
            ScriptKind.SOLUTION: "{customer_name}您好，您的包裹已安排加急派送/补发，工单 {ticket_number}。",
            ScriptKind.FOLLOW_UP: "{customer_name}您好，请问包裹收到了吗？对处理结果还满意吗？",
            ScriptKind.APOLOGY: "{customer_name}，包裹延误给您添麻烦了，非常抱歉。",
        },
    ),
    (
        "quality",
        "产品质量 SOP",
        [("收集照片或视频证据", 4), ("品控部检测", 48), ("换新或退款", 72)],
        {
            ScriptKind.FIRST_RESPONSE: FIRST,
            ScriptKind.SOLUTION: "{customer_name}您好，经检测确认为质量问题，我们将为您换新，工单 {ticket_number}。",
        },
    ),
]


def seed_kb_demo(*, admin, write=print) -> None:
    ensure_kb_reference_data()
    filled = services.reindex_tickets(only_missing=True)
    categories = {c.code: c for c in Category.objects.all()}
    created = 0
    if not Article.objects.exists():
        for code, title, tags, body in ARTICLES:
            services.article_create(
                actor=admin,
                title=title,
                body=body,
                tags=tags,
                category=categories.get(code),
                status=ArticleStatus.PUBLISHED,
            )
            created += 1
    templates = 0
    if not SopTemplate.objects.exists():
        for code, name, steps, scripts in SOPS:
            services.sop_template_create(
                actor=admin,
                name=name,
                category=categories.get(code) if code else None,
                steps=steps,
                scripts=scripts,
            )
            templates += 1
    write(
        f"知识库 Knowledge base: {created} articles, {templates} SOP templates created; "
        f"search tokens for {filled} tickets."
    )
