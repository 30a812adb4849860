"""The Python module against the `seqmodal` CLI (same .npy files), FAISS and numpy references.

Needs the built CLI: $SEQMODAL_BIN, else target/debug/seqmodal (`cargo build -p seqmodal`).
"""

import csv
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

import seqmodal

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cli():
    path = Path(os.environ.get("SEQMODAL_BIN", REPO / "target" / "debug" / "seqmodal"))
    if not path.is_file():
        pytest.fail(f"no seqmodal binary at {path}: build it (cargo build -p seqmodal) or set SEQMODAL_BIN")
    return str(path)


def run(cli, *args, cwd=None):
    return subprocess.run([cli, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def tied_codes(rng, n, row_bytes):
    """Random packbits rows biased towards zero bits, so many distances tie."""
    return (rng.integers(0, 256, (n, row_bytes), dtype=np.uint8) & rng.integers(0, 256, (n, row_bytes), dtype=np.uint8))


def faiss_index(db):
    index = faiss.IndexBinaryFlat(db.shape[1] * 8)
    index.add(db)
    return index


@pytest.mark.parametrize("bits", [8, 24, 64, 72, 128, 256])
def test_knn_equals_faiss_with_ties(bits):
    rng = np.random.default_rng(bits)
    db, q = tied_codes(rng, 3000, bits // 8), tied_codes(rng, 64, bits // 8)
    k = 50
    D, I = seqmodal.search(db, q, k=k)
    fD, fI = faiss_index(db).search(q, k)
    assert D.dtype == np.int32 and I.dtype == np.int64 and D.shape == (64, k)
    np.testing.assert_array_equal(D, fD)
    np.testing.assert_array_equal(I, fI)
    # Ties did occur: equal distances inside rows.
    assert (np.diff(D, axis=1) == 0).sum() > 64
    # Thread count changes nothing.
    for threads in (1, 3):
        D2, I2 = seqmodal.search(db, q, k=k, threads=threads)
        np.testing.assert_array_equal(I2, I)


def test_uint64_words_and_views_give_the_same_neighbours():
    rng = np.random.default_rng(7)
    signs = rng.standard_normal((2000, 128))
    db8 = seqmodal.pack(signs)
    db64 = seqmodal.pack(signs, dtype=np.uint64)
    assert db64.shape == (2000, 2) and db64.dtype == np.uint64
    np.testing.assert_array_equal(db64, db8.view("<u8"))
    q8 = db8[::37]
    D, I = seqmodal.search(db8, q8, k=10)
    for db, q in [(db64, q8), (db8, db64[::37]), (db64, db64[::37])]:
        D2, I2 = seqmodal.search(db, q, k=10)
        np.testing.assert_array_equal(D2, D)
        np.testing.assert_array_equal(I2, I)
    # A Fortran-order or strided array is read through one contiguous copy: same answer.
    D3, I3 = seqmodal.search(np.asfortranarray(db8), q8, k=10)
    np.testing.assert_array_equal(I3, I)
    # An unaligned start (a view one byte into a buffer) takes the padded copy: same answer.
    buf = np.zeros(db8.size + 1, dtype=np.uint8)
    buf[1:] = db8.reshape(-1)
    shifted = buf[1:].reshape(db8.shape)
    D4, I4 = seqmodal.search(shifted, q8, k=10)
    np.testing.assert_array_equal(I4, I)


def test_pack_unpack():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((10, 37))
    p = seqmodal.pack(x)
    np.testing.assert_array_equal(p, np.packbits(x > 0, axis=1))
    np.testing.assert_array_equal(seqmodal.unpack(p, bits=37), (x > 0).astype(np.uint8))
    w = seqmodal.pack(x, dtype=np.uint64)
    assert w.shape == (10, 1)
    np.testing.assert_array_equal(seqmodal.unpack(w, bits=37), (x > 0).astype(np.uint8))
    np.testing.assert_array_equal(seqmodal.pack((x > 0).astype(np.int8)), p)
    with pytest.raises(ValueError, match=r"codes must be 2-D \(n, bits\), got shape \(3,\)"):
        seqmodal.pack(np.ones(3))
    with pytest.raises(ValueError, match="bits must be between 1 and 40"):
        seqmodal.unpack(p, bits=41)
    with pytest.raises(TypeError, match="uint8 .* or uint64"):
        seqmodal.unpack(p.astype(np.int16))


def save(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return path


@pytest.mark.parametrize("radius", [None, 14])
def test_knn_equals_cli(cli, tmp_path, radius):
    rng = np.random.default_rng(11)
    db, q = tied_codes(rng, 1500, 8), tied_codes(rng, 40, 8)
    dbp, qp = save(tmp_path, "db.npy", db), save(tmp_path, "q.npy", q)
    args = ["search", "--database", dbp, "--queries", qp, "-k", 30, "--out", tmp_path / "out"]
    if radius is not None:
        args += ["--radius", radius]
    r = run(cli, *args)
    assert r.returncode == 0, r.stderr
    D, I = seqmodal.search(db, q, k=30, radius=radius)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "ids.npy"), I)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "distances.npy"), D)
    if radius is not None:
        assert (I == -1).any() and (D[I == -1] == 2147483647).all()


