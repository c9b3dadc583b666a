import torch
import torch.nn.functional as F

from idc_engine.model.text import IGNORE_INDEX


def test_only_caption_tokens_and_eos_are_labelled(tiny_model):
    batch = tiny_model.text_batch(["the red circle turned blue", "no change"])
    layout = tiny_model.layout()
    prefix = len(layout.prefix)
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert (ids[:, : tiny_model.num_query_tokens] == layout.image_token_id).all()
    assert (labels[:, :prefix] == IGNORE_INDEX).all()
    # Padding (the second row is shorter) is neither attended nor learned.
    assert ((labels != IGNORE_INDEX) <= (mask == 1)).all()
    assert (labels[1][mask[1] == 0] == IGNORE_INDEX).all() and (mask[1] == 0).any()
    for row in range(2):
        learned = ids[row][labels[row] != IGNORE_INDEX]
        assert learned[-1] == layout.eos_token_id
        text = tiny_model.tokenizer.decode(learned[:-1])
        assert text.strip() == ["the red circle turned blue", "no change"][row]


def test_loss_is_cross_entropy_over_caption_tokens_only(tiny_model, image_pairs):
    pixel_values = tiny_model.pixel_values(image_pairs[:2])
    batch = tiny_model.text_batch(["a green square was added", "nothing"])
    output = tiny_model(pixel_values, **batch)
    logits = output.logits[:, :-1].float()
    targets = batch["labels"][:, 1:]
    manual = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX)
    assert torch.allclose(output.loss, manual, atol=1e-5)


def test_prompt_reaches_the_language_model(tiny_model, image_pairs):
    pixel_values = tiny_model.pixel_values(image_pairs[:2])
    captions = ["the red circle turned blue", "no change was made"]
    with torch.no_grad():
        first = tiny_model.loss(pixel_values, captions)
        prompt_ids = tiny_model.text_batch(captions)["input_ids"]
        tiny_model.config.prompt = "What changed?"
        second = tiny_model.loss(pixel_values, captions)
        other_ids = tiny_model.text_batch(captions)["input_ids"]
    assert not torch.equal(prompt_ids[:, :30], other_ids[:, :30])
    assert abs(first.item() - second.item()) > 1e-4


def test_per_row_prompts_shift_the_labels(tiny_model):
    batch = tiny_model.text_batch(["a b", "a b"], prompts=[None, "Describe the two images in detail please:"])
    learned = [(batch["labels"][i] != IGNORE_INDEX).nonzero()[0].item() for i in range(2)]
    assert learned[1] > learned[0]
