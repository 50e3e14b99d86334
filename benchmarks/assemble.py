"""Rebuild BENCHMARKS.md: its hand-written head (up to the marker line) and every RESULTS-*.md, unchanged.

    .venv/bin/python benchmarks/assemble.py
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = HERE.parent / "BENCHMARKS.md"
MARKER = "The sections below are the scripts' own result files, unchanged."
# Issue order: foundation and ingest, the model and its peers, then images, then the later issues.
ORDER = ["ingest", "recommenders", "kernels", "synthetic", "bayes", "rating-defaults", "bayes-side", "timebias",
         "bayes-implicit-speed", "sgd-libmf", "solver-memory", "features-input", "spark", "autoencoder", "embeddings",
         "explorer", "ranking", "ials-speed", "model-size", "images"]


def _demoted(lines):
    """Markdown headings one level down; lines inside fenced code (comments of shell commands) unchanged."""
    fenced = False
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        yield "#" + line if line.startswith("#") and not fenced else line


def main() -> None:
    head = TARGET.read_text(encoding="utf-8").split(MARKER)[0].rstrip() + "\n\n" + MARKER + "\n"
    # RESULTS-tune.md is embedded in RESULTS-recommenders.md by bench_recommenders.py.
    files = sorted((p for p in HERE.glob("RESULTS-*.md") if p.name != "RESULTS-tune.md"), key=lambda p: (ORDER.index(p.stem[8:]) if p.stem[8:] in ORDER
                                                             else len(ORDER), p.name))
    parts = [head]
    for path in files:
        text = path.read_text(encoding="utf-8").strip()
        # Each file's title becomes a section of BENCHMARKS.md, its sections sub-sections.
        text = "\n".join(_demoted(text.splitlines()))
        if not text.startswith("## "):
            text = f"## {path.stem[8:].capitalize()}\n\n{text}"
        parts.append(f"\n<!-- {path.relative_to(HERE.parent)} -->\n{text}\n")
    TARGET.write_text("\n".join(parts), encoding="utf-8")
    print(f"wrote {TARGET} from {len(files)} result files")


if __name__ == "__main__":
    main()
