#!/usr/bin/env bash
# Create .venv and install babelclip from nothing.
#   scripts/setup.sh        the library and the embedded default model (extras: lite, eval)
#   scripts/setup.sh dev    everything, for the tests (all families, CLIP_benchmark, pytest,
#                           chromium + chromium-driver for the search page's browser tests)
# Debian packages with offline data (Tux Paint stamps, CLDR, emoji font, WordNet) are installed when
# running as root and missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"

apt_pkgs=(tuxpaint-stamps-default unicode-cldr-core fonts-noto-color-emoji iso-codes wordnet-base libcairo2)
# dev: a headless browser for the search page's tests (driven by Selenium through chromium-driver)
if [ "$mode" = dev ]; then apt_pkgs+=(chromium chromium-driver); fi
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "note: Debian packages ${missing[*]} are missing (offline datasets); install them with apt-get" >&2
  fi
fi

# pip, with this machine's noisy "Location ... is ignored" lines filtered out; failures still fail.
pipq() { pip "$@" 2>&1 | { grep -v "is ignored" || true; }; return "${PIPESTATUS[0]}"; }

python3 -m venv .venv
. .venv/bin/activate
pipq install -q --upgrade pip
# torch first, pinned: the pair whose torchvision imports here (open_clip needs torchvision).
pipq install -q -c scripts/constraints.txt torch torchvision
if [ "$mode" = dev ]; then extras="dev"; else extras="lite,eval,search"; fi
pipq install -q -c scripts/constraints.txt -e ".[$extras]"
python -c "import babelclip, torch; print('babelclip', babelclip.__version__, 'torch', torch.__version__)"
