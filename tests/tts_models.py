"""A tiny random-weight VITS (MMS-TTS layout) that tests and benchmarks load the real way.

Model hubs are out of reach on the build machines, so this writes what
``facebook/mms-tts-*`` ships (config.json, model.safetensors, vocab.json,
tokenizer_config.json) into a folder, with sizes small enough that loading and
synthesis take milliseconds. The words are noise; durations are realistic: the
duration predictor's bias is set so each token (a character or the blank between two)
lasts 3.5 frames, about 0.11 s per character, which lets tests see speaking-rate changes.
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path

SAMPLE_RATE = 16_000
# MMS vocabularies: a pad/blank first, the letters the language's romanisation uses.
VOCAB = ["_", " ", "'", "-", *string.ascii_lowercase, "<unk>"]
FRAMES_PER_TOKEN = 3.5


def build_tiny_vits(folder: Path, *, uroman: bool = False) -> Path:
    """Save a tiny VitsModel and its VitsTokenizer into ``folder`` (created); returns it."""
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "config.json").exists() and (folder / "vocab.json").exists():
        return folder
    config = VitsConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        ffn_dim=32,
        flow_size=16,
        spectrogram_bins=17,
        upsample_initial_channel=16,
        upsample_rates=[8, 8, 4],
        upsample_kernel_sizes=[16, 16, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]],
        use_stochastic_duration_prediction=False,
        duration_predictor_filter_channels=16,
        prior_encoder_num_flows=1,
        prior_encoder_num_wavenet_layers=1,
        posterior_encoder_num_wavenet_layers=1,
        sampling_rate=SAMPLE_RATE,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = VitsModel(config).eval()
    with torch.no_grad():
        model.duration_predictor.proj.weight.zero_()
        model.duration_predictor.proj.bias.fill_(math.log(FRAMES_PER_TOKEN))
    model.save_pretrained(folder)

    vocab_file = folder / "vocab.json"
    vocab_file.write_text(json.dumps({c: i for i, c in enumerate(VOCAB)}), encoding="utf-8")
    tokenizer = VitsTokenizer(
        str(vocab_file),
        pad_token="_",
        unk_token="<unk>",
        language="kor" if uroman else "eng",
        add_blank=True,
        normalize=True,
        phonemize=False,
        is_uroman=uroman,
    )
    tokenizer.save_pretrained(folder)
    return folder
