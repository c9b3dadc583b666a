"""Baselines scored on the same references as a model.

- Mean sentence: one constant caption for every pair, i.e. what a captioner that ignores the
  images converges to. The candidates are the most frequent training captions; the one chosen
  scores best (CIDEr-D, IDF from the references it is scored on) against the validation
  references, or the training references when there is no validation split. A weak constant
  flatters every model beside it, so many candidates are tried.
- Nearest neighbour: for each test pair, the first caption of the most similar training pair,
  similarity being the distance between small thumbnails of both images and of their difference.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from idc_engine.metrics.captions import tokenize


@dataclass
class BaselineConfig:
    max_candidates: int = field(
        default=300, metadata={"help": "most frequent training captions tried as mean sentence"}
    )
    max_pairs: int = field(
        default=2000,
        metadata={"help": "pairs (validation, else training) the mean-sentence candidates are scored on, at most"},
    )
    thumbnail: int = field(default=16, metadata={"help": "side of the thumbnails nearest neighbour compares"})
    seed: int = 0

    def __post_init__(self):
        for name in ("max_candidates", "max_pairs", "thumbnail"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")


@dataclass
class MeanSentence:
    """The chosen constant and how it was chosen."""

    sentence: str
    score: float  # CIDEr-D on the selection pairs (not x100)
    split: str  # "validation" or "train": whose references chose it
    candidates: int  # training captions tried
    pairs: int  # selection pairs scored


def mean_sentence(
    train_captions: list[list[str]],
    selection_captions: list[list[str]] | None = None,
    config: BaselineConfig | None = None,
) -> str:
    """The frequent training caption with the highest CIDEr-D on the selection references.

    ``selection_captions`` are the references of the validation split; without them the training
    references choose. See :func:`choose_mean_sentence`.
    """
    return choose_mean_sentence(train_captions, selection_captions, config).sentence


def choose_mean_sentence(
    train_captions: list[list[str]],
    selection_captions: list[list[str]] | None = None,
    config: BaselineConfig | None = None,
) -> MeanSentence:
    """Try the ``max_candidates`` most frequent training captions as a constant prediction for every
    selection pair (at most ``max_pairs`` of them, sampled with ``seed``) and keep the best by
    corpus CIDEr-D, the IDF taken from the selection references. Ties go to the more frequent caption.
    """
    if isinstance(selection_captions, BaselineConfig):
        raise TypeError("selection_captions: got a BaselineConfig; pass it as config=")
    config = config or BaselineConfig()
    if not train_captions:
        raise ValueError("train_captions: need at least one training pair")
    split = "train" if selection_captions is None else "validation"
    selection = train_captions if selection_captions is None else selection_captions
    if not selection:
        raise ValueError("selection_captions: need at least one pair (pass None to choose on train)")
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(selection))[: config.max_pairs]
    sample = [selection[i] for i in order]
    candidates = frequent_captions(train_captions, config.max_candidates)
    tokens = tokenize({**{f"r{i}": refs for i, refs in enumerate(sample)}, "candidates": candidates})
    scorer = ConstantCider([tokens[f"r{i}"] for i in range(len(sample))])
    best, best_score = candidates[0], -1.0
    for candidate, candidate_tokens in zip(candidates, tokens["candidates"]):
        if not candidate_tokens.strip():
            continue
        score = scorer.score(candidate_tokens)
        if score > best_score:
            best, best_score = candidate, score
    return MeanSentence(best, max(best_score, 0.0), split, len(candidates), len(sample))


def frequent_captions(captions: list[list[str]], count: int) -> list[str]:
    """The ``count`` most frequent captions, counted case- and whitespace-insensitively; each is
    returned as its most frequent spelling. Ties keep first-seen order."""
    groups: dict[str, Counter] = {}
    for refs in captions:
        for caption in refs:
            text = " ".join(caption.split())
            if text:
                groups.setdefault(text.lower(), Counter())[text] += 1
    totals = Counter({key: sum(spellings.values()) for key, spellings in groups.items()})
    return [groups[key].most_common(1)[0][0] for key, _ in totals.most_common(count)]


class ConstantCider:
    """Corpus CIDEr-D of one constant caption against many reference sets, fast.

    Exactly pycocoevalcap's ``Cider().compute_score`` (coco-caption's CIDEr-D: n-grams 1-4,
    sigma 6, clipping, Gaussian length penalty), the same operations in the same order, with what
    does not depend on the candidate computed once: the document frequency and IDF of the
    references, their tf-idf vectors and norms, and for each n-gram the references that hold it.
    A candidate then only visits the references that share one of its n-grams.
    """

    def __init__(self, references: list[list[str]], n: int = 4, sigma: float = 6.0):
        from pycocoevalcap.cider.cider_scorer import CiderScorer

        if not references or any(not refs for refs in references):
            raise ValueError("references: need at least one non-empty reference set")
        self.n, self.sigma = n, sigma
        scorer = CiderScorer(n=n, sigma=sigma)
        for refs in references:
            scorer += (None, refs)
        scorer.compute_doc_freq()
        self.document_frequency = scorer.document_frequency
        self.ref_len = np.log(float(len(scorer.crefs)))
        self.ref_counts = np.array([len(refs) for refs in scorer.crefs])
        depth = int(self.ref_counts.max())
        # Slot (set, k) is the k-th reference of a set; sets with fewer references get empty slots.
        self.index: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        postings: dict[tuple, list[tuple[int, float]]] = defaultdict(list)
        self.ref_norms = np.zeros((len(references) * depth, n))
        self.ref_lengths = np.zeros(len(references) * depth, dtype=np.int64)
        self.present = np.zeros(len(references) * depth, dtype=bool)
        self.depth = depth
        for s, refs in enumerate(scorer.crefs):
            for k, ref in enumerate(refs):
                slot = s * depth + k
                vec, norm, length = self._counts2vec(ref)
                self.ref_norms[slot], self.ref_lengths[slot], self.present[slot] = norm, length, True
                for order in vec:
                    for ngram, value in order.items():
                        postings[ngram].append((slot, value))
        for ngram, items in postings.items():
            slots = np.array([i for i, _ in items], dtype=np.int64)
            self.index[ngram] = (slots, np.array([v for _, v in items]))

    def _counts2vec(self, counts):
        """pycocoevalcap's ``counts2vec``, same arithmetic."""
        vec = [defaultdict(float) for _ in range(self.n)]
        length = 0
        norm = [0.0 for _ in range(self.n)]
        for ngram, term_freq in counts.items():
            df = np.log(max(1.0, self.document_frequency[ngram]))
            k = len(ngram) - 1
            vec[k][ngram] = float(term_freq) * (self.ref_len - df)
            norm[k] += pow(vec[k][ngram], 2)
            if k == 1:
                length += term_freq
        norm = [np.sqrt(x) for x in norm]
        return vec, norm, length

    def item_scores(self, candidate: str) -> np.ndarray:
        """Per reference set, CIDEr-D of ``candidate`` (tokenized), as ``compute_score`` returns them."""
        from pycocoevalcap.cider.cider_scorer import cook_test

        vec, norm, length = self._counts2vec(cook_test(candidate, self.n))
        slots = len(self.present)
        val = np.zeros((self.n, slots))
        for k in range(self.n):
            # Same order as pycocoevalcap: the candidate's n-grams in its own order; a reference
            # lacking an n-gram adds an exact 0.0 there, so skipping it changes nothing.
            for ngram, value in vec[k].items():
                posting = self.index.get(ngram)
                if posting is None:
                    continue
                where, ref_values = posting
                val[k, where] += np.minimum(value, ref_values) * ref_values
            both = (norm[k] != 0) & (self.ref_norms[:, k] != 0)
            val[k, both] /= norm[k] * self.ref_norms[both, k]
        deltas = (length - self.ref_lengths).astype(float)
        penalty = {d: np.e ** (-(d**2) / (2 * self.sigma**2)) for d in set(deltas.tolist())}
        val *= np.array([penalty[d] for d in deltas.tolist()])[None, :]
        val[:, ~self.present] = 0.0
        per_slot = val.T.reshape(-1, self.depth, self.n)  # sets x slots x n
        score = np.zeros((per_slot.shape[0], self.n))
        for k in range(self.depth):
            score = score + per_slot[:, k, :]
        return np.mean(score, axis=1) / self.ref_counts * 10.0

    def score(self, candidate: str) -> float:
        """Corpus CIDEr-D: the mean of :meth:`item_scores`."""
        return float(np.mean(self.item_scores(candidate)))