def test_range_search_against_faiss_and_brute_force():
    rng = np.random.default_rng(5)
    db, q = tied_codes(rng, 2000, 8), tied_codes(rng, 30, 8)
    radius = 12
    lims, D, I = seqmodal.search(db, q, radius=radius)
    assert lims.dtype == np.int64 and D.dtype == np.int32 and I.dtype == np.int64
    # Brute force with numpy: popcount of XOR, stable sort.
    dist = np.unpackbits(q[:, None, :] ^ db[None, :, :], axis=2).sum(axis=2)
    for i in range(len(q)):
        hits = np.flatnonzero(dist[i] <= radius)
        order = hits[np.argsort(dist[i][hits], kind="stable")]
        np.testing.assert_array_equal(I[lims[i]:lims[i + 1]], order)
        np.testing.assert_array_equal(D[lims[i]:lims[i + 1]], dist[i][order])
    # FAISS keeps d < radius for binary indexes: the same hit sets at radius + 1.
    flims, fD, fI = faiss_index(db).range_search(q, radius + 1)
    np.testing.assert_array_equal(flims, lims)
    for i in range(len(q)):
        s = slice(lims[i], lims[i + 1])
        assert sorted(zip(fD[s], fI[s])) == list(zip(D[s], I[s]))


def reference_metrics(db, q, dl, ql, k):
    """mAP@all, mAP@k, P@k and P@r2 with numpy: stable argsort ranking, relevance = shared label."""
    dist = np.unpackbits(q[:, None, :] ^ db[None, :, :], axis=2).sum(axis=2)
    rel_all = (ql.astype(np.int64) @ dl.astype(np.int64).T) > 0
    out = {"map": [], f"map@{k}": [], f"p@{k}": [], "p@r2": []}
    for i in range(len(q)):
        order = np.argsort(dist[i], kind="stable")
        rel = rel_all[i][order]
        hits = np.cumsum(rel)
        pos = np.arange(1, len(rel) + 1)
        prec = hits / pos
        out["map"].append((prec * rel).sum() / rel.sum() if rel.sum() else 0.0)
        rk = rel[:k]
        out[f"map@{k}"].append((prec[:k] * rk).sum() / rk.sum() if rk.sum() else 0.0)
        out[f"p@{k}"].append(rk.sum() / k)
        within = dist[i] <= 2
        out["p@r2"].append(rel_all[i][within].mean() if within.any() else 0.0)
    return {m: float(np.mean(v)) for m, v in out.items()}


def multi_hot(ids, classes):
    m = np.zeros((len(ids), classes), dtype=np.uint8)
    m[np.arange(len(ids)), ids] = 1
    return m


def test_evaluate_equals_cli_and_numpy(cli, tmp_path):
    rng = np.random.default_rng(21)
    n, nq, classes, k = 1200, 60, 7, 50
    db, q = tied_codes(rng, n, 8), tied_codes(rng, nq, 8)
    dl = multi_hot(rng.integers(0, classes, n), classes)
    dl[rng.integers(0, n, 300), rng.integers(0, classes, 300)] = 1  # some rows with two labels
    qids = rng.integers(0, classes, nq)
    metrics = ["map", f"map@{k}", f"p@{k}", "p@r2"]
    got = seqmodal.evaluate(db, q, dl, qids, metrics=metrics, pr_curve=True)
    assert list(got)[:4] == metrics
    paths = {name: save(tmp_path, f"{name}.npy", a) for name, a in [("db", db), ("q", q), ("dl", dl), ("ql", qids)]}
    r = run(cli, "eval", "--database", paths["db"], "--queries", paths["q"], "--db-labels", paths["dl"],
            "--query-labels", paths["ql"], "--k", k)
    assert r.returncode == 0, r.stderr
    want = json.loads(r.stdout.strip().splitlines()[-1])
    for m in metrics:
        assert got[m] == want[m], m  # bit-identical: same engine, same summation order
    curve = got["pr_curve"]
    assert list(curve["radius"]) == [p["radius"] for p in want["pr_curve"]]
    assert list(curve["precision"]) == [p["precision"] for p in want["pr_curve"]]
    assert list(curve["recall"]) == [p["recall"] for p in want["pr_curve"]]
    ref = reference_metrics(db, q, dl, multi_hot(qids, classes), k)
    for m in metrics:
        assert abs(got[m] - ref[m]) < 1e-12, (m, got[m], ref[m])
    # Float labels (pandas, MATLAB) are the integers they hold: same numbers, here and in the CLI.
    assert seqmodal.evaluate(db, q, dl.astype(np.float64), qids.astype(np.float64), metrics=metrics) == {
        m: got[m] for m in metrics
    }
    np.save(paths["dl"], dl.astype(np.float64))
    np.save(paths["ql"], qids.astype(np.float64))
    r = run(cli, "eval", "--database", paths["db"], "--queries", paths["q"], "--db-labels", paths["dl"],
            "--query-labels", paths["ql"], "--k", k)
    assert r.returncode == 0, r.stderr
    assert all(json.loads(r.stdout)[m] == got[m] for m in metrics)


