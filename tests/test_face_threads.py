"""One FaceDetector shared by threads (a live stream and an upload's analysis run at once in the app): OpenCV's
CascadeClassifier is not thread-safe (it failed with "getScaleData" assertions), so each thread has its own."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stresslab.clip import load_clip
from stresslab.towers.video import FaceDetector

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "examples" / "1001_DFA_ANG_XX.flv"  # bundled


def test_one_detector_in_four_threads_finds_what_it_finds_alone():
    frames = load_clip(EXAMPLE).frames[::3]
    detector = FaceDetector()
    alone = [detector.detect(f) for f in frames]
    assert all(b is not None for b in alone)

    def run(_: int) -> list:
        return [detector.detect(f) for f in frames for _ in range(3)][::3]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(8)))
    assert all(r == alone for r in results)
