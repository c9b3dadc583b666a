"""A small byte-level BPE tokenizer, trained locally, for the tiny preset.

Byte-level BPE never produces unknown tokens, so the tiny model can read any caption; words of the
corpus it was trained on become single tokens, which keeps sequences as short as a word vocabulary.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

PAD, BOS_EOS, UNK, IMAGE = "<pad>", "</s>", "<unk>", "<image>"


def build_tokenizer(corpus: list[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``corpus``; special tokens follow OPT (``</s>`` is both BOS and EOS)."""
    if not corpus:
        raise ValueError("corpus must hold at least one sentence")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=[PAD, BOS_EOS, UNK, IMAGE],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer=trainer)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS_EOS} $A", special_tokens=[(BOS_EOS, backend.token_to_id(BOS_EOS))]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_EOS,
        eos_token=BOS_EOS,
        pad_token=PAD,
        unk_token=UNK,
        extra_special_tokens={"image_token": IMAGE},
    )
    return tokenizer