def test_bad_input_raises_with_the_cli_message(cli, tmp_path):
    rng = np.random.default_rng(2)
    db, q = tied_codes(rng, 10, 8), tied_codes(rng, 3, 4)
    with pytest.raises(ValueError, match="bit count mismatch: queries have 32 bits, database has 64 bits"):
        seqmodal.search(db, q, k=3)
    with pytest.raises(ValueError, match="k must be between 1 and the database size 10, got 11"):
        seqmodal.search(db, db, k=11)
    with pytest.raises(ValueError, match="k must be between 1 and the database size 10, got 0"):
        seqmodal.search(db, db, k=0)
    with pytest.raises(ValueError, match="give k"):
        seqmodal.search(db, db)
    with pytest.raises(TypeError, match=r"db_codes must be a 2-D numpy array of uint8 .* got a 2-D array of dtype float32"):
        seqmodal.search(db.astype(np.float32), db, k=1)
    with pytest.raises(TypeError, match="got a 1-D array of dtype uint8"):
        seqmodal.search(db, db[0], k=1)
    with pytest.raises(ValueError, match="code rows have 0 bytes"):
        seqmodal.search(np.zeros((4, 0), np.uint8), np.zeros((1, 0), np.uint8), k=1)
    with pytest.raises(ValueError, match="threads must be an integer >= 0"):
        seqmodal.search(db, db, k=1, threads=-1)
    with pytest.raises(ValueError, match='unknown metric "map@x"'):
        seqmodal.evaluate(db, db, np.zeros(10, int), np.zeros(10, int), metrics=["map@x"])
    with pytest.raises(ValueError, match="row count mismatch for database: 10 codes but 9 label rows"):
        seqmodal.evaluate(db, db, np.zeros(9, int), np.zeros(10, int))
    with pytest.raises(ValueError, match="label widths differ: query_labels have 3 classes, db_labels have 2"):
        seqmodal.evaluate(db, db, np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="no rows"):
        seqmodal.evaluate(db, db[:0], np.zeros(10, int), np.zeros(0, int))
    # A label value error: the same words as `seqmodal eval` on the same array in a file.
    bad = np.array([0, 0.5, 1, 0, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError) as e:
        seqmodal.evaluate(db, db, bad, np.zeros(10, int))
    assert str(e.value) == "db_labels: class id 0.5 at row 1 is not a non-negative integer"
    paths = [save(tmp_path, n, a) for n, a in [("db.npy", db), ("bad.npy", bad), ("ok.npy", np.zeros(10, int))]]
    r = run(cli, "eval", "--database", paths[0], "--queries", paths[0], "--db-labels", paths[1],
            "--query-labels", paths[2], "--k", 3)
    assert r.returncode != 0 and "class id 0.5 at row 1 is not a non-negative integer" in r.stderr, r.stderr
    with pytest.raises(ValueError, match="query_labels: class id -2 at row 0 is not a non-negative integer"):
        seqmodal.evaluate(db, db, np.zeros(10, int), np.full(10, -2))
    with pytest.raises(ValueError, match="db_labels: dtype <U1 is not supported"):
        seqmodal.evaluate(db, db, np.array(list("abcdefghij")), np.zeros(10, int))
    with pytest.raises(ValueError, match=r"labels must be \(rows,\) class ids or \(rows, classes\) multi-hot"):
        seqmodal.evaluate(db, db, np.zeros((10, 2, 2)), np.zeros(10, int))


def test_search_releases_the_gil():
    # While one Python thread searches, another keeps running: its longest pause stays far
    # below the search's duration (with the GIL held it would equal it).
    rng = np.random.default_rng(1)
    db = rng.integers(0, 256, (200_000, 32), dtype=np.uint8)
    # Enough queries for a search of at least 0.3 s on this build and machine.
    nq = 100
    while True:
        q = rng.integers(0, 256, (nq, 32), dtype=np.uint8)
        t = time.perf_counter()
        seqmodal.search(db, q, k=10, threads=1)
        alone = time.perf_counter() - t
        if alone > 0.3 or nq >= 100_000:
            break
        nq *= 4
    assert alone > 0.3, f"search too fast to observe ({alone:.3f} s)"
    worker = threading.Thread(target=lambda: seqmodal.search(db, q, k=10, threads=1))
    gaps, last = [], time.perf_counter()
    worker.start()
    while worker.is_alive():
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
        time.sleep(0.001)
    worker.join()
    assert len(gaps) > 5 and max(gaps) < alone / 2, (alone, max(gaps), len(gaps))


def read_csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_read_run_and_read_sweep(cli, tmp_path):
    small = ["--set", "train.epochs=1", "--set", "model.hidden=16", "--set", "dataset.train=120",
             "--set", "dataset.test=40", "--set", "model.bits=16"]
    out = tmp_path / "run"
    r = run(cli, "run", REPO / "experiments" / "synthetic.toml", "--quiet", "--log", "warn", *small, "--out", out)
    assert r.returncode == 0, r.stderr
    metrics, summary = seqmodal.read_run(out)
    rows = read_csv_rows(out / "metrics.csv")
    assert len(metrics) == len(rows) > 0
    assert list(metrics.columns) == list(rows[0])
    assert [float(r["value"]) for r in rows] == list(metrics["value"])
    assert [int(r["stage"]) for r in rows] == list(metrics["stage"])
    assert list(metrics["metric"]) == [r["metric"] for r in rows]
    assert summary == json.loads((out / "summary.json").read_text())
    with pytest.raises(FileNotFoundError, match="is not a finished `seqmodal run` directory"):
        seqmodal.read_run(tmp_path)
    log = seqmodal.read_train_log(out)
    lrows = read_csv_rows(out / "train_log.csv")
    assert list(log.columns) == list(lrows[0])[: len(log.columns)] and "loss" in log.columns
    assert [float(r["loss"]) for r in lrows] == list(log["loss"])
    # One row per epoch of each stage (train.epochs = 1 here).
    assert list(log["stage"]) == sorted(set(int(r["stage"]) for r in lrows))
    with pytest.raises(FileNotFoundError, match="train_log.csv: no such file"):
        seqmodal.read_train_log(tmp_path)

    sweep = tmp_path / "tiny.toml"
    sets = "\n".join(f'"{kv.split("=")[0]}" = {kv.split("=")[1]}' for kv in small[1::2])
    sweep.write_text(f'base = "{REPO / "experiments" / "synthetic.toml"}"\nlearners = ["finetune", "er"]\n'
                     f"seeds = [1]\n[set]\n{sets}\n")
    r = run(cli, "sweep", sweep, "--out", tmp_path / "sweep", "--quiet")
    assert r.returncode == 0, r.stderr
    cells, table = seqmodal.read_sweep(tmp_path / "sweep")
    rows = read_csv_rows(tmp_path / "sweep" / "sweep.csv")
    assert len(cells) == len(rows) and set(cells["learner"]) == {"finetune", "er"}
    assert [float(r["value"]) for r in rows] == list(cells["value"])
    srows = read_csv_rows(tmp_path / "sweep" / "summary.csv")
    assert list(table["learner"]) == [r["learner"] for r in srows]
    assert [float(r["acc_mean"]) for r in srows] == list(table["acc_mean"])
    with pytest.raises(FileNotFoundError, match="sweep.csv: no such file"):
        seqmodal.read_sweep(out)


def test_readme_example_runs():
    text = (REPO / "README.md").read_text()
    start = text.index("### From Python")
    block = text[text.index("```python\n", start) + len("```python\n"):text.index("```\n", text.index("```python\n", start) + 3)]
    assert len(block.strip().splitlines()) == 5
    scope = {}
    exec(compile(block, "README.md", "exec"), scope)
    D, I = scope["D"], scope["I"]
    fD, fI = faiss_index(scope["db"]).search(scope["q"], 10)
    np.testing.assert_array_equal(D, fD)
    np.testing.assert_array_equal(I, fI)
