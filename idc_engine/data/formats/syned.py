"""BLIP2IDC's Syned release (WACV 2025): Emu Edit instructions as difference captions.

Annotations (gautierevn/BLIP2IDC ``code_release/Syned/``), all in the folder ``annotations``:

* ``instructions_with_idx_{train,test}_split.txt``: one ``<idx> <INSTRUCT> <instruction>`` per line.
  At least one must exist. Their 3589 and 2022 rows match Emu Edit's HF ``test`` and ``validation``
  splits, so ``metadata["emu_edit_split"]`` records that (an inference from the counts).
* ``splits.json`` (optional): ``{"train": [idx], "validation": [idx]}`` re-splits the *train* file;
  without it every train-file row is ``train``. The test file is ``test``.
* ``gt_augmented_test_clean.json`` (optional, ``paraphrases=False`` to ignore, or a path): Llama-2
  paraphrases of each test instruction. BLIP2IDC scores against paraphrases plus the instruction,
  so test pairs get ``[instruction, *paraphrases]``.

Images: the release has no fixed image layout, so the files come from ``images_dir`` under
``reference_pattern`` / ``modified_pattern`` (``{file_split}`` is ``train`` or ``test``, the txt file
the row comes from, because ``idx`` restarts at 0 in each; ``{idx}`` the number). The defaults,
``<file_split>/<idx>_image.png`` and ``<file_split>/<idx>_edited.png``, follow Emu Edit's column
names ``image`` and ``edited_image``. Pair ids are ``<file_split>-<idx>`` for the same reason.

Categories: Emu Edit's ``task`` (add, text, color, background, style, global, remove, local) is not
in these files; pass ``categories={"train": {idx: task}, "test": {...}}`` (or a JSON file of that
shape) to set it, lower-cased. Otherwise ``category`` is None.

Quirks of the real files and what this module does about them:

* Lines are split once on ``<INSTRUCT>`` and both sides stripped: three train lines have a second
  space after the separator, 365 train / 170 test instructions end in a space.
* Lines are not sorted by idx (0, 180, 360, ...); idx is read from each line, never from its position.
* Paraphrase keys all end in a space (``"0 "``): BLIP2IDC's reader keeps the space it did not strip.
  Keys are stripped and matched as numbers.
* Paraphrases: 4 keys have an empty list; 2 entries are empty strings and one is list numbering
  ("4.") (dropped, as everywhere, for having no letter); 3293 keep
  literal wrapping double quotes (removed, as are the lone leading quotes of cut-off lines); 43 are
  LLM refusals, preambles or style labels such as ``{Dadaist variation}`` (dropped when
  ``filter_llm_junk`` is true, by the phrases in ``LLM_JUNK``). Every test pair keeps its instruction.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from idc_engine.data.formats._common import (
    PairCollector,
    UniqueIds,
    check_pattern,
    clean_captions,
    expect,
    load_json,
)
from idc_engine.data.formats.result import ImportResult

TXT_FILES = {"train": "instructions_with_idx_train_split.txt", "test": "instructions_with_idx_test_split.txt"}
SPLITS_FILE = "splits.json"
PARAPHRASES_FILE = "gt_augmented_test_clean.json"
EMU_EDIT_SPLIT = {"train": "test", "test": "validation"}
SEPARATOR = "<INSTRUCT>"
LLM_JUNK = re.compile(
    r"^\{[^{}]*\}$|language model|\bI'm just an AI\b"
    r"|\bI (cannot|can't|will not|must|apologi[sz]e|hope you understand|suggest)\b"
    r"|^here are\b.*\bvariations\b|\bvariations of the (user )?(prompt|instruction)\b"
    r"|\bif you have any other (questions|requests|prompts)\b|\bplease (feel free|note that)\b"
    r"|^instead, I\b|^it is important to\b|^remember, as a responsible\b",
    re.IGNORECASE,
)


def read_syned(
    annotations: str | os.PathLike,
    images_dir: str | os.PathLike,
    *,
    paraphrases: bool | str | os.PathLike = True,
    filter_llm_junk: bool = True,
    categories: Mapping[str, Mapping[Any, str]] | str | os.PathLike | None = None,
    reference_pattern: str = "{file_split}/{idx}_image.png",
    modified_pattern: str = "{file_split}/{idx}_edited.png",
    check_images: bool = True,
) -> ImportResult:
    """Read the Syned / Emu Edit instruction files; see the module docstring for layout and quirks."""
    for option, pattern in (("reference_pattern", reference_pattern), ("modified_pattern", modified_pattern)):
        check_pattern(option, pattern, file_split="train", idx=0)
    folder = Path(annotations).expanduser()
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"Syned annotation folder {folder} does not exist")
    collector = PairCollector("syned", check_images)
    rows = _read_rows(folder, collector)
    train_split = _read_train_split(folder, rows, collector)
    extra_captions = _read_paraphrases(folder, paraphrases, filter_llm_junk, collector)
    task = _read_categories(categories)
    images_dir = Path(images_dir).expanduser().absolute()
    ids = UniqueIds(f"{file_split}-{idx}" for file_split, idx, _ in rows)
    for file_split, idx, instruction in rows:
        pair_id, extra = ids.assign(f"{file_split}-{idx}")
        if file_split == "test":
            split = "test"
        elif idx in train_split:
            split = train_split[idx]
        else:
            collector.skip(pair_id, f"idx {idx} of the train file is in neither list of {SPLITS_FILE}")
            continue
        metadata = {"idx": idx, "file_split": file_split, "emu_edit_split": EMU_EDIT_SPLIT[file_split]}
        metadata |= {"instruction": " ".join(instruction.split()), **extra}
        captions = [instruction]
        if file_split == "test" and idx in extra_captions:
            kept, dropped = extra_captions[idx]
            captions += kept
            metadata["paraphrases"] = len(kept)
            if dropped:
                metadata["dropped_paraphrases"] = dropped
        names = {"file_split": file_split, "idx": idx}
        reference = images_dir / reference_pattern.format(**names)
        modified = images_dir / modified_pattern.format(**names)
        category = task.get(file_split, {}).get(idx)
        collector.add(pair_id, reference, modified, captions, split, category, metadata)
    return collector.result


def _read_rows(folder: Path, collector: PairCollector) -> list[tuple[str, int, str]]:
    present = {s: folder / name for s, name in TXT_FILES.items() if (folder / name).is_file()}
    if not present:
        raise FileNotFoundError(f"Syned folder {folder} holds neither {' nor '.join(TXT_FILES.values())}")
    for file_split in TXT_FILES.keys() - present.keys():
        collector.note(f"{TXT_FILES[file_split]} is absent; its rows were not read")
    rows = []
    for file_split, path in present.items():
        with path.open(encoding="utf-8-sig") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                label = f"{path.name}:{line_number}"
                if SEPARATOR not in line:
                    collector.skip(label, f"line has no {SEPARATOR} separator")
                    continue
                idx_text, instruction = (part.strip() for part in line.split(SEPARATOR, 1))
                if not idx_text.isdigit():
                    collector.skip(label, f"idx {idx_text!r} is not a number")
                    continue
                rows.append((file_split, int(idx_text), instruction))
    return rows


def _read_train_split(folder: Path, rows, collector: PairCollector) -> dict[int, str]:
    train_idx = {idx for file_split, idx, _ in rows if file_split == "train"}
    path = folder / SPLITS_FILE
    if not path.is_file():
        if train_idx:
            collector.note(f"no {SPLITS_FILE}: every row of the train file is train")
        return {idx: "train" for idx in train_idx}
    data = expect(load_json(path, "Syned splits file"), dict, path, 'an object {"train": [...], "validation": [...]}')
    split_of: dict[int, str] = {}
    for split in ("train", "validation"):
        for idx in data.get(split) or []:
            if isinstance(idx, int) and split_of.setdefault(idx, split) != split:
                collector.note(f"idx {idx} is in both lists of {SPLITS_FILE}; kept {split_of[idx]}")
    unknown = len(set(split_of) - train_idx)
    if unknown and train_idx:
        collector.note(f"{unknown} idx of {SPLITS_FILE} have no row in the train file")
    return split_of


def _read_paraphrases(folder: Path, option, filter_junk: bool, collector) -> dict[int, tuple[list[str], int]]:
    if option is False:
        return {}
    path = folder / PARAPHRASES_FILE if option is True else Path(option)
    if option is True and not path.is_file():
        collector.note(f"no {PARAPHRASES_FILE}: test pairs have only their instruction")
        return {}
    data = expect(load_json(path, "Syned paraphrase file"), dict, path, "an object of idx -> paraphrases")
    result = {}
    for key, values in data.items():
        if not str(key).strip().isdigit():
            collector.skip(f"{path.name}:{key!r}", "paraphrase key is not an idx")
            continue
        values = values if isinstance(values, list) else [values]
        kept, _ = clean_captions([_unquote(v) for v in values if isinstance(v, str)])
        kept = [v for v in kept if not (filter_junk and LLM_JUNK.search(v))]
        result[int(str(key).strip())] = (kept, len(values) - len(kept))
    return result


def _unquote(text: str) -> str:
    """Remove the double quotes Llama wrapped around a paraphrase (or left on one side of a cut-off one)."""
    return text.strip().strip('"').strip()


def _read_categories(option) -> dict[str, dict[int, str]]:
    if option is None:
        return {}
    data = load_json(option, "Syned categories file") if isinstance(option, (str, os.PathLike)) else option
    shape = "categories must map 'train' and/or 'test' to {idx: task}"
    if not isinstance(data, Mapping) or not all(isinstance(m, Mapping) for m in data.values()):
        raise ValueError(f"{shape}, got {type(data).__name__}")
    unknown = sorted(set(data) - set(TXT_FILES))
    if unknown:
        raise ValueError(f"{shape}, got key {unknown[0]!r}")
    result: dict[str, dict[int, str]] = {}
    for file_split, mapping in data.items():
        for idx, task in mapping.items():
            if not str(idx).strip().isdigit():
                raise ValueError(f"{shape}, got idx {idx!r} under {file_split!r}")
            if isinstance(task, str) and task.strip():
                result.setdefault(file_split, {})[int(str(idx).strip())] = task.strip().lower()
    return result
