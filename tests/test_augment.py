"""Recording-like waveform augmentation (training.augment) on a real CREMA-D clip."""

import numpy as np
from conftest import CREMAD

from stresslab.clip import load_clip
from training.augment import AugmentConfig, add_noise, augment, codec, colored_noise, lowpass, reverb, speed


def _db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)))


def test_each_step_on_real_speech():
    wave = load_clip(CREMAD / "1002_DFA_ANG_XX.mp3").audio
    rng = np.random.default_rng(0)
    for snr in (5.0, 20.0):
        noisy = add_noise(wave, snr, rng)
        assert abs(_db(wave) - _db(noisy - wave) - snr) < 0.1
    babble = load_clip(CREMAD / "1002_DFA_SAD_XX.mp3").audio
    assert abs(_db(wave) - _db(add_noise(wave, 10.0, rng, babble) - wave) - 10.0) < 0.1
    wet = reverb(wave, 0.5, rng)
    assert wet.shape == wave.shape and abs(_db(wet) - _db(wave)) < 0.1 and np.corrcoef(wet, wave)[0, 1] < 0.9
    spec = lambda x: np.abs(np.fft.rfft(x)) ** 2  # noqa: E731
    f = np.fft.rfftfreq(wave.size, 1 / 16000)
    low = spec(lowpass(wave, 3000.0))
    assert low[f > 4000].sum() < 1e-3 * spec(wave)[f > 4000].sum()
    for name in ("mp3", "opus"):
        y = codec(wave, name, 24_000)
        assert y.shape == wave.shape and np.corrcoef(y, wave)[0, 1] > 0.8  # same signal, time-aligned
    assert abs(speed(wave, 1.1).size - wave.size / 1.1) < 5
    pink = colored_noise(16000, rng, 1.0)
    ps, fp = spec(pink), np.fft.rfftfreq(pink.size, 1 / 16000)
    assert ps[(fp > 100) & (fp < 200)].mean() > 5 * ps[(fp > 4000) & (fp < 8000)].mean()


def test_augment_chain_is_seeded_and_bounded():
    wave = load_clip(CREMAD / "1002_DFA_HAP_XX.mp3").audio
    cfg = AugmentConfig(p_noise=1.0, p_reverb=1.0, p_lowpass=1.0, p_codec=1.0, p_speed=1.0)
    a = augment(wave, np.random.default_rng(3), cfg)
    b = augment(wave, np.random.default_rng(3), cfg)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and np.abs(a).max() <= 1.0 and 0.85 * wave.size < a.size < 1.15 * wave.size
    assert not np.array_equal(a, augment(wave, np.random.default_rng(4), cfg))


def test_training_features_with_augmented_copies(tmp_path):
    from stresslab.config import ModelConfig
    from training.features import audio_arrays, split_features

    recs = [{"audio": str(CREMAD / f"1002_DFA_{e}_XX.mp3"), "emotion": n, "speaker": "1002"}
            for e, n in (("ANG", "anger"), ("SAD", "sad"))]
    cfg = ModelConfig()
    cfg.audio.speech_detector = "relative"  # copies made up to 20 dB quieter are still speech
    data = audio_arrays(recs, cfg, "t", tmp_path, speeds=(1.0,), augment=2, seed=0)
    feats = split_features(data)
    assert len(feats) == 6 and data["y"].tolist() == [0, 0, 0, 5, 5, 5]
    assert not np.allclose(feats[0][:50], feats[1][:50])  # the copies differ from the clean clip
    again = audio_arrays(recs, cfg, "t", tmp_path, speeds=(1.0,), augment=2, seed=0)  # from the cache
    np.testing.assert_array_equal(again["feats"], data["feats"])
    cfg.audio.utterance_norm = True  # another feature pipeline: not served from the first one's cache
    other = audio_arrays(recs, cfg, "t", tmp_path, speeds=(1.0,), augment=2, seed=0)
    assert len(list(tmp_path.glob("audio-t-*.npz"))) == 2 and not np.allclose(other["feats"], data["feats"])
