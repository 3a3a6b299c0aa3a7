"""builtin://tiny-llama: a tiny, randomly initialised Llama-architecture causal LM built in code.

It has the Llama architecture (RMSNorm, rotary positions, grouped-query attention, SwiGLU
MLP) with 2 layers and a hidden size of 64. Its tokenizer is a byte-level BPE of 512 tokens,
trained in code on a fixed English text, with a ChatML chat template. Every code path of
the text task runs on a CPU in seconds. Its weights are random, so it generates gibberish
until trained; it exists for wiring checks, demos and tests only. The same version always
builds the same files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from lora_trainer.models.cache_dir import cache_root

# Bump when the architecture, the tokenizer text or a seed changes, so cached copies are rebuilt.
TINY_LLAMA_VERSION = "1"
VOCAB_SIZE = 512
BOS_TOKEN, EOS_TOKEN, PAD_TOKEN = "<s>", "</s>", "<pad>"
CHAT_START, CHAT_END = "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, CHAT_START, CHAT_END)
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# The text the BPE merges are learned from. Everyday English, so common words become single
# tokens and sequences are about three times shorter than one token per byte.
TOKENIZER_TRAINING_TEXT = """\
Thank you for your question. We are happy to help you with your order, your account and
your delivery. Our team answers every message within one working day. Please tell us the
order number and the email address you used, and we will look into it right away.
The product is made from recycled materials and ships in a plain cardboard box. You can
return it within thirty days if it does not fit your needs. Refunds reach your account in
three to five days. Write to us at any time; we read every note and we reply in plain words.
How do I reset my password? Where is my parcel? Can I change the delivery address? What is
the price of the new model, and when will it be back in stock? Is there a discount for
students, teachers or small teams? The quick brown fox jumps over the lazy dog.
"""


def tiny_llama_path() -> Path:
    """Return the folder of builtin://tiny-llama (transformers format), building it on first use."""
    folder = cache_root() / "builtin" / f"tiny-llama-v{TINY_LLAMA_VERSION}"
    if (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tiny-llama-"))
    try:
        tokenizer = build_tiny_llama_tokenizer()
        build_tiny_llama_model(tokenizer).save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        # A concurrent builder may have won the race; both built identical files.
        if not folder.exists():
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def build_tiny_llama_tokenizer():  # noqa: ANN201 - a transformers fast tokenizer
    """Train the byte-level BPE tokenizer on TOKENIZER_TRAINING_TEXT and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TOKENIZER_TRAINING_TEXT.splitlines(), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=[CHAT_START, CHAT_END],
        model_max_length=1024,
    )
    wrapped.chat_template = CHATML_TEMPLATE
    return wrapped


def build_tiny_llama_model(tokenizer):  # noqa: ANN001, ANN201 - transformers types
    """Build the randomly initialised LlamaForCausalLM with a fixed seed."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    eos_ids = [tokenizer.convert_tokens_to_ids(EOS_TOKEN), tokenizer.convert_tokens_to_ids(CHAT_END)]
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos_ids,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=eos_ids, pad_token_id=tokenizer.pad_token_id
    )
    return model
