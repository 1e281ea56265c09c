"""A tiny random-weight LLaVA, saved to a folder like a real one, for the vision-language tests.

No vision-language model with trained weights can be downloaded here, so the tests build
one with the real classes: a CLIP vision tower (32×32 pixels, 8-pixel patches: 16 image
tokens), a projector and a two-layer Llama, all at toy sizes with seeded weights; a
byte-level BPE tokenizer trained with `tokenizers` on a few sentences (so any text,
Korean included, tokenizes); and a ChatML chat template that puts an ``<image>``
placeholder where each image part was. `transformers serve` loads it from the folder
like any hub model and answers OpenAI chat requests with image parts. The answers are
noise: tests check what reached the model (prompt tokens), never what it says.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

IMAGE_SIZE = 32
PATCH_SIZE = 8
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2  # tokens one image adds to the prompt
_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<pad>"]
_CORPUS = [
    "The learner raised the left arm too late at the chorus.",
    "Describe the picture: a person, a desk, a math problem written on paper.",
    "학생이 숙제 사진을 보냈어요. 문제를 설명해 주세요.",
    '{"description": "a smiling face", "objects": ["person"], "text": ""}',
    "0123456789 + - * / = ( ) [ ] { } : ; , . ! ?",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _tokenizer(folder: Path) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        bos_token="<|endoftext|>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_llava(folder: Path) -> Path:
    """Save a seeded tiny LlavaForConditionalGeneration and its processor into `folder`."""
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        GenerationConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "config.json").exists() and (folder / "processor_config.json").exists():
        return folder
    tokenizer = _tokenizer(folder)
    vocab = len(tokenizer)  # type: ignore[arg-type]
    image_token = tokenizer.convert_tokens_to_ids("<image>")  # type: ignore[attr-defined]
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")  # type: ignore[attr-defined]
    pad = tokenizer.convert_tokens_to_ids("<pad>")  # type: ignore[attr-defined]
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=IMAGE_SIZE,
            patch_size=PATCH_SIZE,
            projection_dim=32,
        ),
        text_config=LlamaConfig(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            bos_token_id=tokenizer.bos_token_id,  # type: ignore[attr-defined]
            eos_token_id=eos,
            pad_token_id=pad,
        ),
        image_token_index=image_token,
        image_seq_length=IMAGE_TOKENS,
        vision_feature_select_strategy="default",  # drops CLS: (32/8)² = 16 tokens an image
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=eos, pad_token_id=pad, max_new_tokens=16, do_sample=False
    )
    model.save_pretrained(folder)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        image_token="<image>",
        num_additional_image_tokens=1,  # the CLS token the tower adds (then dropped)
    )
    processor.save_pretrained(folder)
    return folder


@cache
def tiny_llava(folder: Path) -> Path:
    """build_tiny_llava once per folder per process."""
    return build_tiny_llava(folder)
