"""CLEVR-Change (Park, Darrell, Rohrbach, ICCV 2019): rendered scenes with one change or a distractor.

Every scene number yields two pairs: the default image against its semantically changed version
(id ``%06d``) and against a copy with only a camera or lighting change (id ``%06d_n``, category
``distractor``, ``metadata["changed"]`` False). Those no-change pairs are real pairs, not padding:
half of the benchmark asks the model to say that nothing changed.

Annotations: ``annotations`` is the folder of the release's ``data/`` files (or the path of its
``splits.json``). The pieces:

* ``splits.json``: ``{"train": [scene], "val": [...], "test": [...]}``, scene numbers, unordered.
* ``type_mapping.json`` (optional, found next to ``splits.json`` or given as ``type_mapping=``):
  change type (color, material, add, drop, move) -> ``"%06d.png"`` names; sets the category.
* Captions, which the fixtures lack (every copy is 4 MiB or more), in either format the RCC code
  documents: ``change_captions=`` and ``no_change_captions=`` (dicts of ``"CLEVR_default_%06d.png"``
  -> list of captions, as ``scripts/preprocess_captions.py`` reads them), or ``captions=`` (the COCO
  caption-eval ``total_change_captions_reformat.json``, ``image_id`` ``"%06d"`` or ``"%06d_n"``).
  Without arguments the first two, then the third, are looked for next to ``splits.json``.
  Keys are matched by scene number, so ``"CLEVR_default_000001.png"``, ``"000001.png"``,
  ``"000001"`` and ``"1"`` all name scene 1.

Images (the tarball's layout, RCC's config): ``images/CLEVR_default_%06d.png``,
``sc_images/CLEVR_semantic_%06d.png`` and ``nsc_images/CLEVR_nonsemantic_%06d.png`` under
``images_dir``; each folder and name pattern (``{scene}`` is the number) can be overridden.

Quirks: split lists are unordered and skip numbers (39803 of 0..39999), so scenes are looked up
by number, never by position; ``val`` is mapped to ``validation``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from idc_engine.data.formats._common import (
    PairCollector,
    UniqueIds,
    check_pattern,
    coco_captions,
    engine_split,
    expect,
    load_json,
)
from idc_engine.data.formats.result import ImportResult

NO_CHANGE = "distractor"
_SCENE = re.compile(r"^(?:CLEVR_(?:default|semantic|nonsemantic)_)?(\d+)(_n)?(?:\.png)?(_n)?$")


def scene_key(key: Any) -> tuple[int, bool] | None:
    """``(scene number, is_no_change)`` for a caption or image key, or None if it names no scene."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key, False
    match = _SCENE.match(str(key).strip())
    if match is None:
        return None
    return int(match.group(1)), bool(match.group(2) or match.group(3))


def read_clevr_change(
    annotations: str | os.PathLike,
    images_dir: str | os.PathLike,
    *,
    change_captions: str | os.PathLike | None = None,
    no_change_captions: str | os.PathLike | None = None,
    captions: str | os.PathLike | None = None,
    type_mapping: str | os.PathLike | None = None,
    default_dir: str = "images",
    semantic_dir: str = "sc_images",
    nonsemantic_dir: str = "nsc_images",
    default_pattern: str = "CLEVR_default_{scene:06d}.png",
    semantic_pattern: str = "CLEVR_semantic_{scene:06d}.png",
    nonsemantic_pattern: str = "CLEVR_nonsemantic_{scene:06d}.png",
    include_no_change: bool = True,
    check_images: bool = True,
) -> ImportResult:
    """Read CLEVR-Change; see the module docstring for the files, options and image layout."""
    for option, pattern in (
        ("default_pattern", default_pattern),
        ("semantic_pattern", semantic_pattern),
        ("nonsemantic_pattern", nonsemantic_pattern),
    ):
        check_pattern(option, pattern, scene=0)
    root = Path(annotations).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"CLEVR-Change annotations {root} do not exist (give the folder or its splits.json)")
    splits_path = root / "splits.json" if root.is_dir() else root
    folder = splits_path.parent
    collector = PairCollector("clevr-change", check_images)
    splits = _read_splits(splits_path, collector)
    caption_map = _read_captions(folder, change_captions, no_change_captions, captions, collector)
    types = _read_types(folder, type_mapping, collector)
    kinds = [False, True] if include_no_change else [False]
    if include_no_change and not any(no_change for _, no_change in caption_map):
        collector.note("no no-change captions were given, so no distractor pairs were made")
        kinds = [False]
    images_dir = Path(images_dir).expanduser().absolute()
    folders = {
        "default": (images_dir / default_dir, default_pattern),
        False: (images_dir / semantic_dir, semantic_pattern),
        True: (images_dir / nonsemantic_dir, nonsemantic_pattern),
    }
    plan = [(split, scene, no_change) for split, scenes in splits for scene in scenes for no_change in kinds]
    ids = UniqueIds(_pair_id(scene, no_change) for _, scene, no_change in plan)
    for split, scene, no_change in plan:
        pair_id, extra = ids.assign(_pair_id(scene, no_change))
        change_type = types.get(scene)
        category = NO_CHANGE if no_change else change_type
        type_key = "scene_change_type" if no_change else "change_type"
        metadata = {"scene": scene, "changed": not no_change, type_key: change_type, **extra}
        if (scene, no_change) not in caption_map:
            kind = "no-change" if no_change else "change"
            collector.skip(pair_id, f"{split} pair: the {kind} captions have no entry for scene {scene:06d}")
            continue
        reference = _image(folders["default"], scene)
        modified = _image(folders[no_change], scene)
        collector.add(pair_id, reference, modified, caption_map[(scene, no_change)], split, category, metadata)
    unused = {scene for scene, _ in caption_map} - {scene for _, scenes in splits for scene in scenes}
    if unused:
        collector.note(f"{len(unused)} captioned scenes are in no split and were not imported")
    return collector.result


