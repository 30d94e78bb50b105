"""load_clip on real files from ../shared/data and every kind of bad input."""

import random
import shutil
import warnings

import numpy as np
import pytest
from conftest import CREMAD, EMODB, FER
from media import huge_png

from stresslab.clip import SAMPLE_RATE, ClipError, ClipLimits, load_clip, probe

FLV = CREMAD / "1001_DFA_ANG_XX.flv"
MP3 = CREMAD / "1002_DFA_ANG_XX.mp3"


def test_cremad_flv_decodes_frames_and_audio():
    clip = load_clip(FLV)
    assert clip.kind == "video"
    assert clip.frames.dtype == np.uint8 and clip.frames.shape[1:] == (360, 480, 3)
    assert 8 <= len(clip.frames) <= 10  # ~2.2 s sampled at 4 fps
    assert np.all(np.diff(clip.frame_times) > 0.2)
    assert clip.audio.dtype == np.float32 and abs(clip.audio.size / SAMPLE_RATE - 2.27) < 0.1
    assert 2.1 < clip.duration < 2.4


def test_fps_is_a_setting():
    assert len(load_clip(FLV, limits=ClipLimits(fps=10)).frames) > 20


def test_mp3_and_wav_resampled_to_16k_mono():
    clip = load_clip(MP3)
    assert clip.kind == "audio" and clip.frames is None and clip.audio.ndim == 1
    wav = next((EMODB / "wav").glob("*.wav"))
    import soundfile

    info = soundfile.info(wav)
    clip = load_clip(wav)
    assert abs(clip.audio.size - info.frames * SAMPLE_RATE / info.samplerate) < 400


def test_image_is_a_one_frame_clip():
    img = next((FER / "val" / "happy").glob("*.jpg"))
    clip = load_clip(img)
    assert clip.kind == "image" and clip.frames.shape == (1, 48, 48, 3) and clip.audio is None


def test_arrays_and_text():
    stereo = (np.random.default_rng(0).standard_normal((44100, 2)) * 3000).astype(np.int16)
    clip = load_clip((44100, stereo))  # as Gradio gives it
    assert clip.audio.shape == (16000,) and np.abs(clip.audio).max() <= 1
    frames = np.zeros((30, 64, 64, 3), np.uint8)
    clip = load_clip(frames, fps=30)
    assert len(clip.frames) == 4 and clip.duration == 1.0
    clip = load_clip(text="  I am fine  ")
    assert clip.kind == "text" and clip.text == "I am fine"
    assert load_clip(MP3, text="typed words").text == "typed words"


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt_video", "corrupt_image", "text_file", "folder",
                                  "nothing", "blank_text"])
def test_bad_input_has_a_clear_message(tmp_path, case):
    path = {"missing": tmp_path / "nope.mp4", "empty": tmp_path / "empty.wav", "corrupt_video": tmp_path / "x.mp4",
            "corrupt_image": tmp_path / "x.png", "text_file": tmp_path / "notes.txt", "folder": tmp_path}.get(case)
    if case == "empty":
        path.touch()
    elif case in ("corrupt_video", "corrupt_image", "text_file"):
        path.write_bytes(b"this is not media " * 50)
    expected = {"missing": "no such file", "empty": "empty", "corrupt_video": "corrupt", "corrupt_image": "corrupt",
                "text_file": "unsupported file type", "folder": "folder", "nothing": "nothing to analyse",
                "blank_text": "nothing to analyse"}[case]
    with pytest.raises(ClipError, match=expected):
        load_clip(path, text="   " if case == "blank_text" else None)


@pytest.mark.parametrize("size,match", [(3000, "holds no video or audio stream"),
                                        (20000, "corrupt file, decoding failed")])
def test_truncated_video_is_refused(tmp_path, size, match):
    """The first 3000 bytes of the flv hold only its header; 20000 bytes break off inside the packets."""
    cut = tmp_path / "cut.flv"
    cut.write_bytes(FLV.read_bytes()[:size])
    with pytest.raises(ClipError, match=match) as e:
        load_clip(cut)
    assert str(e.value).startswith("cut.flv: ")


@pytest.mark.parametrize("side", [20000, 10000])  # over PIL's error threshold (178 Mpx), over its warning (89 Mpx)
def test_decompression_bomb_is_refused_from_its_header(tmp_path, side):
    bomb = huge_png(tmp_path / "bomb.png", side, side)
    assert bomb.stat().st_size < 2 << 20
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ClipError, match=f"bomb.png: {side}x{side} is over the 8294400 pixel limit"):
            load_clip(bomb)
        with pytest.raises(ClipError, match="pixel limit"):
            probe(bomb)
    assert [str(w.message) for w in caught] == []  # no DecompressionBombWarning


def test_messages_name_the_file_only_and_stay_on_one_line(tmp_path):
    server_tmp = tmp_path / "gradio" / "3f9c0a" / "uploads"
    server_tmp.mkdir(parents=True)
    for name in ("private_interview_john_doe.png", "two\nlines.png", "two\nlines.mp4", "esc\x1b[31m.mp3"):
        path = server_tmp / name
        path.write_bytes(random.Random(0).randbytes(3000))  # seeded: the same bytes every run
        with pytest.raises(ClipError) as e:
            load_clip(path)
        message = str(e.value)
        assert "\n" not in message and "\x1b" not in message and str(server_tmp) not in message
        assert "gradio" not in message and message.startswith(name.replace("\n", "\\n").replace("\x1b", "\\x1b"))


def test_probe_tells_the_kind_of_real_media_and_refuses_the_rest(tmp_path):
    img = next((FER / "val" / "happy").glob("*.jpg"))
    assert (probe(FLV), probe(MP3), probe(img)) == ("video", "audio", "image")
    fake = tmp_path / "fake.mp3"
    fake.write_bytes(b"ID3" + random.Random(1).randbytes(4000))
    with pytest.raises(ClipError, match="fake.mp3"):
        probe(fake)
    notes = tmp_path / "notes.txt"
    notes.write_text("not media")
    with pytest.raises(ClipError, match="^shown.txt: unsupported file type"):
        probe(notes, name="shown.txt")  # the name a message uses (the store probes a temporary copy)


@pytest.mark.parametrize("limit,match", [(dict(max_seconds=1.0), "limit is 1 s"), (dict(max_bytes=1000), "MB limit"),
                                         (dict(max_pixels=100 * 100), "pixel limit"),
                                         (dict(max_text_chars=3), "characters")])
def test_limits(tmp_path, limit, match):
    src = shutil.copy(FLV, tmp_path / "a.flv")
    with pytest.raises(ClipError, match=match):
        load_clip(src, text="long text" if "max_text_chars" in limit else None, limits=ClipLimits(**limit))


def test_long_recording_array_is_refused():
    with pytest.raises(ClipError, match="limit"):
        load_clip((16000, np.zeros(16000 * 5, np.float32)), limits=ClipLimits(max_seconds=2))
    with pytest.raises(ClipError, match="empty"):
        load_clip((16000, np.zeros(0, np.float32)))
