"""seqmodal: exact Hamming search and retrieval metrics on numpy arrays, and run results as pandas.

The same engine as the ``seqmodal search`` / ``seqmodal eval`` commands, called on numpy
arrays in memory (no ``.npy`` files, no subprocess)::

    import numpy as np, seqmodal
    db = seqmodal.pack(np.random.randn(100_000, 64))        # sign bits -> uint8 packbits rows
    q = seqmodal.pack(np.random.randn(1_000, 64))
    D, I = seqmodal.search(db, q, k=10)                     # as faiss.IndexBinaryFlat.search
    seqmodal.evaluate(db, q, np.random.randint(0, 10, 100_000), np.random.randint(0, 10, 1_000))

Codes are rows of ``numpy.packbits`` bytes (``uint8``, shape ``(n, bits / 8)``, what FAISS's
binary indexes take) or ``uint64`` words (shape ``(n, words)``: the packbits bytes read as
little-endian words, what ``pack(..., dtype=np.uint64)`` returns). C-contiguous arrays whose
rows are whole 8-byte words are read in place; others get one padded copy.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, NamedTuple, Optional, Union

import numpy as np

from . import _seqmodal

__version__: str = _seqmodal.__version__

__all__ = [
    "search", "evaluate", "pack", "unpack", "read_run", "read_train_log", "read_sweep", "Run", "Sweep",
    "DEFAULT_METRICS",
]

#: The metrics ``seqmodal eval`` prints (with its default ``--k 100``).
DEFAULT_METRICS = ("map", "map@100", "p@100", "p@r2")


def _array(x: Any) -> np.ndarray:
    a = np.asarray(x)
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _threads(threads: int) -> int:
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 0:
        raise ValueError(f"threads must be an integer >= 0 (0: all cores), got {threads!r}")
    return int(threads)


def search(
    db_codes: np.ndarray,
    query_codes: np.ndarray,
    k: Optional[int] = None,
    radius: Optional[int] = None,
    threads: int = 0,
):
    """Exact Hamming search of every query against the database.

    Args:
        db_codes: database codes, ``uint8`` packbits rows ``(n, bits/8)`` or ``uint64`` words.
        query_codes: query codes of the same width (either dtype).
        k: neighbours per query, ``1 <= k <= n``.
        radius: keep only items at Hamming distance ``<= radius``.
        threads: CPU threads (0: all cores). The GIL is released while the search runs.

    Returns:
        With ``k``: ``(D, I)``, int32 distances and int64 ids of shape ``(q, k)``, each row
        sorted by (distance, database index), exactly as ``faiss.IndexBinaryFlat.search``
        and ``seqmodal search``; with ``radius`` too, slots beyond the hits hold id -1 and
        distance 2147483647 (FAISS's padding).
        With ``radius`` only: ``(lims, D, I)`` as ``faiss.IndexBinaryFlat.range_search``:
        the hits of query ``i`` are ``D[lims[i]:lims[i+1]]``, ``I[lims[i]:lims[i+1]]``,
        sorted by (distance, index). Note the radius is inclusive here (``d <= radius``),
        while FAISS's binary range search keeps ``d < radius``.

    Raises:
        ValueError: k out of range, widths differ, neither k nor radius given.
        TypeError: codes that are not 2-D uint8/uint64 arrays.
    """
    threads = _threads(threads)
    if k is None and radius is None:
        raise ValueError("give k (top-k search), radius (range search), or both")
    if radius is not None and (isinstance(radius, bool) or int(radius) != radius or radius < 0):
        raise ValueError(f"radius must be an integer >= 0, got {radius!r}")
    db, q = _array(db_codes), _array(query_codes)
    if k is None:
        return _seqmodal.range_search(db, q, int(radius), threads)
    if isinstance(k, bool) or int(k) != k or k < 1:
        n = db.shape[0] if db.ndim > 0 else 0
        raise ValueError(f"k must be between 1 and the database size {n}, got {k!r}")
    return _seqmodal.knn(db, q, int(k), None if radius is None else int(radius), threads)


def _labels(x: Any):
    a = _array(x)
    return a.reshape(-1).view(np.uint8), a.dtype.str, tuple(a.shape)


def evaluate(
    db_codes: np.ndarray,
    query_codes: np.ndarray,
    db_labels: np.ndarray,
    query_labels: np.ndarray,
    metrics: Union[str, Iterable[str]] = DEFAULT_METRICS,
    pr_curve: bool = False,
    threads: int = 0,
) -> Dict[str, Any]:
    """Mean retrieval metrics of ranking the database by Hamming distance for every query.

    Ties are ranked by database index; an item is relevant iff it shares a label with the
    query (docs/metrics.md). The numbers are bit-identical to ``seqmodal eval``'s.

    Args:
        db_codes, query_codes: codes as for :func:`search`.
        db_labels, query_labels: multi-hot ``(n, classes)`` or class ids ``(n,)`` /
            ``(n, 1)``, any numeric dtype whose values are non-negative integers (float
            0/1 and integral float ids included). Class ids share one class count; ids
            beside multi-hot rows take the rows' width.
        metrics: ``"map"`` (over the full ranking), ``"map@K"``, ``"p@K"``, ``"p@rR"``
            (precision within Hamming radius R).
        pr_curve: also return the precision/recall curve by Hamming radius 0..bits.
        threads: CPU threads (0: all cores). The GIL is released while it runs.

    Returns:
        ``{metric: value}`` in the order asked, keys in canonical form (``"map@100"``);
        with ``pr_curve``, key ``"pr_curve"`` holds ``{"radius", "precision", "recall"}``
        arrays.
    """
    threads = _threads(threads)
    if isinstance(metrics, str):
        metrics = [metrics]
    metrics = list(metrics)
    for m in metrics:
        if not isinstance(m, str):
            raise TypeError(f"metrics must be strings such as \"map@100\", got {m!r}")
    db, q = _array(db_codes), _array(query_codes)
    return _seqmodal.evaluate(db, q, *_labels(db_labels), *_labels(query_labels), metrics, bool(pr_curve), threads)


def pack(codes: np.ndarray, dtype: Any = np.uint8) -> np.ndarray:
    """Packs ``(n, bits)`` codes into rows of bits: a bit is 1 where the value is > 0.

    Sign codes (+1/-1, or real-valued network outputs) and 0/1 codes both work.

    Args:
        codes: a 2-D bool, integer or float array.
        dtype: ``np.uint8`` for ``numpy.packbits`` rows ``(n, ceil(bits/8))`` (FAISS's
            layout), or ``np.uint64`` for words ``(n, ceil(bits/64))``: the same bytes
            zero-padded to whole words and read little-endian.
    """
    a = np.asarray(codes)
    if a.ndim != 2:
        raise ValueError(f"codes must be 2-D (n, bits), got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"codes must be bool, integer or float, got dtype {a.dtype}")
    if a.shape[1] == 0:
        raise ValueError("codes need at least 1 bit, got shape " + str(a.shape))
    packed = np.packbits(a > 0, axis=1)
    dt = np.dtype(dtype)
    if dt == np.uint8:
        return packed
    if dt == np.uint64:
        pad = -packed.shape[1] % 8
        if pad:
            packed = np.pad(packed, ((0, 0), (0, pad)))
        return np.ascontiguousarray(packed).view("<u8").astype(np.uint64, copy=False)
    raise ValueError(f"dtype must be np.uint8 or np.uint64, got {dt}")


def unpack(codes: np.ndarray, bits: Optional[int] = None) -> np.ndarray:
    """Inverse of :func:`pack`: uint8 0/1 array ``(n, bits)`` (default: every stored bit)."""
    a = np.asarray(codes)
    if a.ndim != 2:
        raise ValueError(f"codes must be 2-D, got shape {a.shape}")
    if a.dtype == np.uint64:
        a = np.ascontiguousarray(a.astype("<u8", copy=False)).view(np.uint8)
    elif a.dtype != np.uint8:
        raise TypeError(f"codes must be uint8 (packbits rows) or uint64 words, got dtype {a.dtype}")
    out = np.unpackbits(a, axis=1)
    if bits is not None:
        if isinstance(bits, bool) or int(bits) != bits or not 0 < bits <= out.shape[1]:
            raise ValueError(f"bits must be between 1 and {out.shape[1]} (the stored bits), got {bits!r}")
        out = out[:, : int(bits)]
    return out


# String columns of metrics.csv / sweep.csv: read as text whatever they look like (a modality
# called "1" or "NA" stays a name); every other column is inferred (numbers, axis values).
_TEXT = ["cell", "status", "ordering", "experiment", "learner", "trained", "query", "database", "metric"]


def _csv(path: str):
    import pandas as pd

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, newline="") as f:
        header = f.readline().rstrip("\r\n").split(",")
    return pd.read_csv(path, dtype={c: "string" for c in _TEXT if c in header}, keep_default_na=False, na_values={
        c: [""] for c in header if c not in _TEXT
    })


class Run(NamedTuple):
    """A ``seqmodal run`` directory: ``metrics.csv`` as a DataFrame, ``summary.json`` as a dict."""

    metrics: Any
    summary: Dict[str, Any]


class Sweep(NamedTuple):
    """A ``seqmodal sweep`` directory: ``sweep.csv`` (every cell's rows) and ``summary.csv``."""

    metrics: Any
    summary: Any


def read_run(path: Union[str, "os.PathLike[str]"]) -> Run:
    """Reads a run directory: ``metrics, summary = seqmodal.read_run("runs/wiki")``.

    ``metrics`` has one row per (stage, query, database, metric) with columns
    ``experiment, learner, seed, bits, stage, trained, query, database, metric, value``
    (docs/metrics.md); ``summary`` is ``summary.json`` (ACC, BWT, forgetting, timing...).
    """
    path = os.fspath(path)
    for name in ("metrics.csv", "summary.json"):
        if not os.path.isfile(os.path.join(path, name)):
            raise FileNotFoundError(
                f"{os.path.join(path, name)}: no such file ({path} is not a finished `seqmodal run` directory)"
            )
    with open(os.path.join(path, "summary.json")) as f:
        summary = json.load(f)
    return Run(_csv(os.path.join(path, "metrics.csv")), summary)


def read_train_log(path: Union[str, "os.PathLike[str]"]) -> Any:
    """A run's training curve: ``train_log.csv`` of a run directory as a DataFrame.

    One row per epoch of each stage, columns ``stage, epoch, steps, loss, classification,
    pairwise, quantization, lr, samples_per_second, seconds``; e.g.
    ``log.plot(x="steps", y="loss")``. ``loss`` is the learner's objective, the other three
    the model's loss terms (README, "What a run writes").
    """
    path = os.fspath(path)
    file = os.path.join(path, "train_log.csv")
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{file}: no such file ({path} is not a `seqmodal run` directory)")
    return _csv(file)


def read_sweep(path: Union[str, "os.PathLike[str]"]) -> Sweep:
    """Reads a sweep directory: ``metrics, summary = seqmodal.read_sweep("runs/sweep")``.

    ``metrics`` is ``sweep.csv``: every cell's ``metrics.csv`` rows with ``cell``,
    ``status`` and the axis columns in front (a failed cell has one row with empty
    metrics); ``summary`` is ``summary.csv``: mean and std over seeds per setting
    (docs/sweeps.md).
    """
    path = os.fspath(path)
    for name in ("sweep.csv", "summary.csv"):
        if not os.path.isfile(os.path.join(path, name)):
            raise FileNotFoundError(
                f"{os.path.join(path, name)}: no such file ({path} is not a finished `seqmodal sweep` directory)"
            )
    return Sweep(_csv(os.path.join(path, "sweep.csv")), _csv(os.path.join(path, "summary.csv")))