def thumbnail_features(pairs: list[tuple[Image.Image, Image.Image]], side: int) -> np.ndarray:
    """Per pair: thumbnails of both images and of their difference, flattened."""
    rows = []
    for reference, modified in pairs:
        ref = np.asarray(reference.resize((side, side), Image.Resampling.BOX), dtype=np.float32) / 255.0
        mod = np.asarray(modified.resize((side, side), Image.Resampling.BOX), dtype=np.float32) / 255.0
        rows.append(np.concatenate([ref.ravel(), mod.ravel(), 2.0 * (mod - ref).ravel()]))
    return np.stack(rows)


def nearest_neighbour(
    train_pairs: list[tuple[Image.Image, Image.Image]],
    train_captions: list[list[str]],
    query_pairs: list[tuple[Image.Image, Image.Image]],
    config: BaselineConfig | None = None,
) -> list[str]:
    """For each query pair, the first caption of the closest training pair."""
    config = config or BaselineConfig()
    if len(train_pairs) != len(train_captions) or not train_pairs:
        raise ValueError("train_pairs and train_captions must be non-empty and of equal length")
    train = thumbnail_features(train_pairs, config.thumbnail)
    query = thumbnail_features(query_pairs, config.thumbnail)
    train_norms = (train**2).sum(1)
    answers = []
    for start in range(0, len(query), 256):
        chunk = query[start : start + 256]
        distances = train_norms[None, :] - 2.0 * chunk @ train.T
        answers.extend(train_captions[int(i)][0] for i in distances.argmin(1))
    return answers
