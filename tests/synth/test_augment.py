"""Syned end to end, offline: variants that are deterministic, resumable, filtered and captioned."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import IDCPair
from idc_engine.metrics.change_reading import exactly_right
from idc_engine.synth.augment import SynedConfig, augment


class Killed(Exception):
    pass


def _digest(folder):
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "report.json")
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture
def photo_pairs(tmp_path):
    from skimage import data

    pairs = []
    for index, name in enumerate(("astronaut", "coffee", "chelsea")):
        image = Image.fromarray(getattr(data, name)()).convert("RGB").resize((96, 72))
        path = tmp_path / "photos" / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        image.save(path)
        instruction = {0: "add a red circle", 1: None, 2: "make it look like night"}[index]
        category = {0: "add", 1: "style", 2: "global"}[index]
        metadata = {"instruction": instruction} if instruction else {}
        pairs.append(IDCPair(name, path, path, [], "train", category, metadata))
    return pairs


def test_photos_get_filtered_captioned_variants_and_the_same_seed_gives_the_same_bytes(photo_pairs, tmp_path):
    config = SynedConfig(variations=3, captions=4, seed=5)
    report = augment(photo_pairs, tmp_path / "a", config)
    assert report.sources == 3 and report.variants == 9 and report.accepted + sum(report.rejected.values()) == 9
    synthetic = read_manifest(tmp_path / "a" / "synthetic.jsonl")
    assert len(synthetic) == report.accepted > 0
    for pair in synthetic:
        assert pair.split == "train" and len(pair.captions) == 4 and pair.metadata["synthetic"]
        assert pair.metadata["source_pair"] in {"astronaut", "coffee", "chelsea"}
        assert pair.metadata["editor"]["seed"] == pair.metadata["seed"]
        assert pair.metadata["quality"]["changed_share"] > 0
    by_source = {p.metadata["source_pair"]: p for p in synthetic}
    if "chelsea" in by_source:
        assert "night" in by_source["chelsea"].metadata["instruction"]
    everything = read_manifest(tmp_path / "a" / "manifest.jsonl")
    assert len(everything) == 3 + len(synthetic)
    saved = json.loads((tmp_path / "a" / "report.json").read_text())
    assert saved["report"]["accepted"] == report.accepted and saved["editor"] == "procedural"

    augment(photo_pairs, tmp_path / "b", config)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    augment(photo_pairs, tmp_path / "c", SynedConfig(variations=3, captions=4, seed=6))
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_a_killed_run_resumes_and_ends_as_an_uninterrupted_one(photo_pairs, tmp_path):
    config = SynedConfig(variations=2, captions=3, seed=1)
    augment(photo_pairs, tmp_path / "straight", config)

    def kill_after_two(done, total):
        if done == 2:
            raise Killed

    with pytest.raises(Killed):
        augment(photo_pairs, tmp_path / "resumed", config, progress=kill_after_two)
    report = augment(photo_pairs, tmp_path / "resumed", config)
    assert report.resumed == 4  # the two sources finished before the kill were not edited again
    assert _digest(tmp_path / "straight") == _digest(tmp_path / "resumed")


def test_shapes_change_variants_repeat_the_pairs_own_change(shapes_pairs, tmp_path):
    sources = [p for p in shapes_pairs if p.split == "train"][:10]
    report = augment(sources, tmp_path / "shapes", SynedConfig(variations=2, seed=0))
    synthetic = read_manifest(tmp_path / "shapes" / "synthetic.jsonl")
    assert report.accepted == len(synthetic) and report.accepted >= 16
    by_id = {p.id: p for p in sources}
    for pair in synthetic:
        source = by_id[pair.metadata["source_pair"]]
        assert pair.category == source.category and pair.metadata["change"] == source.metadata["change"]
        assert exactly_right(pair, source.captions[0])  # the variant states the source's change
        modified = np.asarray(Image.open(pair.modified))
        assert modified.shape == np.asarray(Image.open(source.modified)).shape


def test_the_test_split_is_never_augmented():
    with pytest.raises(ValueError, match="splits: never augment the test split"):
        SynedConfig(splits=("train", "test"))
    with pytest.raises(ValueError, match="variations must be a positive integer, got 0"):
        SynedConfig(variations=0)


def test_an_editor_without_an_instruction_to_follow_skips_the_pair_and_says_so(photo_pairs, tmp_path):
    class NeedsInstructions:
        name = "needs-instructions"

        def edit_batch(self, items):
            for _, instruction, _, _ in items:
                if instruction is None:
                    raise ValueError("instruction: this editor needs one")
            from idc_engine.synth.procedural import ProceduralEditor

            return ProceduralEditor().edit_batch(items)

    report = augment(photo_pairs, tmp_path / "x", SynedConfig(variations=1), editor=NeedsInstructions())
    assert [pair for pair, _ in report.skipped_sources] == ["coffee"]
    assert "instruction: this editor needs one" in report.skipped_sources[0][1]
