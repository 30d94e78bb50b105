#!/usr/bin/env bash
# Creates .venv with everything StressLab needs, system packages included. Safe to run again: it only
# reinstalls when pyproject.toml or this script changed. Usage: scripts/setup.sh   (or: make setup)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAMP=.venv/.setup-stamp
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)

# System packages: ffmpeg (datasets' Audio/Video decoding via torchcodec), chromium + chromedriver (browser tests).
apt_needed=()
command -v ffmpeg >/dev/null || apt_needed+=(ffmpeg)
[ -x /usr/bin/chromium ] || apt_needed+=(chromium chromium-driver)
"$PY" -c "import ensurepip, venv" 2>/dev/null || apt_needed+=(python3-venv)
command -v make >/dev/null || apt_needed+=(make)
if [ ${#apt_needed[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing system packages: ${apt_needed[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_needed[@]}" >/dev/null
  else
    echo "setup: missing system packages; run: sudo apt-get install -y ${apt_needed[*]}" >&2
  fi
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x .venv/bin/stresslab ]; then
  exit 0
fi
echo "setup: creating .venv and installing Python packages (a few minutes the first time)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The CPU wheel of torch first: a looser requirement would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[torch,app,train,asr,onnx,export,dev]"
# openai-whisper without its deps: they are listed in the asr extra; this skips a 1 GB triton.
.venv/bin/python -m pip install -q --no-deps openai-whisper==20250625
echo "$want" > "$STAMP"
echo "setup: done (.venv/bin/stresslab is ready)"
