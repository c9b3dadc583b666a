import numpy as np
import pytest
import torch
from PIL import Image

from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.compose import compose_pair, difference_image
from idc_engine.model.config import BLIP2IDCConfig


def test_pair_is_stacked_with_the_reference_resized_to_the_modified_size():
    reference = Image.new("RGB", (10, 20), "red")
    modified = Image.new("RGB", (30, 15), "blue")
    vertical = compose_pair(reference, modified, "vertical")
    assert vertical.size == (30, 30)
    assert vertical.getpixel((5, 5)) == (255, 0, 0) and vertical.getpixel((5, 20)) == (0, 0, 255)
    horizontal = compose_pair(reference, modified, "horizontal")
    assert horizontal.size == (60, 15)
    assert horizontal.getpixel((5, 5)) == (255, 0, 0) and horizontal.getpixel((40, 5)) == (0, 0, 255)
    with pytest.raises(ValueError, match="orientation must be 'vertical' or 'horizontal', got 'diagonal'"):
        compose_pair(reference, modified, "diagonal")


def test_the_difference_encoding_draws_the_change_and_loses_nothing_of_the_pair():
    rng = np.random.default_rng(0)
    reference = Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    modified = reference.copy()
    modified.paste((255, 0, 0), (4, 6, 14, 16))  # a red square, 10 x 10
    difference = np.asarray(difference_image(reference, modified), dtype=int)
    changed = (difference != 128).any(-1)
    assert changed.sum() <= 100 and not changed[:6].any() and not changed[:, 14:].any()
    recovered = np.asarray(modified, dtype=int) - 2 * (difference - 128)  # the reference, to within one level
    assert np.abs(recovered - np.asarray(reference, dtype=int)).max() <= 1
    joined = compose_pair(reference, modified, "vertical", "difference")
    assert joined.size == (40, 48) and joined.getpixel((30, 2)) == (128, 128, 128)
    assert joined.crop((0, 24, 40, 48)).tobytes() == modified.tobytes()  # the modified image stays as it is
    with pytest.raises(ValueError, match="encoding must be 'concat' or 'difference' to compose one image, got 'x'"):
        compose_pair(reference, modified, "vertical", "x")


def test_a_difference_model_reads_the_difference_and_keeps_its_encoding(tiny_dir, image_pairs, tmp_path):
    model = BLIP2IDC.from_pretrained(tiny_dir, device="cpu", config=BLIP2IDCConfig(encoding="difference"))
    pixel_values = model.pixel_values(image_pairs)
    concat = BLIP2IDC.from_pretrained(tiny_dir, device="cpu").pixel_values(image_pairs)
    assert pixel_values.shape == concat.shape and not torch.equal(pixel_values, concat)
    half = pixel_values.shape[2] // 2
    below = slice(half + 3, None)  # the same modified image below (the resize blends the rows at the seam)
    assert torch.equal(pixel_values[:, :, below], concat[:, :, below])
    assert len(model.generate(pixel_values, max_new_tokens=5)) == len(image_pairs)
    again = BLIP2IDC.from_pretrained(model.save_pretrained(tmp_path / "difference"), device="cpu")
    assert again.config.encoding == "difference"
    assert torch.equal(again.pixel_values(image_pairs), pixel_values)


def test_images_in_memory_are_read_as_files_are(tiny_dir):
    """A 16-bit image handed over in memory is scaled to 8 bits, as a loaded file is, not saturated to white
    (which, with the 'difference' encoding, would draw an unchanged pair)."""
    from idc_engine.data.images import to_rgb

    rng = np.random.default_rng(1)
    reference = Image.fromarray(rng.integers(0, 65535, (32, 32), dtype=np.uint16))
    modified = Image.fromarray(rng.integers(0, 65535, (32, 32), dtype=np.uint16))
    model = BLIP2IDC.from_pretrained(tiny_dir, device="cpu", config=BLIP2IDCConfig(encoding="difference"))
    in_memory = model.pixel_values([(reference, modified)])
    assert torch.equal(in_memory, model.pixel_values([(to_rgb(reference), to_rgb(modified))]))
    half = in_memory.shape[2] // 2
    assert in_memory[0, :, :half].std() > 0.2  # the difference panel (top) is not one grey


def test_generate_returns_one_caption_per_pair_in_order(tiny_model, image_pairs):
    pixel_values = tiny_model.pixel_values(image_pairs)
    batched = tiny_model.generate(pixel_values, max_new_tokens=6)
    single = [tiny_model.generate(pixel_values[i : i + 1], max_new_tokens=6)[0] for i in range(len(image_pairs))]
    assert batched == single
    beams = tiny_model.generate(pixel_values, num_beams=3, max_new_tokens=6)
    assert len(beams) == len(image_pairs)


def test_two_stream_encodes_each_image_and_trains(tiny_dir, image_pairs, tmp_path):
    model = BLIP2IDC.from_pretrained(tiny_dir, device="cpu", config=BLIP2IDCConfig(encoding="two-stream"))
    pixel_values = model.pixel_values(image_pairs)
    assert pixel_values.shape[1] == 2 and pixel_values.ndim == 5
    loss = model.loss(pixel_values, ["a red circle was added"] * len(image_pairs))
    loss.backward()
    assert model.stream_embedding.grad is not None and model.stream_embedding.grad.abs().sum() > 0
    assert len(model.generate(pixel_values, max_new_tokens=5)) == len(image_pairs)
    with torch.no_grad():
        model.stream_embedding.add_(1.0)
    saved = model.save_pretrained(tmp_path / "two")
    again = BLIP2IDC.from_pretrained(saved, device="cpu")
    assert again.config.encoding == "two-stream"
    assert torch.equal(again.stream_embedding, model.stream_embedding.detach())


def test_missing_checkpoint_errors_name_the_path_or_id(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"path_or_id '.*nowhere': no such checkpoint folder"):
        BLIP2IDC.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(OSError, match=r"path_or_id 'nobody/blip2-missing': cannot load a BLIP-2 checkpoint \(offline"):
        BLIP2IDC.from_pretrained("nobody/blip2-missing", local_files_only=True)


def test_bad_config_values_name_the_field():
    with pytest.raises(ValueError, match="encoding must be one of .*, got 'late'"):
        BLIP2IDCConfig(encoding="late")
