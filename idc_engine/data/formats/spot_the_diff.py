"""Spot-the-Diff (Jhamtani & Berg-Kirkpatrick, EMNLP 2018): street-camera frames and what changed.

Annotations (harsh19/spot-the-diff ``data/annotations/{train,val,test}.json``): a JSON list of
``{"img_id": "<digits>", "sentences": [...]}``. ``annotations`` may be that folder (every split file
present is read) or one file; a single file's split comes from ``split=`` or its name. CLIP4IDC's
COCO caption-eval test file (``spot_total_change_captions_reformat.json``, ``image_id`` ``"<img_id>.png"``)
is read too; it is grouped per image, so repeated entries arrive already merged.

Images: the release's ``resized_images`` folder holds ``<img_id>.png`` (before) and ``<img_id>_2.png``
(after). Some copies hold ``.jpg`` (VisualRelationships' converter tries ``.jpg`` and ``.png``), so each
pattern is tried with every suffix in ``extensions``; ``reference_pattern`` and ``modified_pattern``
(relative to ``images_dir``, may hold sub-folders) override the names.

Quirks of the real files and what this module does about them:

* The same ``img_id`` occurs in up to three entries of a split (separate annotation rounds of one
  image pair: 545 ids in train, 73 in val, 68 in test). By default every entry stays one pair, as
  released; the second and third get ids ``<img_id>-2`` and ``<img_id>-3`` and ``metadata`` keeps the
  ``img_id`` and the occurrence. ``merge_repeats=True`` makes one pair per ``img_id`` with every
  sentence, as CLIP4IDC's evaluation file does.
* Empty sentences (53 train, 6 val, 7 test) and list numbering typed as sentences ("1", "2", ...)
  are dropped; entries left with no sentence (train 47, val 6, test 7) are skipped.
* Sentences that say nothing changed ("there are no differences") are kept: they are true
  captions of pairs without a visible change. Spot-the-Diff has no change types, so ``category`` is None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from idc_engine.data.formats._common import (
    PairCollector,
    UniqueIds,
    check_pattern,
    coco_captions,
    engine_split,
    load_json,
    split_from_name,
)
from idc_engine.data.formats.result import AnnotationError, ImportResult

SPLIT_FILES = {"train.json": "train", "val.json": "validation", "test.json": "test"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")


@dataclass
class _Entry:
    label: str
    img_id: str
    sentences: list
    split: str
    merged: list[str] = field(default_factory=list)


def read_spot_the_diff(
    annotations: str | os.PathLike,
    images_dir: str | os.PathLike,
    *,
    split: str | None = None,
    reference_pattern: str = "{img_id}",
    modified_pattern: str = "{img_id}_2",
    extensions: tuple[str, ...] = (".png", ".jpg"),
    merge_repeats: bool = False,
    check_images: bool = True,
) -> ImportResult:
    """Read Spot-the-Diff annotations; see the module docstring for layout and quirks."""
    for option, pattern in (("reference_pattern", reference_pattern), ("modified_pattern", modified_pattern)):
        check_pattern(option, pattern, img_id="0")
    extensions = (extensions,) if isinstance(extensions, str) else tuple(extensions)
    images_dir = Path(images_dir).expanduser().absolute()
    collector = PairCollector("spot-the-diff", check_images)
    entries: list[_Entry] = []
    for path, file_split in _annotation_files(Path(annotations).expanduser(), split, collector):
        entries.extend(_read_file(path, file_split, collector))
    if merge_repeats:
        entries = _merge(entries)
    ids = UniqueIds(e.img_id for e in entries)
    for entry in entries:
        pair_id, extra = ids.assign(entry.img_id)
        metadata = {"img_id": entry.img_id, **extra}
        if entry.merged:
            metadata["merged_entries"] = entry.merged
        reference = _candidates(images_dir, reference_pattern, entry.img_id, extensions)
        modified = _candidates(images_dir, modified_pattern, entry.img_id, extensions)
        collector.add(pair_id, reference, modified, entry.sentences, entry.split, None, metadata)
    repeats = len(entries) - len({e.img_id for e in entries})
    if repeats:
        collector.note(f"{repeats} entries repeat an img_id of an earlier entry; they got suffixed ids")
    return collector.result


def _annotation_files(root: Path, split: str | None, collector: PairCollector) -> list[tuple[Path, str]]:
    if root.is_dir():
        found = [(root / name, s) for name, s in SPLIT_FILES.items() if (root / name).is_file()]
        if not found:
            raise FileNotFoundError(f"Spot-the-Diff folder {root} holds none of {', '.join(SPLIT_FILES)}")
        absent = [name for name in SPLIT_FILES if not (root / name).is_file()]
        if absent:
            collector.note(f"{root} lacks {', '.join(absent)}; those splits were not read")
        return found
    if not root.is_file():
        raise FileNotFoundError(f"Spot-the-Diff annotation file {root} does not exist")
    if split is not None:
        return [(root, engine_split(split, "spot-the-diff"))]
    return [(root, split_from_name(root.stem))]


def _read_file(path: Path, split: str | None, collector: PairCollector) -> list[_Entry]:
    data = load_json(path, "Spot-the-Diff annotation file")
    if isinstance(data, dict):
        # CLIP4IDC builds its COCO file from test.json only, and its name carries no split.
        split = split or "test"
        grouped, uncaptioned, bad = coco_captions(data, path)
        for record, reason in bad:
            collector.skip(record, reason)
        for image_id in uncaptioned:
            collector.skip(image_id, f"listed under 'images' of {path.name} but has no annotation")
        return [_Entry(f"{path.name}:{k}", _strip_suffix(k), caps, split) for k, caps in grouped.items()]
    if not isinstance(data, list):
        raise AnnotationError(
            path, f"expected a JSON list of entries or a COCO caption object, got {type(data).__name__}"
        )
    if split is None:
        raise ValueError(f"spot-the-diff: cannot tell the split of {path.name}; pass split='train', 'val' or 'test'")
    entries = []
    for i, record in enumerate(data):
        label = f"{path.name}[{i}]"
        if not isinstance(record, dict) or "img_id" not in record or "sentences" not in record:
            collector.skip(label, "entry lacks 'img_id' or 'sentences'")
            continue
        img_id = str(record["img_id"]).strip()
        if not img_id:
            collector.skip(label, f"empty img_id {record['img_id']!r}")
            continue
        entries.append(_Entry(label, img_id, record["sentences"], split))
    return entries


def _merge(entries: list[_Entry]) -> list[_Entry]:
    """One entry per (split, img_id), sentences in source order."""
    merged: dict[tuple[str, str], _Entry] = {}
    for entry in entries:
        key = (entry.split, entry.img_id)
        sentences = entry.sentences if isinstance(entry.sentences, list) else [entry.sentences]
        if key not in merged:
            merged[key] = _Entry(entry.label, entry.img_id, list(sentences), entry.split, [entry.label])
        else:
            merged[key].sentences.extend(sentences)
            merged[key].merged.append(entry.label)
    for entry in merged.values():
        if len(entry.merged) == 1:
            entry.merged = []
    return list(merged.values())


def _strip_suffix(image_id: str) -> str:
    stem, suffix = os.path.splitext(image_id)
    return stem if suffix.lower() in IMAGE_SUFFIXES else image_id


def _candidates(images_dir: Path, pattern: str, img_id: str, extensions: tuple[str, ...]) -> list[Path]:
    name = pattern.format(img_id=img_id)
    if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
        return [images_dir / name]
    return [images_dir / f"{name}{ext}" for ext in extensions]
