"""CLEVR-DC (Kim et al., ICCV 2021): CLEVR change captioning under drastic viewpoint changes.

Annotations: ``annotations`` is the folder of hsgkim/clevr-dc (or the path of its ``split.json``):

* ``split.json``: ``{"train": [index], "val": [...], "test": [...]}``, 48000 scene indices.
* ``captions.json`` (not in the fixtures: 4 MiB or more), found next to ``split.json`` or given as
  ``captions=``: a dict of scene index -> list of captions. Keys are matched by number, so the
  raw ``"17"`` and DIRL's renamed ``"000017.png"`` both name scene 17.

Images (``bef.tar.gz`` and ``aft.tar.gz``): BLIP2IDC reads ``bef/<index>.png`` and ``aft/<index>.png``;
zero-padded names (``bef/000017.png``) are tried next. ``reference_patterns`` / ``modified_patterns``
(``{index}`` is the number, relative to ``images_dir``) override both.

Categories: the README lists six actions of 8000 scenes each, in the order color, texture
(material), add, remove, move, distractor, and ``split.json`` is cut into six blocks of 8000
(6800 train / 400 val / 800 test each). This module assumes, unverified against captions, that
block ``index // 8000`` is the README's action at that position, and names them as CLEVR-Change
does: color, material, add, drop, move, distractor. Pass ``actions=None`` to leave categories unset.
Distractor scenes are real no-change pairs (``metadata["changed"]`` False).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from idc_engine.data.formats._common import PairCollector, UniqueIds, check_pattern, engine_split, expect, load_json
from idc_engine.data.formats.clevr_change import NO_CHANGE, scene_key
from idc_engine.data.formats.result import ImportResult

ACTIONS = ("color", "material", "add", "drop", "move", NO_CHANGE)


def read_clevr_dc(
    annotations: str | os.PathLike,
    images_dir: str | os.PathLike,
    *,
    captions: str | os.PathLike | None = None,
    reference_patterns: Sequence[str] = ("bef/{index}.png", "bef/{index:06d}.png"),
    modified_patterns: Sequence[str] = ("aft/{index}.png", "aft/{index:06d}.png"),
    actions: Sequence[str] | None = ACTIONS,
    scenes_per_action: int = 8000,
    check_images: bool = True,
) -> ImportResult:
    """Read CLEVR-DC; see the module docstring for the files, the layout and the category assumption."""
    reference_patterns, modified_patterns = _as_list(reference_patterns), _as_list(modified_patterns)
    for option, patterns in (("reference_patterns", reference_patterns), ("modified_patterns", modified_patterns)):
        if not patterns:
            raise ValueError(f"{option} must hold at least one pattern")
        for pattern in patterns:
            check_pattern(option, pattern, index=0)
    root = Path(annotations).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"CLEVR-DC annotations {root} do not exist (give the folder or its split.json)")
    split_path = root / "split.json" if root.is_dir() else root
    captions_path = Path(captions) if captions is not None else split_path.parent / "captions.json"
    if captions is None and not captions_path.is_file():
        raise FileNotFoundError(f"CLEVR-DC captions {captions_path} do not exist; pass captions= (captions.json)")
    collector = PairCollector("clevr-dc", check_images)
    splits = expect(load_json(split_path, "CLEVR-DC split file"), dict, split_path, 'an object {"train": [...], ...}')
    data = expect(
        load_json(captions_path, "CLEVR-DC captions file"), dict, captions_path, "an object of index -> captions"
    )
    caption_map: dict[int, list] = {}
    for key, value in data.items():
        parsed = scene_key(key)
        if parsed is None:
            collector.skip(f"{captions_path.name}:{key}", "key names no scene index")
            continue
        caption_map.setdefault(parsed[0], []).extend(value if isinstance(value, list) else [value])
    plan = []
    for name, indices in splits.items():
        try:
            split = engine_split(name, str(split_path))
        except ValueError:
            collector.note(f"{split_path.name}: unknown split {name!r} was not read")
            continue
        for index in indices if isinstance(indices, list) else []:
            parsed = scene_key(index)
            if parsed is None:
                collector.skip(f"{split_path.name}[{name}]", f"{index!r} is not a scene index")
            else:
                plan.append((split, parsed[0]))
    images_dir = Path(images_dir).expanduser().absolute()
    ids = UniqueIds(str(index) for _, index in plan)
    for split, index in plan:
        pair_id, extra = ids.assign(str(index))
        action = _action(index, actions, scenes_per_action)
        metadata = {"index": index, **extra}
        if action is not None:
            metadata["changed"] = action != NO_CHANGE
        if index not in caption_map:
            collector.skip(pair_id, f"{split} pair: {captions_path.name} has no entry for index {index}")
            continue
        reference = [images_dir / p.format(index=index) for p in reference_patterns]
        modified = [images_dir / p.format(index=index) for p in modified_patterns]
        collector.add(pair_id, reference, modified, caption_map[index], split, action, metadata)
    unused = set(caption_map) - {index for _, index in plan}
    if unused:
        collector.note(f"{len(unused)} captioned scenes are in no split and were not imported")
    return collector.result


def _action(index: int, actions: Sequence[str] | None, per_action: int) -> str | None:
    if not actions:
        return None
    block = index // per_action
    return actions[block] if 0 <= block < len(actions) else None


def _as_list(patterns: str | Sequence[str]) -> list[str]:
    return [patterns] if isinstance(patterns, str) else list(patterns)
