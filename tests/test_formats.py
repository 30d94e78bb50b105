"""Every accepted container decodes: the real CREMA-D clip re-encoded to each video and audio format."""

import pytest
from conftest import CREMAD
from media import write_media

from stresslab.clip import ClipLimits, load_clip


@pytest.fixture(scope="module")
def source():
    return load_clip(CREMAD / "1001_DFA_NEU_XX.flv", limits=ClipLimits(fps=15))


@pytest.mark.parametrize("suffix,vcodec,acodec", [
    (".mp4", "libx264", "aac"), (".webm", "libvpx", "libopus"), (".mov", "mpeg4", "aac"),
    (".mkv", "libx264", "flac"), (".avi", "mpeg4", "libmp3lame"),
])
def test_video_containers(tmp_path, source, suffix, vcodec, acodec):
    path = write_media(tmp_path / f"clip{suffix}", source.frames, 15, source.audio, vcodec=vcodec, acodec=acodec)
    clip = load_clip(path)
    assert clip.kind == "video" and 8 <= len(clip.frames) <= 10
    assert abs(clip.duration - source.duration) < 0.3
    assert clip.audio is not None and abs(clip.audio.size / 16000 - source.audio.size / 16000) < 0.15


@pytest.mark.parametrize("suffix,acodec", [(".wav", "pcm_s16le"), (".flac", "flac"), (".ogg", "libopus"),
                                           (".m4a", "aac"), (".webm", "libopus"), (".mp3", "libmp3lame")])
def test_audio_containers(tmp_path, source, suffix, acodec):
    path = write_media(tmp_path / f"voice{suffix}", None, 0, source.audio, acodec=acodec)
    clip = load_clip(path)
    assert clip.kind == "audio" and clip.frames is None
    assert abs(clip.audio.size / 16000 - source.audio.size / 16000) < 0.15


def test_video_without_sound_track(tmp_path, source):
    clip = load_clip(write_media(tmp_path / "mute.mp4", source.frames, 15, None))
    assert clip.audio is None and "no sound track" in clip.notes[0]
