#!/usr/bin/env bash
# Set up latentatlas in .venv/ at the repository root.
#   scripts/setup.sh         the package and the real Fashion-MNIST data set
#   scripts/setup.sh --dev   also the test tools (pytest, pyspark, headless Chromium, pdftoppm, PostgreSQL)
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    *) echo "setup.sh: unknown option '$arg' (use --dev)" >&2; exit 2 ;;
  esac
done

# libtcmalloc-minimal4: the autoencoder's training loop is 1.5-2x faster with tcmalloc, which the CLI preloads.
debs=(dataset-fashion-mnist libtcmalloc-minimal4)
if [ "$dev" = 1 ]; then
  debs+=(poppler-utils chromium chromium-driver postgresql)
  command -v java >/dev/null 2>&1 || debs+=(default-jre-headless)
fi
missing=()
for d in "${debs[@]}"; do
  dpkg -s "$d" >/dev/null 2>&1 || missing+=("$d")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install these Debian packages (as root): ${missing[*]}" >&2
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip -q --disable-pip-version-check)
# Prefer the CPU build of torch 2.13.0 (on local disk here); an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -c "import torch" >/dev/null 2>&1 || "${pip[@]}" install "torch==2.13.0" || true
if [ "$dev" = 1 ]; then
  "${pip[@]}" install -e ".[dev,spark,sql]"
else
  "${pip[@]}" install -e .
fi
echo "setup: ready (.venv/bin/latentatlas)"
