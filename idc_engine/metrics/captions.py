"""Caption metrics through pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L and CIDEr-D.

Predictions and references are tokenized together by the PTB tokenizer (Java), as in the COCO
caption evaluation. CIDEr-D's IDF comes from the evaluated references, so per-sample CIDEr-D is
always read from one corpus-level call: scoring a pair on its own gives zero.
Predictions are scored as they are; nothing is ever replaced by a reference.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")
MAIN_METRICS = ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")
# The PTB tokenizer maps a caption that is empty or only punctuation to "", which METEOR's Java
# process cannot parse; this token stands in for it and matches no reference word.
EMPTY_PREDICTION = "<empty>"


@dataclass
class CaptionScores:
    """Corpus-level scores and, per item id, that item's scores from the same corpus-level call."""

    corpus: dict[str, float]
    per_sample: dict[str, dict[str, float]] = field(default_factory=dict)


def require_java():
    if shutil.which("java") is None:
        raise RuntimeError(
            "pycocoevalcap's PTB tokenizer and METEOR run Java, and no `java` is on PATH; "
            "install a JRE (Debian/Ubuntu: apt-get install default-jre-headless)"
        )


def _check_inputs(predictions: dict, references: dict):
    if not predictions:
        raise ValueError("predictions: nothing to score (empty)")
    missing = [k for k in predictions if k not in references]
    if missing:
        raise ValueError(f"references: no references for prediction id {missing[0]!r} ({len(missing)} missing)")
    for key, refs in references.items():
        if key in predictions and (not refs or not all(isinstance(r, str) and r.strip() for r in refs)):
            raise ValueError(f"references[{key!r}]: needs at least one non-empty caption, got {refs!r}")
    for key, prediction in predictions.items():
        if not isinstance(prediction, str):
            raise ValueError(f"predictions[{key!r}]: must be a string, got {prediction!r}")


def tokenize(texts: dict[str, list[str]]) -> dict[str, list[str]]:
    """PTB-tokenize (lower-case, punctuation removed) ``{id: [caption, ...]}``.

    Runs the same Stanford PTBTokenizer as pycocoevalcap's ``PTBTokenizer``, with the same options and
    the same punctuation removal, but keeps the tool's stderr (a "PTBTokenizer tokenized N tokens"
    line per call) off the console, reports a failure with what Java said, and writes its input
    file to a temporary folder rather than into the installed package.
    """
    from pycocoevalcap.tokenizer import ptbtokenizer

    require_java()
    keys = list(texts)
    sentences = [caption.replace("\n", " ").replace("\r", " ") for key in keys for caption in texts[key]]
    jar = Path(ptbtokenizer.__file__).resolve().parent / ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR
    with tempfile.TemporaryDirectory(prefix="idc-ptb-") as folder:
        source = Path(folder) / "sentences.txt"
        source.write_text("\n".join(sentences), encoding="utf-8")
        command = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase"]
        done = subprocess.run([*command, str(source)], capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"PTB tokenizer (Java) failed: {done.stderr.decode(errors='replace').strip()[-500:]}")
    lines = done.stdout.decode("utf-8").split("\n")
    tokenized: dict[str, list[str]] = {key: [] for key in keys}
    position = 0
    for key in keys:
        for _ in texts[key]:
            line = lines[position] if position < len(lines) else ""
            words = [w for w in line.rstrip().split(" ") if w not in ptbtokenizer.PUNCTUATIONS]
            tokenized[key].append(" ".join(words))
            position += 1
    return tokenized


