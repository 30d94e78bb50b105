"""The tests' media writer is the library's (stresslab.media.write_media): every accepted format from real frames
and audio."""

from stresslab.media import write_media

__all__ = ["write_media"]
