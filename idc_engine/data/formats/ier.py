"""Image Editing Request (Tan et al., ACL 2019): photo edits from Reddit and Zhopped with edit requests.

Annotations (airsplay/VisualRelationships ``dataset/adobe/{train,valid,test}.json``; the README still
says ``data/``): a JSON list of ``{"img0", "img1", "sents", "uid"}``. ``annotations`` may be that folder
(every split file present is read) or one file, whose split comes from ``split=`` or its name.

Images: the release's image folder holds the files under the names in ``img0`` (before) and
``img1`` (after), flat, with mixed suffixes (``.jpg``, ``.png``, ``.JPG``, ``.jpeg``, ``.gif``), so no
pattern is applied. ``reference_dir`` / ``modified_dir`` override ``images_dir`` for either side
(BLIP2IDC, for one, keeps edited images of its synthetic train set in a second folder).

Quirks of the real files and what this module does about them:

* Requests are not normalised: case varies, 282 train / 43 valid / 52 test sentences end in
  spaces, some have doubled inner spaces or unbalanced quotes. Whitespace is stripped and
  collapsed; case and quotes are left as written (they are the references).
* The same (img0, img1) pair appears under several uids of one split (460 train, 25 valid, 46 test
  image pairs; one train pair 14 times): separate requests for the same edit. ``uid`` is unique, so
  each stays a pair with ``metadata["image_pair_repeats"]``; ``merge_repeats=True`` merges them into
  one pair (first uid, every sentence, ``metadata["merged_uids"]``).
* Some image pairs occur in two splits (2 train/valid, 1 train/test, 55 valid/test). They are kept
  in the split the release puts them in, and ``notes`` reports the overlap so that a caller can
  judge the leakage.
* Valid and test sentences of one pair sometimes repeat verbatim; kept, as the released references.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from idc_engine.data.formats._common import PairCollector, UniqueIds, engine_split, load_json, split_from_name
from idc_engine.data.formats.result import AnnotationError, ImportResult
from idc_engine.data.pair import SPLITS

SPLIT_FILES = {"train.json": "train", "valid.json": "validation", "test.json": "test"}
FIELDS = ("img0", "img1", "sents", "uid")


def read_ier(
    annotations: str | os.PathLike,
    images_dir: str | os.PathLike,
    *,
    split: str | None = None,
    reference_dir: str | os.PathLike | None = None,
    modified_dir: str | os.PathLike | None = None,
    merge_repeats: bool = False,
    check_images: bool = True,
) -> ImportResult:
    """Read IER annotations; see the module docstring for layout and quirks."""
    images_dir = Path(images_dir).expanduser().absolute()
    ref_dir = Path(reference_dir).expanduser().absolute() if reference_dir is not None else images_dir
    mod_dir = Path(modified_dir).expanduser().absolute() if modified_dir is not None else images_dir
    collector = PairCollector("ier", check_images)
    records: list[dict[str, Any]] = []
    for path, file_split in _annotation_files(Path(annotations).expanduser(), split, collector):
        records.extend(_read_file(path, file_split, collector))
    _note_overlaps(records, collector)
    if merge_repeats:
        records = _merge(records)
    repeats = Counter((r["split"], r["img0"], r["img1"]) for r in records)
    ids = UniqueIds(r["uid"] for r in records)
    for record in records:
        pair_id, extra = ids.assign(record["uid"])
        source = record["uid"].split("_")[0]
        metadata = {"uid": record["uid"], "source": source, "img0": record["img0"], "img1": record["img1"], **extra}
        count = repeats[(record["split"], record["img0"], record["img1"])]
        if count > 1:
            metadata["image_pair_repeats"] = count
        if record.get("merged_uids"):
            metadata["merged_uids"] = record["merged_uids"]
        reference, modified = ref_dir / record["img0"], mod_dir / record["img1"]
        collector.add(pair_id, reference, modified, record["sents"], record["split"], None, metadata)
    return collector.result


def _annotation_files(root: Path, split: str | None, collector: PairCollector) -> list[tuple[Path, str]]:
    if root.is_dir():
        found = [(root / name, s) for name, s in SPLIT_FILES.items() if (root / name).is_file()]
        if not found:
            raise FileNotFoundError(f"IER folder {root} holds none of {', '.join(SPLIT_FILES)}")
        absent = [name for name in SPLIT_FILES if not (root / name).is_file()]
        if absent:
            collector.note(f"{root} lacks {', '.join(absent)}; those splits were not read")
        return found
    if not root.is_file():
        raise FileNotFoundError(f"IER annotation file {root} does not exist")
    file_split = engine_split(split, "ier") if split is not None else split_from_name(root.stem)
    if file_split is None:
        raise ValueError(f"ier: cannot tell the split of {root.name}; pass split='train', 'valid' or 'test'")
    return [(root, file_split)]


def _read_file(path: Path, split: str, collector: PairCollector) -> list[dict[str, Any]]:
    data = load_json(path, "IER annotation file")
    if not isinstance(data, list):
        raise AnnotationError(path, f"expected a JSON list of records, got {type(data).__name__}")
    records = []
    for i, record in enumerate(data):
        label = f"{path.name}[{i}]"
        if not isinstance(record, dict) or any(f not in record for f in FIELDS):
            collector.skip(label, f"record lacks one of {', '.join(FIELDS)}")
            continue
        names = [record["img0"], record["img1"], record["uid"]]
        if not all(isinstance(n, str) and n.strip() for n in names):
            collector.skip(label, "img0, img1 and uid must be non-empty strings")
            continue
        img0, img1, uid = (n.strip() for n in names)
        records.append({"img0": img0, "img1": img1, "sents": record["sents"], "uid": uid, "split": split})
    return records


def _merge(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (split, img0, img1): the first uid, every sentence in source order."""
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:
        key = (record["split"], record["img0"], record["img1"])
        sents = record["sents"] if isinstance(record["sents"], list) else [record["sents"]]
        if key not in merged:
            merged[key] = {**record, "sents": list(sents), "merged_uids": [record["uid"]]}
        else:
            merged[key]["sents"].extend(sents)
            merged[key]["merged_uids"].append(record["uid"])
    for record in merged.values():
        if len(record["merged_uids"]) == 1:
            del record["merged_uids"]
    return list(merged.values())


def _note_overlaps(records: list[dict[str, Any]], collector: PairCollector) -> None:
    by_split: dict[str, set[tuple[str, str]]] = {}
    for record in records:
        by_split.setdefault(record["split"], set()).add((record["img0"], record["img1"]))
    names = [s for s in SPLITS if s in by_split]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = len(by_split[a] & by_split[b])
            if shared:
                collector.note(f"{shared} image pairs occur in both {a} and {b}")