def score_captions(
    predictions: dict[str, str], references: dict[str, list[str]], metrics: tuple[str, ...] = METRICS
) -> CaptionScores:
    """Score ``predictions`` against ``references`` (both keyed by item id)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"metrics: unknown metric {unknown[0]!r}; choose from {METRICS}")
    _check_inputs(predictions, references)
    keys = list(predictions)
    combined = {f"r{i}": references[k] for i, k in enumerate(keys)}
    combined.update({f"p{i}": [predictions[k]] for i, k in enumerate(keys)})
    tokens = tokenize(combined)
    gts = {i: tokens[f"r{i}"] for i in range(len(keys))}
    res = {i: [tokens[f"p{i}"][0] or EMPTY_PREDICTION] for i in range(len(keys))}

    corpus: dict[str, float] = {}
    per_item: dict[str, np.ndarray] = {}
    bleu_wanted = [m for m in metrics if m.startswith("BLEU")]
    if bleu_wanted:
        bleu, bleu_items = Bleu(4).compute_score(gts, res, verbose=0)
        for n in range(4):
            name = f"BLEU-{n + 1}"
            if name in metrics:
                corpus[name], per_item[name] = float(bleu[n]), np.asarray(bleu_items[n])
    if "METEOR" in metrics:
        meteor = Meteor()
        try:
            score, items = meteor.compute_score(gts, res)
        finally:
            _stop_meteor(meteor)
        corpus["METEOR"], per_item["METEOR"] = float(score), np.asarray(items)
    if "ROUGE-L" in metrics:
        score, items = Rouge().compute_score(gts, res)
        corpus["ROUGE-L"], per_item["ROUGE-L"] = float(score), np.asarray(items)
    if "CIDEr-D" in metrics:
        score, items = Cider().compute_score(gts, res)
        corpus["CIDEr-D"], per_item["CIDEr-D"] = float(score), np.asarray(items)

    ordered = {m: corpus[m] for m in metrics}
    per_sample = {k: {m: float(per_item[m][i]) for m in metrics} for i, k in enumerate(keys)}
    return CaptionScores(corpus=ordered, per_sample=per_sample)


def _stop_meteor(meteor):
    """End METEOR's Java process now rather than whenever the scorer is garbage-collected."""
    with meteor.lock:
        meteor.meteor_p.stdin.close()
        meteor.meteor_p.kill()
        meteor.meteor_p.wait()
    meteor.__del__ = lambda: None


def category_table(
    scores: CaptionScores,
    predictions: dict[str, str],
    references: dict[str, list[str]],
    categories: dict[str, str | None],
) -> dict[str, dict[str, float]]:
    """Scores per category, like the paper's Table 5, plus an ``all`` row and a ``count`` column.

    BLEU is recomputed on each category's items (it is a corpus statistic, not a mean). METEOR,
    ROUGE-L and CIDEr-D are the category's mean of the per-sample scores of the whole-split call:
    re-running CIDEr-D on one category would take IDF from that category alone, and in a category
    whose references are all alike (e.g. "no change") every n-gram then weighs zero.
    """
    from pycocoevalcap.bleu.bleu import Bleu

    metrics = list(scores.corpus)
    table = {"all": {**scores.corpus, "count": float(len(predictions))}}
    groups: dict[str, list[str]] = {}
    for key in predictions:
        groups.setdefault(categories.get(key) or "uncategorized", []).append(key)
    bleu_names = [m for m in metrics if m.startswith("BLEU")]
    tokens = tokenize(
        {**{f"r:{k}": references[k] for k in predictions}, **{f"p:{k}": [predictions[k]] for k in predictions}}
    )
    for category in sorted(groups):
        keys = groups[category]
        row = {m: float(np.mean([scores.per_sample[k][m] for k in keys])) for m in metrics if not m.startswith("BLEU")}
        if bleu_names:
            gts = {i: tokens[f"r:{k}"] for i, k in enumerate(keys)}
            res = {i: [tokens[f"p:{k}"][0] or EMPTY_PREDICTION] for i, k in enumerate(keys)}
            bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
            row.update({name: float(bleu[int(name[-1]) - 1]) for name in bleu_names})
        row["count"] = float(len(keys))
        table[category] = {m: row[m] for m in metrics} | {"count": row["count"]}
    return table
