import numpy as np
import pytest
from PIL import Image

from idc_engine.data.images import load_image
from idc_engine.data.loading import load_pairs
from idc_engine.data.pair import IDCPair
from idc_engine.errors import ImageLoadError


def test_grayscale_palette_and_rgba_become_rgb(tmp_path):
    Image.new("L", (8, 6), 100).save(tmp_path / "gray.png")
    palette = Image.new("P", (8, 6), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette.save(tmp_path / "palette.png")
    rgba = Image.new("RGBA", (8, 6), (255, 0, 0, 0))  # fully transparent red -> white background
    rgba.save(tmp_path / "rgba.png")
    for name, expected in (("gray", (100, 100, 100)), ("palette", (10, 200, 30)), ("rgba", (255, 255, 255))):
        image = load_image(tmp_path / f"{name}.png")
        assert image.mode == "RGB" and image.size == (8, 6)
        assert np.abs(np.asarray(image)[0, 0].astype(int) - expected).max() <= 3, name


def test_16_bit_is_scaled_not_clipped(tmp_path):
    array = np.full((4, 4), 65535 // 2, dtype=np.uint16)
    Image.fromarray(array).save(tmp_path / "deep.png")
    pixel = np.asarray(load_image(tmp_path / "deep.png"))[0, 0]
    assert 125 <= pixel[0] <= 130


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (20, 10), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_image(tmp_path / "rotated.jpg").size == (10, 20)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "file does not exist"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_bytes(b"this is not an image at all"), "not a decodable image"),
    ],
)
def test_unusable_files_name_pair_and_path(tmp_path, make, message):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ImageLoadError, match=rf"pair 'p7': image .*bad\.png: {message}"):
        load_image(path, pair_id="p7")


def test_truncated_file_is_reported(tmp_path):
    Image.effect_noise((64, 64), 50).convert("RGB").save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match=r"pair 'p1': image .*cut\.png: .*truncated"):
        load_image(tmp_path / "cut.png", pair_id="p1")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    with pytest.raises(ImageLoadError, match=r"300x300 = 90000 pixels exceeds the limit of 10000"):
        load_image(tmp_path / "big.png", pair_id="b", max_pixels=10_000)


def test_skip_mode_counts_bad_pairs_and_keeps_good_ones(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    (tmp_path / "empty.png").write_bytes(b"")
    good = IDCPair("good", tmp_path / "ok.png", tmp_path / "ok.png", ["c"])
    bad = IDCPair("bad", tmp_path / "ok.png", tmp_path / "empty.png", ["c"])
    kept, images, report = load_pairs(
        [good, bad, good.__class__("g2", good.reference, good.modified, ["c"])], skip_bad=True
    )
    assert [p.id for p in kept] == ["good", "g2"] and len(images) == 2
    assert report.loaded == 2 and report.skipped_count == 1
    assert report.skipped[0][0] == "bad" and "file is empty" in report.summary()
    with pytest.raises(ImageLoadError, match="pair 'bad'"):
        load_pairs([good, bad])


def test_images_beyond_the_memory_budget_are_read_again_from_disk(shapes_pairs):
    pairs = shapes_pairs[:5]
    _, cached, _ = load_pairs(pairs)
    _, streamed, _ = load_pairs(pairs, max_cached_pixels=2 * 64 * 64)  # room for one pair only
    assert len(streamed) == 5 and streamed._cached[0] is not None and streamed._cached[1] is None
    for (a_ref, a_mod), (b_ref, b_mod) in zip(cached, streamed):
        assert np.array_equal(np.asarray(a_ref), np.asarray(b_ref))
        assert np.array_equal(np.asarray(a_mod), np.asarray(b_mod))
    assert len(streamed[1:3]) == 2
