"""Starting Spark: is pyspark installed, is there a Java 17+ runtime, and a session tuned for the master.

pyspark is imported inside the functions, so this module (and the package) imports without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Iterable

from latentatlas.errors import LatentAtlasError

INSTALL_HINT = ("install it with: pip install 'latentatlas[spark]' (in a source checkout: "
                ".venv/bin/pip install -e '.[spark]')")
JAVA_HINT = ("install a Java 17 (or newer) runtime, e.g. 'apt-get install openjdk-17-jre-headless', and put "
             "'java' on PATH or set JAVA_HOME")
DEFAULT_MASTER = "local[*]"
_LOG4J = Path(__file__).with_name("log4j2.properties")


def _java_executable() -> str | None:
    """The ``java`` that pyspark's launcher will run: ``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        exe = Path(home) / "bin" / "java"
        return str(exe) if exe.is_file() and os.access(exe, os.X_OK) else None
    return shutil.which("java")


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def require_spark() -> None:
    """Raise :class:`LatentAtlasError` saying what to install when pyspark or a Java 17+ runtime is missing.

    Examples
    --------
    >>> from latentatlas.ratings.spark import require_spark
    >>> require_spark()  # doctest: +SKIP
    """
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise LatentAtlasError(f"the Spark engine needs pyspark, which is not installed; {INSTALL_HINT}") from None
    java = _java_executable()
    if java is None:
        where = f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java" if os.environ.get("JAVA_HOME") \
            else "no 'java' on PATH"
        raise LatentAtlasError(f"the Spark engine needs Java ({where}); {JAVA_HINT}")
    major = _java_major(java)
    if major is not None and major < 17:
        raise LatentAtlasError(f"the Spark engine needs Java 17 or newer, found Java {major} at {java}; {JAVA_HINT}")


def parse_conf(pairs: Iterable[str] | dict | None) -> dict[str, str]:
    """``["spark.executor.memory=4g", …]`` → dict; a pair without ``=`` or with an empty key is an error.

    Examples
    --------
    >>> parse_conf(["spark.executor.memory=4g"])
    {'spark.executor.memory': '4g'}
    """
    if pairs is None:
        return {}
    if isinstance(pairs, dict):
        return {str(k): str(v) for k, v in pairs.items()}
    conf = {}
    for pair in pairs:
        key, sep, value = str(pair).partition("=")
        if not sep or not key.strip():
            raise LatentAtlasError(f"conf expects KEY=VALUE (e.g. spark.executor.memory=4g), got {pair!r}")
        conf[key.strip()] = value.strip()
    return conf


def _local_cores(master: str) -> int | None:
    m = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\s*\d+)?\])?", master.strip())
    if not m:
        return None
    n = m.group(1)
    return os.cpu_count() or 1 if n in (None, "*") else int(n) if n else 1


def _physical_memory_gib() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (ValueError, OSError, AttributeError):
        return 2


def _under_spark_submit() -> bool:
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def get_session(master: str = DEFAULT_MASTER, conf: Iterable[str] | dict | None = None, *,
                app_name: str = "latentatlas"):
    """A :class:`~pyspark.sql.SparkSession` for ``master`` with ``conf`` (``KEY=VALUE`` strings or a dict).

    Spark's own logging is cut to errors and its console progress bar is off (progress goes through the
    ``latentatlas`` logger). For ``local[N]`` masters the shuffle partitions default to ``2·N`` (Spark's 200
    is for clusters and makes small jobs slow), the driver binds to 127.0.0.1 and may use a quarter of the
    machine's memory. Anything given in ``conf`` wins; ``spark.checkpoint.dir`` there also becomes the
    context's checkpoint directory (long ALS runs cut their lineage there). If a session is already running
    in this process it is reused (Spark allows one per JVM) and ``conf`` that can change at run time is
    applied. Run by ``spark-submit``, the default master leaves spark-submit's master and resources in charge.

    Examples
    --------
    >>> spark = get_session("local[2]", ["spark.driver.memory=2g"])  # doctest: +SKIP
    """
    if not isinstance(master, str) or not master.strip():
        raise LatentAtlasError(f"master must be a Spark master URL such as local[*] or spark://host:7077, "
                               f"got {master!r}")
    user_conf = parse_conf(conf)
    require_spark()
    from pyspark.sql import SparkSession

    settings = {"spark.ui.showConsoleProgress": "false", "spark.ui.enabled": "false",
                "spark.sql.execution.arrow.pyspark.enabled": "true"}
    # Under spark-submit the launcher already holds the master and resources; the default master must not
    # override them (an explicit one still does).
    submitted = _under_spark_submit() and master == DEFAULT_MASTER
    cores = None if submitted else _local_cores(master)
    if SparkSession.getActiveSession() is None and _LOG4J.is_file():
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j.configurationFile=file:{_LOG4J}"
    if cores is not None:
        # Loopback instead of the SPARK_LOCAL_IP variable: no environment change, and no failure on a machine
        # whose host name does not resolve.
        settings["spark.driver.bindAddress"] = settings["spark.driver.host"] = "127.0.0.1"
        settings["spark.sql.shuffle.partitions"] = str(max(2, 2 * cores))
        settings["spark.default.parallelism"] = str(max(2, 2 * cores))
        settings["spark.driver.memory"] = f"{max(1, _physical_memory_gib() // 4)}g"
    settings.update(user_conf)
    builder = SparkSession.builder.appName(app_name)
    if not submitted:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the launcher's errors are not typed; name the usual causes
        msg = re.sub(r"\s+", " ", str(exc)).strip()
        raise LatentAtlasError(f"cannot start Spark (master {master}): {msg[:300]}; check the master URL, "
                               f"the conf= settings, and that Java 17+ works ({JAVA_HINT})") from None
    spark.sparkContext.setLogLevel("ERROR")
    for key, value in user_conf.items():
        try:
            if spark.conf.isModifiable(key):
                spark.conf.set(key, value)
        except Exception:  # static settings of a running session cannot change; it keeps its own
            pass
    if user_conf.get("spark.checkpoint.dir") and not spark.sparkContext.getCheckpointDir():
        spark.sparkContext.setCheckpointDir(user_conf["spark.checkpoint.dir"])
    return spark


def is_uri(path: str) -> bool:
    """Whether ``path`` is a URI with a scheme (``hdfs://``, ``s3a://``, ``file://``) rather than a local path."""
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", str(path)))


def spark_error(path: str, exc: Exception) -> LatentAtlasError:
    """A one-line error for a file Spark could not read."""
    msg = re.sub(r"\s+", " ", str(exc)).strip()
    if "PATH_NOT_FOUND" in msg or "does not exist" in msg:
        return LatentAtlasError(f"{path}: no such file")
    return LatentAtlasError(f"{path}: Spark cannot read the file: {msg[:300]}")
