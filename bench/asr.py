"""What speech recognition adds to an analysis: Whisper tiny and base on the CPU, 2 threads.

    .venv/bin/python -m bench.asr
Whisper weights cannot be downloaded here, so the models are built with the real tiny/base dimensions and random
weights: the encoder's cost is exactly the real one (Whisper always encodes a 30 s window), and decoding is capped at
`--tokens` tokens, about what a 5 s utterance needs (~2.5 words/s, ~1.3 tokens/word). With real weights the
numbers hold as long as the transcript has about that many tokens.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from bench.common import machine, update_readme, write_json

DIMS = {  # openai-whisper's published sizes
    "tiny": dict(n_mels=80, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=4, n_vocab=51865,
                 n_text_ctx=448, n_text_state=384, n_text_head=6, n_text_layer=4),
    "base": dict(n_mels=80, n_audio_ctx=1500, n_audio_state=512, n_audio_head=8, n_audio_layer=6, n_vocab=51865,
                 n_text_ctx=448, n_text_state=512, n_text_head=8, n_text_layer=6),
}


def main() -> None:
    import whisper

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--tokens", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(2)
    audio = (np.random.default_rng(0).standard_normal(16000 * 5) * 0.1).astype(np.float32)
    rows, data = [], {}
    for size, dims in DIMS.items():
        model = whisper.model.Whisper(whisper.model.ModelDimensions(**dims)).eval()
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(audio))
        options = whisper.DecodingOptions(language="en", fp16=False, sample_len=args.tokens, without_timestamps=True)
        with torch.inference_mode():
            whisper.decode(model, mel, options)  # warm-up
            enc, total = [], []
            for _ in range(args.runs):
                t = time.perf_counter()
                model.embed_audio(mel[None])
                enc.append(time.perf_counter() - t)
                t = time.perf_counter()
                whisper.decode(model, mel, options)
                total.append(time.perf_counter() - t)
        data[size] = {"encoder_s": statistics.median(enc), "decode_total_s": statistics.median(total),
                      "params_m": sum(p.numel() for p in model.parameters()) / 1e6}
        rows.append(f"| {size} | {data[size]['params_m']:.0f} M | {data[size]['encoder_s']:.2f} s | "
                    f"{data[size]['decode_total_s']:.2f} s |")
    write_json("asr", {"machine": machine(), "tokens": args.tokens, "asr": data})
    table = (f"| Whisper | parameters | encoder (30 s window) | encoder + greedy decoding of {args.tokens} tokens |\n"
             "| --- | --- | --- | --- |\n") + "\n".join(rows)
    update_readme("asr", table)
    print(table)


if __name__ == "__main__":
    main()
