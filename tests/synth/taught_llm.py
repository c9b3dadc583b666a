"""A tiny causal LM taught to answer two instructions' prompts: a real model for the reference-protocol tests."""

import torch

from idc_engine.synth.llm_variator import LLMVariator, LLMVariatorConfig
from tests.synth.tiny_llm import tiny_chat_llm

# What the tiny LM is taught to answer: two faithful rewrites each, and the failures the guardrails must catch.
ANSWERS = {
    "Add a hat to the dog": "1. Put a hat on the dog.\n2. Give the dog a hat.\n3. The dog no longer has a hat.\n"
    "4. Sure! Here you go.",
    "Remove the car": "1. Get rid of the car.\n2. Take the car away.\n3. Add a car.\n4. Erase the car.",
}
SYSTEM = "Rewrite."  # a short system prompt keeps the taught sequences short


def taught_config(path, **kwargs) -> LLMVariatorConfig:
    settings = {"mode": "instructions", "system_prompt": SYSTEM, "max_new_tokens": 48, "max_attempts": 1}
    return LLMVariatorConfig(model_path=path, device="cpu", **{**settings, **kwargs})


def build_taught_llm(folder) -> str:
    """A 2-layer Llama (width 48) trained for 90 steps (~4 s) to answer the two instructions' prompts as in
    ANSWERS, saved like a checkpoint: a real model through the real loading, templating and sampling code."""
    corpus = [*ANSWERS, *ANSWERS.values(), "system: user: assistant: Instruction: Write different rewrites"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model, tokenizer = tiny_chat_llm(corpus, vocab_size=500, width=48)
    prompter = LLMVariator(taught_config("unused"), generate_fn=lambda prompts, seeds: [""] * len(prompts))
    prompter._tokenizer = tokenizer  # the chat-templated prompt the variator will send
    sequences = []
    for instruction, answer in ANSWERS.items():
        prompt = tokenizer(prompter.build_prompt(instruction, 4), add_special_tokens=False)["input_ids"]
        target = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        sequences.append((torch.tensor([prompt + target]), torch.tensor([[-100] * len(prompt) + target])))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(90):
        loss = sum(model(input_ids=ids, labels=labels).loss for ids, labels in sequences)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.set_num_threads(threads)
    assert loss.item() < 0.5
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
