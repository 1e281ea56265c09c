"""A tiny random-weight Stable Diffusion pipeline, saved to a folder like a real one.

The image engine loads models the way users do (``from_pretrained`` on a diffusers
folder) and no weights can be downloaded here, so the tests build a pipeline with
the real component classes at toy sizes: seeded weights, an 8× VAE like Stable
Diffusion's (so the real "multiple of 8" rules apply), and a CLIP tokenizer whose
vocabulary is the 256 byte symbols with no merges. A 256×256 image at 2 steps takes
well under a second on a small CPU. The pictures are noise; tests check structure,
sizes, determinism and limits, never content.
"""

from __future__ import annotations

import json
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, cast

_START, _END = "<|startoftext|>", "<|endoftext|>"


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's byte → printable character table (every byte gets one symbol)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def _write_vocab(folder: Path) -> dict[str, int]:
    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    for s in symbols:  # a word's last symbol carries the end-of-word marker
        vocab[s + "</w>"] = len(vocab)
    vocab[_START] = len(vocab)
    vocab[_END] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return vocab


def build_tiny_sd(folder: Path) -> Path:
    """Build a seeded tiny StableDiffusionPipeline and save_pretrained it into `folder`."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    with tempfile.TemporaryDirectory() as raw:
        vocab = _write_vocab(Path(raw))
        tokenizer = CLIPTokenizer(
            str(Path(raw) / "vocab.json"), str(Path(raw) / "merges.txt"), model_max_length=77
        )
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(  # four blocks: latents are 1/8 of the image, as in Stable Diffusion
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=256,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=1000,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=32,
            bos_token_id=vocab[_START],
            eos_token_id=vocab[_END],
            pad_token_id=vocab[_END],
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",  # few-step sampling, like the turbo models
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    cast(Any, pipe).save_pretrained(folder)  # diffusers' annotations miss the mixin
    return folder


@cache
def tiny_sd(folder: Path) -> Path:
    """build_tiny_sd once per folder per process (a session fixture's folder, a bench's)."""
    return build_tiny_sd(folder)
