"""The three towers on real inputs: faces, audio features, text; shapes and masking."""

import numpy as np
import pytest
import torch
from conftest import CREMAD, FER, SHARED

from stresslab.clip import load_clip
from stresslab.towers.audio import (
    AudioConfig,
    AudioEncoder,
    audio_features,
    is_silent,
    loudness_db,
    noise_floor_db,
    normalize_loudness,
)
from stresslab.towers.video import FaceDetector, VideoConfig, VideoEncoder, face_crops, normalize_crops, to_tensor


def test_face_found_in_every_cremad_frame():
    clip = load_clip(CREMAD / "1001_DFA_HAP_XX.flv")
    boxes = FaceDetector()(clip.frames)
    assert all(b is not None for b in boxes)
    x, y, w, h = boxes[0]
    assert 80 < w < 250 and 0 <= x and x + w <= 480 and y + h <= 360  # a face, not the whole frame
    crops, kept = face_crops(clip.frames, boxes, VideoConfig())
    assert crops.shape == (len(clip.frames), 1, 48, 48) and kept == list(range(len(clip.frames)))
    assert -1.0 <= float(crops.min()) and float(crops.max()) <= 1.0


def test_no_face_in_a_blank_frame_and_fer_image_is_the_face():
    blank = np.full((1, 240, 320, 3), 127, np.uint8)
    assert FaceDetector()(blank) == [None]
    crops, kept = face_crops(blank, [None], VideoConfig())
    assert crops.shape[0] == 0 and kept == []
    img = load_clip(next((FER / "val" / "sad").glob("*.jpg")))
    assert FaceDetector()(img.frames) == [(0, 0, 48, 48)]


def test_video_encoder_embeds_each_frame_alone_and_crops_agree_across_runtimes():
    torch.manual_seed(0)
    cfg = VideoConfig(resnet=dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                                  downsample_in_first_stage=False))
    enc = VideoEncoder(cfg, 16).eval()
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        batched, alone = enc.embed_frames(x), torch.cat([enc.embed_frames(x[i: i + 1]) for i in range(3)])
    assert batched.shape == (3, 16)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-4)
    # the torch helper and the numpy crops (what the ONNX runtime reads) are the same numbers
    gray = np.random.default_rng(0).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    assert np.array_equal(to_tensor(gray, cfg).numpy(), normalize_crops(gray, cfg))
    assert normalize_crops(gray, cfg).min() >= -1 and normalize_crops(gray, cfg).max() <= 1


def test_plain_cnn_embeds_each_frame_alone_and_its_config_is_checked():
    from stresslab.config import ModelConfig

    torch.manual_seed(0)
    enc = VideoEncoder(VideoConfig(arch="plain", widths=[8, 16, 32]), 16).eval()
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        batched, alone = enc.embed_frames(x), torch.cat([enc.embed_frames(x[i: i + 1]) for i in range(3)])
    assert batched.shape == (3, 16) and enc.features(x).shape == (3, 32)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-4)
    assert sum(p.numel() for p in VideoEncoder(VideoConfig(arch="plain"), 128).cnn.parameters()) == 1_172_640
    # one convolution in the first block: its 32 -> 32 convolution and BatchNorm (9216 + 64 parameters) are gone
    one = VideoEncoder(VideoConfig(arch="plain", convs=[1, 2, 2, 2]), 128).cnn
    assert sum(p.numel() for p in one.parameters()) == 1_172_640 - 9216 - 64
    assert [type(m).__name__ for m in one][:4] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    for video, message in (({"arch": "vgg"}, "video.arch: expected 'plain' or 'resnet'"),
                           ({"widths": [8] * 7, "image_size": 48}, "video.widths: expected 1 to 8"),
                           ({"widths": [0, 8]}, "video.widths"),
                           ({"widths": [8, 16], "convs": [1]}, r"video.convs: expected one count .* per width \(2\)"),
                           ({"widths": [8, 16], "convs": [1, 0]}, "video.convs")):
        with pytest.raises(ValueError, match=message):
            ModelConfig.from_dict({"video": video})


