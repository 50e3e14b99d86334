"""Shared benchmark plumbing: run one measurement in a child process, time it, and read its peak memory.

Each measured job runs in its own Python process so that one library's allocations, thread pools or JVM
cannot inflate another's peak. The child prints one JSON object on its last stdout line; the parent adds
``wall_s`` and ``peak_rss_mb``: the larger of the child's ``ru_maxrss`` (from ``wait4``: the child and the
descendants it reaped) and the sum of RSS over the child's whole process tree, sampled every 50 ms (for a
JVM that outlives its Python parent's accounting).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
PAGE = os.sysconf("SC_PAGE_SIZE")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _tree_rss(pid: int) -> int:
    tree = _children()
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except OSError:
            pass
        stack.extend(tree.get(p, ()))
    return total


def run_child(argv: list[str], timeout: float | None = None, env: dict | None = None,
              label: str = "") -> dict:
    """Run ``argv``; return its last-line JSON plus ``wall_s``, ``peak_rss_mb`` and ``ok``/``error``."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, text=True)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    readers = [threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True),
               threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)]
    for r in readers:
        r.start()
    timed_out = False
    deadline = None if timeout is None else t0 + timeout
    status, usage = 0, None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            timed_out = True
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    for r in readers:
        r.join()
    stdout, stderr = "".join(out_chunks), "".join(err_chunks)
    rss = max(usage.ru_maxrss * 1024 if usage else 0, peak[0])
    result: dict = {}
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                result = json.loads(line)
                break
            except json.JSONDecodeError:
                pass
    cpu = usage.ru_utime + usage.ru_stime if usage else None
    result.update(wall_s=wall, cpu_s=cpu, peak_rss_mb=rss / 2**20, ok=proc.returncode == 0 and not timed_out and bool(result))
    if not result["ok"]:
        tail = (stderr.strip().splitlines() or ["(no output)"])[-1]
        result["error"] = "timed out" if timed_out else tail[:200]
        if label:
            log_dir = DATA / "logs"
            log_dir.mkdir(parents=True, exist_ok=True)
            (log_dir / f"{label}.log").write_text(f"$ {shlex.join(argv)}\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
    return result


def emit(obj: dict) -> None:
    """What a child prints last: one JSON line the parent reads."""
    sys.stdout.flush()
    print(json.dumps(obj), flush=True)


def machine() -> str:
    """CPU model, cores, RAM, OS and date, for the results file."""
    model = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{model}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}; run {now}")


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A Markdown table; ``columns`` are (key, header, format) with format like ``{:.3f}``."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "|" + "|".join("---" if k == columns[0][0] else "---:" for k, _, _ in columns) + "|"
    lines = [head, sep]
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            v = row.get(key)
            if v is None or (isinstance(v, float) and v != v):
                cells.append("–")
            else:
                cells.append(fmt.format(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fmt_ratio(x: float | None) -> str:
    if x is None or x != x:
        return "–"
    return f"{x:.2f}×" if x < 10 else f"{x:.0f}×"


def max_rss_self_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
