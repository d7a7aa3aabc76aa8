#!/usr/bin/env bash
# Optional training voices from Debian's non-free component: SVOX pico (two female voices, en-US and en-GB;
# Apache-2.0 lingware shipped without source) and RHVoice English (alan, bdl, clb; LGPL-2.1+).
# `wakeword train` uses them when they are installed; the shipped default model was trained with them.
# This enables the non-free component (its own sources file) if apt cannot already see the packages.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
packages="libttspico-utils rhvoice rhvoice-english"
if ! apt-cache policy libttspico-utils 2>/dev/null | grep -q "Candidate: [0-9]"; then
    . /etc/os-release
    if [ "${ID:-}" != debian ]; then
        echo "install_voices.sh: enable the repository that carries $packages on ${PRETTY_NAME:-this system}" \
             "(Ubuntu: multiverse), then rerun" >&2
        exit 1
    fi
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$VERSION_CODENAME" "$VERSION_CODENAME" | $SUDO tee /etc/apt/sources.list.d/wakeword-non-free.sources >/dev/null
    $SUDO apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $packages
