import pytest

from idc_engine.data.formats import format_options, read_format
from idc_engine.data.formats.image_folders import read_image_folders
from tests.data.formats import write_images


@pytest.fixture
def folders(tmp_path):
    """Originals and edits: one edit saved under another extension, one in a subfolder, one on each
    side without a counterpart, plus a hidden file and a text file that are not pairs."""
    originals, edited = tmp_path / "originals", tmp_path / "edited"
    write_images(originals / name for name in ("a.jpg", "b.png", "street/c.JPEG", "only_original.png"))
    write_images(edited / name for name in ("a.png", "b.png", "street/c.jpeg", "street/only_edit.webp"))
    write_images([originals / ".hidden.png", edited / ".cache" / "a.png"])
    (originals / "notes.txt").write_text("shot on a phone")
    return originals, edited


def test_pairs_by_relative_name_any_extension_and_names_the_unmatched(folders):
    originals, edited = folders
    result = read_image_folders(originals, edited)
    assert [p.id for p in result.pairs] == ["a", "b", "street/c"]
    a = result.pairs[0]
    assert (a.reference, a.modified) == (originals / "a.jpg", edited / "a.png")
    assert a.captions == [] and not a.has_references and a.category is None and a.split == "unlabeled"
    assert result.pairs[2].metadata == {"reference_relpath": "street/c.JPEG", "modified_relpath": "street/c.jpeg"}
    missing = dict(result.missing)
    assert set(missing) == {"only_original.png", "street/only_edit.webp"}
    assert missing["only_original.png"].startswith(f"original (reference_dir) has no edited version in {edited}")
    assert missing["street/only_edit.webp"].startswith(f"edited image (modified_dir) has no original in {originals}")
    assert "1 originals without an edited version, 1 edited images without an original" in result.summary()
    assert "reference_dir: ignored 1 files that are not images (notes.txt)" in result.notes
    assert "3 pairs (train 0, validation 0, test 0, unlabeled 3); 2 missing images" in result.summary()


def test_match_extension_pairs_only_identical_names(folders):
    originals, edited = folders
    result = read_image_folders(originals, edited, match_extension=True, split="val")
    assert [p.id for p in result.pairs] == ["b", "street/c"]  # extensions compare case-insensitively
    assert {p.split for p in result.pairs} == {"validation"}
    assert {"a.jpg", "a.png", "only_original.png", "street/only_edit.webp"} == {m for m, _ in result.missing}


def test_a_name_shared_by_several_files_pairs_full_names_and_reports_the_rest(tmp_path):
    originals, edited = tmp_path / "o", tmp_path / "e"
    write_images([originals / "x.jpg", originals / "x.png", originals / "y.jpg", edited / "x.png", edited / "y.tif"])
    result = read_image_folders(originals, edited)
    assert [(p.id, p.metadata["reference_relpath"]) for p in result.pairs] == [("x", "x.png"), ("y", "y.jpg")]
    assert (
        result.missing[0][0] == "x.jpg" and "ambiguous: x.jpg, x.png, x.png share the name 'x'" in result.missing[0][1]
    )


def test_pair_ids_stay_unique_when_two_pairs_share_a_name(tmp_path):
    originals, edited = tmp_path / "o", tmp_path / "e"
    write_images(folder / name for folder in (originals, edited) for name in ("x.jpg", "x.png"))
    result = read_image_folders(originals, edited)
    assert [p.id for p in result.pairs] == ["x.jpg", "x.png"] and not result.missing


def test_a_folder_inside_the_other_is_not_read_twice(tmp_path):
    originals = tmp_path / "photos"
    write_images([originals / "a.png", originals / "edited" / "a.png"])
    result = read_image_folders(originals, originals / "edited")
    assert [(p.id, p.reference, p.modified) for p in result.pairs] == [
        ("a", originals / "a.png", originals / "edited" / "a.png")
    ]
    assert not result.missing


def test_the_registry_takes_the_folders_either_way(folders):
    originals, edited = folders
    assert set(format_options("image-folders")) >= {"reference_dir", "modified_dir", "match_extension", "split"}
    positional = read_format("image-folders", originals, edited)
    named = read_format("image-folders", None, None, reference_dir=originals, modified_dir=edited)
    assert positional.pairs == named.pairs and positional.format_name == "image-folders"


def test_bad_folders_name_the_argument(folders, tmp_path):
    originals, edited = folders
    with pytest.raises(FileNotFoundError, match=r"modified_dir .*nowhere does not exist"):
        read_image_folders(originals, tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"reference_dir: .*a.jpg' is a file; expected a folder"):
        read_image_folders(originals / "a.jpg", edited)
    with pytest.raises(ValueError, match="reference_dir and modified_dir must be two different folders"):
        read_image_folders(originals, originals)
    with pytest.raises(ValueError, match="modified_dir: format 'image-folders' needs the folder of the edited images"):
        read_image_folders(originals)
    with pytest.raises(ValueError, match="reference_dir: given as .* and, as annotations, .*; give the folder once"):
        read_image_folders(originals, edited, reference_dir=edited)
    with pytest.raises(ValueError, match="image-folders: split must be one of"):
        read_image_folders(originals, edited, split="holdout")
