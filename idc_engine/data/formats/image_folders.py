"""Two folders of images, originals and edited versions, paired by relative file name.

The most common real layout has no annotation file at all: "the originals are here, the edited
versions there", under the same relative names (``originals/street/0001.jpg`` and
``edited/street/0001.png``). This reader pairs them so the pairs can be captioned and reviewed;
they carry no reference captions (training and evaluation leave them out until someone has
described them).

``annotations`` is the originals folder and ``images_dir`` the edited folder, so the reader fits the
registry's ``(annotations, images_dir, **options)``; ``reference_dir=`` and ``modified_dir=`` name
them explicitly instead (giving a side both ways, with different folders, is an error).

* Both folders are searched recursively for images (``.png .jpg .jpeg .webp .bmp .tif .tiff``, in
  any case). Hidden files and folders (a name starting with ``.``) are ignored; so is anything that
  is not an image, with a note that counts it. If one folder lies inside the other, the inner one is
  not searched as part of the outer one.
* ``match_extension=False`` (the default) pairs by relative path without the extension: an
  original ``a.jpg`` saved as ``a.png`` after editing is the usual case. Where one side holds
  several files of that name (``a.jpg`` and ``a.png``), files whose full names match are paired and
  the rest are reported. ``match_extension=True`` pairs by the full relative name (the extension
  compared case-insensitively).
* The pair id is the relative path without extension, in posix form (``street/0001``); if two pairs
  would share it, each takes its original's relative path with extension.
* Every image without a counterpart is listed in ``missing`` as ``(relative path, problem)``, the
  problem naming the side it is on and the folder where its counterpart was looked for; a note
  counts them per side. Nothing is dropped silently.
* ``split`` (default ``"unlabeled"``): the split every pair gets. Pairs without references are there
  to be captioned and reviewed; a split of their own keeps them apart from any test split, so that
  reviewed pairs can be trained on while a benchmark's test pairs never are.
* Category is None, captions are empty, and ``metadata`` holds ``reference_relpath`` and
  ``modified_relpath`` (posix, relative to each folder).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from idc_engine.data.formats._common import UniqueIds, engine_split
from idc_engine.data.formats.result import ImportResult
from idc_engine.data.pair import IDCPair

FORMAT = "image-folders"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def read_image_folders(
    annotations: str | os.PathLike | None = None,
    images_dir: str | os.PathLike | None = None,
    *,
    reference_dir: str | os.PathLike | None = None,
    modified_dir: str | os.PathLike | None = None,
    match_extension: bool = False,
    split: str = "unlabeled",
) -> ImportResult:
    """Pair the images of an originals folder with those of an edited folder; see the module docstring."""
    ref_root = _folder("reference_dir", reference_dir, "annotations", annotations)
    mod_root = _folder("modified_dir", modified_dir, "images_dir", images_dir)
    if ref_root.resolve() == mod_root.resolve():
        raise ValueError(
            f"reference_dir and modified_dir must be two different folders, got {str(ref_root)!r} for both"
        )
    split = engine_split(split, FORMAT)
    result = ImportResult(format_name=FORMAT)
    originals = _images(ref_root, mod_root, "reference_dir", result)
    edited = _images(mod_root, ref_root, "modified_dir", result)
    matched, unmatched_ref, unmatched_mod = _match(originals, edited, match_extension)

    stems = Counter(_stem(ref) for ref, _ in matched)
    bases = [_stem(ref) if stems[_stem(ref)] == 1 else ref for ref, _ in matched]
    ids = UniqueIds(bases)
    for base, (ref, mod) in zip(bases, matched):
        pair_id, extra = ids.assign(base)
        metadata = {"reference_relpath": ref, "modified_relpath": mod, **extra}
        result.pairs.append(IDCPair(pair_id, ref_root / ref, mod_root / mod, [], split, None, metadata))

    how = "same relative name" if match_extension else "same relative name, any extension"
    for relpath, reason in unmatched_ref:
        problem = f"original (reference_dir) has no edited version in {mod_root} ({how}){reason}"
        result.missing.append((relpath, problem))
    for relpath, reason in unmatched_mod:
        problem = f"edited image (modified_dir) has no original in {ref_root} ({how}){reason}"
        result.missing.append((relpath, problem))
    if unmatched_ref or unmatched_mod:
        result.notes.append(
            f"{len(unmatched_ref)} originals without an edited version, "
            f"{len(unmatched_mod)} edited images without an original: listed as missing"
        )
    return result


def _folder(name: str, value, fallback_name: str, fallback) -> Path:
    if value is not None and fallback is not None and not _same(value, fallback):
        raise ValueError(
            f"{name}: given as {str(value)!r} and, as {fallback_name}, {str(fallback)!r}; give the folder once"
        )
    chosen = value if value is not None else fallback
    if chosen is None:
        what = "originals" if name == "reference_dir" else "edited images"
        raise ValueError(f"{name}: format {FORMAT!r} needs the folder of the {what} (or pass it as {fallback_name})")
    path = Path(chosen).expanduser().absolute()
    if not path.exists():
        raise FileNotFoundError(f"{name} {path} does not exist")
    if not path.is_dir():
        raise ValueError(f"{name}: {str(path)!r} is a file; expected a folder of images")
    return path


def _same(a, b) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _images(root: Path, other_root: Path, name: str, result: ImportResult) -> list[str]:
    """Relative posix paths of the images under ``root``, sorted; what is not an image is counted in a note."""
    skip = other_root.resolve()
    found, others = [], []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != skip)
        for file_name in files:
            if file_name.startswith("."):
                continue
            relpath = (here / file_name).relative_to(root).as_posix()
            (found if Path(file_name).suffix.lower() in IMAGE_EXTENSIONS else others).append(relpath)
    if others:
        others.sort()
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        result.notes.append(f"{name}: ignored {len(others)} files that are not images ({shown})")
    return sorted(found)


def _stem(relpath: str) -> str:
    suffix = Path(relpath).suffix
    return relpath[: -len(suffix)] if suffix else relpath


def _full_key(relpath: str) -> str:
    return _stem(relpath) + Path(relpath).suffix.lower()


def _match(originals: list[str], edited: list[str], match_extension: bool):
    """``(matched (ref, mod) pairs, unmatched originals, unmatched edited)``; each unmatched file with a
    reason suffix ("" or an explanation of an ambiguous name)."""
    key = _full_key if match_extension else _stem
    by_ref: dict[str, list[str]] = {}
    by_mod: dict[str, list[str]] = {}
    for relpath in originals:
        by_ref.setdefault(key(relpath), []).append(relpath)
    for relpath in edited:
        by_mod.setdefault(key(relpath), []).append(relpath)
    matched, unmatched_ref, unmatched_mod = [], [], []
    for name in sorted(set(by_ref) | set(by_mod)):
        refs, mods = by_ref.get(name, []), by_mod.get(name, [])
        if len(refs) == 1 and len(mods) == 1:
            matched.append((refs[0], mods[0]))
            continue
        if refs and mods:
            # Several files share the name on one side: only identical full names pair up.
            mods_by_full = {_full_key(m): m for m in mods}
            pairs = [(r, mods_by_full[_full_key(r)]) for r in refs if _full_key(r) in mods_by_full]
            matched.extend(pairs)
            paired = {p for pair in pairs for p in pair}
            refs, mods = [r for r in refs if r not in paired], [m for m in mods if m not in paired]
            if len(refs) == 1 and len(mods) == 1:
                matched.append((refs[0], mods[0]))
                continue
        reason = ""
        if len(by_ref.get(name, [])) > 1 or len(by_mod.get(name, [])) > 1:
            reason = f"; ambiguous: {', '.join(by_ref.get(name, []) + by_mod.get(name, []))} share the name {name!r}"
            reason += "" if match_extension else " (match_extension=True pairs by full name)"
        unmatched_ref.extend((r, reason) for r in refs)
        unmatched_mod.extend((m, reason) for m in mods)
    matched.sort()
    return matched, unmatched_ref, unmatched_mod