def test_mirror_average_is_the_mean_of_a_face_and_its_mirror_outside_training():
    torch.manual_seed(0)
    cfg = VideoConfig(resnet=dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                                  downsample_in_first_stage=False), mirror_average=True)
    enc = VideoEncoder(cfg, 16).eval()
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        averaged = enc.embed_frames(x)
        cfg.mirror_average = False
        plain, mirrored = enc.embed_frames(x), enc.embed_frames(x.flip(-1))
        cfg.mirror_average = True
        torch.testing.assert_close(averaged, (plain + mirrored) / 2, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(averaged, plain, atol=1e-4)  # a random image is not symmetric
        torch.testing.assert_close(enc.embed_frames(x.flip(-1)), averaged, atol=1e-5, rtol=1e-4)
        enc.train()  # training sees each (randomly mirrored) crop once
        enc.proj[0].p = 0.0
        torch.manual_seed(1)
        train_mode = enc.embed_frames(x)
        cfg.mirror_average = False
        torch.manual_seed(1)
        torch.testing.assert_close(train_mode, enc.embed_frames(x))


def test_audio_features_real_speech():
    clip = load_clip(CREMAD / "1002_DFA_ANG_XX.mp3")
    cfg = AudioConfig()
    f = audio_features(clip.audio, cfg)
    assert f.shape == (1 + clip.audio.size // cfg.hop_length, cfg.n_features) and np.isfinite(f).all()
    voiced = f[:, -1]
    assert 0.2 < voiced.mean() < 0.95  # speech has voiced and unvoiced frames
    log_f0 = f[voiced > 0, 3 * cfg.n_mfcc + 2]
    assert 60 < np.exp(np.median(log_f0)) < 500  # a plausible speaking pitch in Hz
    assert audio_features(np.zeros(100, np.float32), cfg).shape[1] == cfg.n_features  # too short: padded


def test_silence():
    assert is_silent(np.zeros(16000, np.float32)) and is_silent(None)
    assert is_silent(np.full(16000, 1e-4, np.float32))
    assert not is_silent(load_clip(CREMAD / "1002_DFA_SAD_XX.mp3").audio)
    assert loudness_db(np.ones(16000, np.float32)) == pytest.approx(0.0)


QUIET_SPEECH = SHARED / "ravdess-speech" / "Actor_05" / "03-01-04-01-01-01-05.flac"  # sad, normal intensity


def test_relative_speech_detector_on_quiet_speech_and_real_silence():
    rel = AudioConfig(speech_detector="relative")
    quiet = load_clip(QUIET_SPEECH).audio
    assert -53 < loudness_db(quiet) < -50  # quieter than the old fixed -50 dBFS threshold...
    assert is_silent(quiet) and not is_silent(quiet, rel)  # ...so "level" missed it; "relative" hears it
    assert is_silent(quiet[:8000], rel)  # its first 0.5 s, before the actor speaks (about -80 dBFS)
    for emotion in ("ANG", "NEU", "SAD"):
        clip = load_clip(CREMAD / f"1001_DFA_{emotion}_XX.flv").audio
        room = clip[800:6080]  # 50-380 ms: room noise before the voice, as loud as the quiet speech above
        assert loudness_db(room) > -54 and noise_floor_db(room) < loudness_db(room)
        assert is_silent(room, rel) and not is_silent(clip, rel)
    rng = np.random.default_rng(0)
    for db in (-90, -60, -30):  # steady noise at any level, digital zero and a hum are not speech
        assert is_silent((rng.standard_normal(16000) * 10 ** (db / 20)).astype(np.float32), rel)
    assert is_silent(np.zeros(16000, np.float32), rel) and is_silent(None, rel)
    assert is_silent((0.1 * np.sin(2 * np.pi * 50 * np.arange(16000) / 16000)).astype(np.float32), rel)
    speech = load_clip(CREMAD / "1002_DFA_SAD_XX.mp3").audio
    noise = rng.standard_normal(speech.size).astype(np.float32)
    noise *= np.sqrt((speech ** 2).mean() / (noise ** 2).mean()) * 10 ** (-5 / 20)
    assert not is_silent(speech + noise, rel)  # speech at 5 dB SNR is still speech
    with pytest.raises(ValueError, match="speech_detector"):
        is_silent(quiet, AudioConfig(speech_detector="vad"))


def test_audio_encoder_ignores_padding():
    torch.manual_seed(0)
    enc = AudioEncoder(AudioConfig(channels=16), 8).eval()
    f = torch.randn(1, 50, AudioConfig().n_features)
    padded = torch.cat([f, torch.randn(1, 30, f.shape[2])], 1)
    with torch.no_grad():
        torch.testing.assert_close(enc(f, torch.tensor([50])), enc(padded, torch.tensor([50])), atol=1e-5, rtol=1e-4)


def test_text_encoder(tiny_model):
    with torch.no_grad():
        out = tiny_model.text(["I am furious!", "what a lovely day, thank you so much"])
    assert out.shape == (2, tiny_model.config.embed_dim)
    tiny_model.text.set_trainable(1)
    trainable = [n for n, p in tiny_model.text.backbone.named_parameters() if p.requires_grad]
    assert trainable and all("layer.1." in n for n in trainable)
    tiny_model.text.set_trainable(0)
    assert not any(p.requires_grad for p in tiny_model.text.backbone.parameters())


def test_loudness_and_utterance_normalisation_make_features_gain_invariant():
    wave = load_clip(CREMAD / "1002_DFA_ANG_XX.mp3").audio
    quiet = wave * 10 ** (-30 / 20)  # the same voice 30 dB further from the microphone
    legacy = AudioConfig()
    e = 3 * legacy.n_mfcc  # log energy column
    assert abs(audio_features(wave, legacy)[:, e].mean() - audio_features(quiet, legacy)[:, e].mean()) > 2.0
    norm = AudioConfig(target_loudness_db=-23.0, utterance_norm=True)
    a, b = audio_features(wave, norm), audio_features(quiet, norm)
    np.testing.assert_allclose(a, b, atol=0.05)
    assert abs(a[:, :norm.n_mfcc].mean(0)).max() < 1e-3 and a[:, e].max() == 0.0
    np.testing.assert_allclose(normalize_loudness(quiet, -23.0), normalize_loudness(wave, -23.0), atol=1e-4)
    assert -23.0 < loudness_db(normalize_loudness(quiet, -23.0)) < -3.0  # the loudest 100 ms sit above the mean
    assert not np.any(normalize_loudness(np.zeros(800, np.float32), -23.0))


def test_a_config_without_the_new_audio_fields_keeps_the_old_pipeline():
    import json

    from stresslab.model import DEFAULT_MODEL_DIR, ModelConfig

    stored = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    for key in ("speech_detector", "target_loudness_db", "utterance_norm"):
        stored["audio"].pop(key, None)
    audio = ModelConfig.from_dict(stored).audio
    assert (audio.speech_detector, audio.target_loudness_db, audio.utterance_norm) == ("level", None, False)
    wave = load_clip(CREMAD / "1002_DFA_SAD_XX.mp3").audio
    np.testing.assert_array_equal(audio_features(wave, audio), audio_features(wave, AudioConfig()))