def _pair_id(scene: int, no_change: bool) -> str:
    return f"{scene:06d}_n" if no_change else f"{scene:06d}"


def _image(folder: tuple[Path, str], scene: int) -> Path:
    directory, pattern = folder
    return directory / pattern.format(scene=scene)


def _read_splits(path: Path, collector: PairCollector) -> list[tuple[str, list[int]]]:
    data = expect(load_json(path, "CLEVR-Change splits file"), dict, path, 'an object {"train": [...], ...}')
    splits, seen = [], {}
    for name, scenes in data.items():
        try:
            split = engine_split(name, f"{path}")
        except ValueError:
            collector.note(f"{path.name}: unknown split {name!r} was not read")
            continue
        if not isinstance(scenes, list):
            collector.skip(f"{path.name}[{name}]", f"expected a list of scene numbers, got {type(scenes).__name__}")
            continue
        kept = []
        for scene in scenes:
            number = scene_key(scene)
            if number is None:
                collector.skip(f"{path.name}[{name}]", f"{scene!r} is not a scene number")
                continue
            if number[0] in seen:
                collector.note(f"scene {number[0]} is listed in both {seen[number[0]]} and {split}")
            seen.setdefault(number[0], split)
            kept.append(number[0])
        splits.append((split, kept))
    return splits


def _read_captions(folder, change, no_change, coco, collector) -> dict[tuple[int, bool], list[Any]]:
    if change is None and no_change is None and coco is None:
        if (folder / "change_captions.json").is_file():
            change = folder / "change_captions.json"
            no_change = folder / "no_change_captions.json" if (folder / "no_change_captions.json").is_file() else None
        elif (folder / "total_change_captions_reformat.json").is_file():
            coco = folder / "total_change_captions_reformat.json"
        else:
            raise FileNotFoundError(
                f"no CLEVR-Change captions next to {folder}: pass change_captions= and no_change_captions= "
                "(RCC dicts) or captions= (total_change_captions_reformat.json)"
            )
    caption_map: dict[tuple[int, bool], list[Any]] = {}
    sources = [(Path(p), flag) for p, flag in ((change, False), (no_change, True)) if p is not None]
    for path, flag in sources:
        what = "CLEVR-Change no-change captions file" if flag else "CLEVR-Change change captions file"
        data = expect(load_json(path, what), dict, path, "an object mapping image names to caption lists")
        _add_captions(caption_map, data.items(), path, collector, forced=flag)
    if coco is not None:
        path = Path(coco)
        grouped, _, bad = coco_captions(load_json(path, "CLEVR-Change COCO caption file"), path)
        for record, reason in bad:
            collector.skip(record, reason)
        _add_captions(caption_map, grouped.items(), path, collector, forced=None)
    return caption_map


def _add_captions(caption_map, items, path: Path, collector: PairCollector, forced: bool | None) -> None:
    for key, value in items:
        parsed = scene_key(key)
        if parsed is None:
            collector.skip(f"{path.name}:{key}", "key names no scene number")
            continue
        scene, no_change = parsed
        flag = no_change if forced is None else forced
        caption_map.setdefault((scene, flag), []).extend(value if isinstance(value, list) else [value])


def _read_types(folder: Path, type_mapping, collector: PairCollector) -> dict[int, str]:
    path = Path(type_mapping) if type_mapping is not None else folder / "type_mapping.json"
    if type_mapping is None and not path.is_file():
        collector.note("no type_mapping.json: change pairs have no category")
        return {}
    data = expect(load_json(path, "CLEVR-Change type mapping"), dict, path, "an object mapping types to names")
    types: dict[int, str] = {}
    for change_type, names in data.items():
        for name in names if isinstance(names, list) else []:
            parsed = scene_key(name)
            if parsed is None:
                collector.skip(f"{path.name}[{change_type}]", f"{name!r} names no scene")
            elif types.setdefault(parsed[0], change_type) != change_type:
                collector.note(f"scene {parsed[0]} has two types; kept {types[parsed[0]]}")
    return types
