#!/usr/bin/env python3
"""Writes the tiny dataset fixtures of crates/data/tests/fixtures/ in the published layouts.

    python3 -m venv /tmp/fixvenv && /tmp/fixvenv/bin/pip install h5py numpy scipy
    /tmp/fixvenv/bin/python scripts/make-fixtures.py          # every file
    /tmp/fixvenv/bin/python scripts/make-fixtures.py labels   # only write_mat_labels' files

Every value is a formula of its position (see `feat`), so the Rust tests check each
element they read against the same formula instead of trusting the loader's own view.
The output is deterministic (no random numbers), and each file is a few KB.
"""
import os
import shutil

import h5py
import numpy as np
import scipy.io

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "data", "tests", "fixtures")


def feat(rows, cols, base):
    """Row i, column j holds base + i + j / 100 (tests compare with a float32 tolerance)."""
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    return (base + i + j / 100.0).astype(np.float64)


def multi_hot(rows, classes, shift=0):
    """Row i has class (i + shift) % C and, for even i, also class (i + shift + 1) % C."""
    y = np.zeros((rows, classes), dtype=np.uint8)
    for i in range(rows):
        y[i, (i + shift) % classes] = 1
        if i % 2 == 0:
            y[i, (i + shift + 1) % classes] = 1
    return y


# ---------------------------------------------------------------- npz
def write_npz():
    d = os.path.join(OUT, "npz")
    os.makedirs(d, exist_ok=True)
    # Aligned image/text with shared multi-hot labels, stored (np.savez).
    np.savez(
        os.path.join(d, "aligned.npz"),
        image_train=feat(6, 4, 0).astype(np.float32),
        image_test=feat(3, 4, 100).astype(np.float32),
        text_train=feat(6, 3, 1000),
        text_test=feat(3, 3, 2000),
        labels_train=multi_hot(6, 5),
        labels_test=multi_hot(3, 5, shift=2),
    )
    # Same content, deflated; text features saved in Fortran order; bool labels.
    np.savez_compressed(
        os.path.join(d, "compressed.npz"),
        image_train=feat(6, 4, 0).astype(np.float32),
        image_test=feat(3, 4, 100).astype(np.float32),
        text_train=np.asfortranarray(feat(6, 3, 1000)),
        text_test=np.asfortranarray(feat(3, 3, 2000)),
        labels_train=multi_hot(6, 5).astype(bool),
        labels_test=multi_hot(3, 5, shift=2).astype(bool),
    )
    # Unaligned modalities, per-modality labels: class ids (int64) and multi-hot (int32).
    np.savez(
        os.path.join(d, "unaligned.npz"),
        audio_train=feat(5, 2, 0).astype(np.float32),
        audio_test=feat(2, 2, 50).astype(np.float32),
        audio_labels_train=np.array([0, 1, 2, 3, 0], dtype=np.int64),
        audio_labels_test=np.array([3, 1], dtype=np.int64),
        video_train=feat(7, 3, 10).astype(np.float32),
        video_test=feat(4, 3, 60).astype(np.float32),
        video_labels_train=multi_hot(7, 4).astype(np.int32),
        video_labels_test=multi_hot(4, 4, shift=1).astype(np.int32),
    )
    # Broken ones: no labels; NaN feature; test width differs; integer features.
    np.savez(os.path.join(d, "no-labels.npz"), image_train=feat(2, 2, 0), image_test=feat(1, 2, 0))
    bad = feat(6, 4, 0).astype(np.float32)
    bad[4, 2] = np.nan
    np.savez(
        os.path.join(d, "nan.npz"),
        image_train=bad,
        image_test=feat(3, 4, 100).astype(np.float32),
        labels_train=multi_hot(6, 5),
        labels_test=multi_hot(3, 5),
    )
    np.savez(
        os.path.join(d, "wrong-width.npz"),
        image_train=feat(6, 4, 0).astype(np.float32),
        image_test=feat(3, 5, 100).astype(np.float32),
        labels_train=multi_hot(6, 5),
        labels_test=multi_hot(3, 5),
    )
    # A directory holding dataset.npz.
    os.makedirs(os.path.join(d, "dir"), exist_ok=True)
    shutil.copy(os.path.join(d, "aligned.npz"), os.path.join(d, "dir", "dataset.npz"))


# ---------------------------------------------------------------- MATLAB v7.3
MAT73_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."


def write_mat73(path, variables, compress=()):
    """Writes `variables` (name -> MATLAB-shaped array) as MATLAB -v7.3 does: HDF5 with a
    512-byte user block holding the MAT header, every array stored transposed (HDF5 is
    row-major, MATLAB column-major), a MATLAB_class attribute, and gzip-chunked storage for
    the names in `compress` (MATLAB compresses by default)."""
    with h5py.File(path, "w", userblock_size=512, libver="earliest") as f:
        for name, a in variables.items():
            a = np.asarray(a)
            stored = a.T  # what MATLAB's A(i,j) looks like to HDF5: dims reversed
            if name in compress:
                ds = f.create_dataset(name, data=stored, chunks=True, compression="gzip", compression_opts=3)
            else:
                ds = f.create_dataset(name, data=stored)
            cls = {np.dtype(np.float64): b"double", np.dtype(np.float32): b"single", np.dtype(np.uint8): b"uint8"}[a.dtype]
            ds.attrs.create("MATLAB_class", cls, dtype=h5py.string_dtype("ascii", len(cls)))
    header = MAT73_HEADER.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as f:
        f.write(header.ljust(128, b"\x00"))


def write_samples_first(path, variables):
    """Like write_mat73 but stores arrays without the transpose (as some converted files do)."""
    with h5py.File(path, "a", libver="earliest") as f:
        for name, a in variables.items():
            f.create_dataset(name, data=np.asarray(a))


def write_mat():
    d = os.path.join(OUT, "mat73")
    os.makedirs(d, exist_ok=True)
    n = 12
    # DCMH all-in-one layout: IAll (n x 4 features), YAll (n x 6 tags), LAll (n x 3 labels).
    tags = (feat(n, 6, 0) % 2 > 0.5).astype(np.float64)
    write_mat73(
        os.path.join(d, "all.mat"),
        {"IAll": feat(n, 4, 0), "YAll": tags, "LAll": multi_hot(n, 3).astype(np.float64)},
        compress=("IAll",),
    )
    # DCMH images: IAll is 2 x 2 x 3 x n uint8 pixels (MATLAB), so HDF5 holds (n, 3, 2, 2).
    pixels = (np.arange(n * 12) % 251).astype(np.uint8).reshape(2, 2, 3, n, order="F")
    write_mat73(
        os.path.join(d, "images.mat"),
        {"IAll": pixels, "YAll": tags, "LAll": multi_hot(n, 3).astype(np.float64)},
    )
    # Pre-split layout: I_tr/T_tr/L_tr (8 rows), I_te/T_te/L_te (4 rows); single precision images.
    write_mat73(
        os.path.join(d, "split.mat"),
        {
            "I_tr": feat(8, 6, 0).astype(np.float32),
            "T_tr": feat(8, 5, 300),
            "L_tr": multi_hot(8, 3).astype(np.float64),
            "T_te": feat(4, 5, 400),
            "L_te": multi_hot(4, 3, shift=1).astype(np.float64),
        },
    )
    # I_te written samples-first (not transposed), as in some converted files. Not square:
    # a square variable is ambiguous and read the MATLAB way (one sample per MATLAB row).
    write_samples_first(os.path.join(d, "split.mat"), {"I_te": feat(4, 6, 200).astype(np.float32)})
    # Broken: no LAll; NaN in IAll; YAll with a row count that matches nothing.
    write_mat73(os.path.join(d, "no-labels.mat"), {"IAll": feat(n, 4, 0), "YAll": tags})
    nan = feat(n, 4, 0)
    nan[5, 1] = np.nan
    write_mat73(os.path.join(d, "nan.mat"), {"IAll": nan, "YAll": tags, "LAll": multi_hot(n, 3).astype(np.float64)})
    write_mat73(
        os.path.join(d, "wrong-rows.mat"),
        {"IAll": feat(n, 4, 0), "YAll": feat(n - 1, 6, 0), "LAll": multi_hot(n, 3).astype(np.float64)},
    )
    # The same dataset as all.mat split over three files in one directory (Cleared-Set style):
    # images and labels as v7.3, tags as a MAT v5 file.
    sub = os.path.join(d, "parts")
    os.makedirs(sub, exist_ok=True)
    write_mat73(os.path.join(sub, "flickr-iall.mat"), {"IAll": feat(n, 4, 0)})
    write_mat73(os.path.join(sub, "flickr-lall.mat"), {"LAll": multi_hot(n, 3).astype(np.float64)})
    scipy.io.savemat(os.path.join(sub, "flickr-yall.mat"), {"YAll": tags}, format="5")


def write_wide():
    """mat73/wide.mat: 40 samples, IAll 40 x 37 single (transposed, contiguous) and YAll
    40 x 35 stored samples-first, so reads with small blocks cross block boundaries and the
    16-feature transpose tiles (the Rust unit test in crates/data/src/mat.rs)."""
    d = os.path.join(OUT, "mat73")
    n = 40
    path = os.path.join(d, "wide.mat")
    write_mat73(path, {"IAll": feat(n, 37, 0).astype(np.float32), "LAll": multi_hot(n, 3).astype(np.float64)})
    write_samples_first(path, {"YAll": feat(n, 35, 5000)})


def write_xmedia_pku():
    """xmedia-pku/XMediaFeatures.mat: PKU's published XMedia layout (one MAT v5 file; the
    variable names as read by PKU's and Peng Hu's loaders, e.g. github.com/penghu-cs/SDML
    data_loader.py): I_tr_CNN/I_te_CNN, T_tr_BOW/T_te_BOW, A_tr/A_te, V_tr_CNN/V_te_CNN,
    d3_tr/d3_te, plus the BoVW/LDA alternatives I_tr/I_te, T_tr/T_te, V_tr/V_te, and 1-based
    category columns tr<M>Cat/te<M>Cat for M = Img, Txt, Aud, Vid, 3d."""
    d = os.path.join(OUT, "xmedia-pku")
    os.makedirs(d, exist_ok=True)
    v = {}
    media = [("I", "_CNN", "Img", 4, 10, 5), ("T", "_BOW", "Txt", 3, 10, 5), ("A", "", "Aud", 2, 4, 2),
             ("V", "_CNN", "Vid", 5, 3, 2), ("d3", "", "3d", 2, 3, 2)]
    for k, (p, suffix, cat, dim, ntr, nte) in enumerate(media):
        v[f"{p}_tr{suffix}"] = feat(ntr, dim, 1000 * k).astype(np.float32)
        v[f"{p}_te{suffix}"] = feat(nte, dim, 1000 * k + 500).astype(np.float32)
        if suffix:
            # The classic features (BoVW / LDA), other widths, which the loader must not pick.
            v[f"{p}_tr"] = feat(ntr, dim + 1, -1)
            v[f"{p}_te"] = feat(nte, dim + 1, -1)
        v[f"tr{cat}Cat"] = (np.arange(ntr) % 4 + 1).astype(np.float64)[:, None]
        v[f"te{cat}Cat"] = ((np.arange(nte) + 1) % 4 + 1).astype(np.float64)[:, None]
    scipy.io.savemat(os.path.join(d, "XMediaFeatures.mat"), v, format="5")


# ---------------------------------------------------------------- XMedia
XMEDIA = [("img", 4, 10, 5), ("txt", 3, 10, 5), ("aud", 2, 4, 2), ("vid", 5, 3, 2), ("3d", 2, 3, 2)]


def write_xmedia():
    d = os.path.join(OUT, "xmedia")
    os.makedirs(d, exist_ok=True)
    for k, (prefix, dim, ntr, nte) in enumerate(XMEDIA):
        # Labels are 1-based class ids in 1..4, as MATLAB column vectors.
        ltr = (np.arange(ntr) % 4 + 1).astype(np.float64)[:, None]
        lte = ((np.arange(nte) + 1) % 4 + 1).astype(np.float64)[:, None]
        v = {
            f"{prefix}_train_fea": feat(ntr, dim, 1000 * k),
            f"{prefix}_test_fea": feat(nte, dim, 1000 * k + 500),
            f"{prefix}_train_lab": ltr,
            f"{prefix}_test_lab": lte,
        }
        path = os.path.join(d, f"{prefix}.mat")
        if prefix in ("aud", "vid"):
            # Smaller modalities as MAT v5 files, which the loader reads too.
            scipy.io.savemat(path, v, format="5")
        else:
            write_mat73(path, v)


def write_mat_labels():
    """Label codings other than 0/1 multi-hot: class-id columns (DCMH's Wikipedia files) and
    a -1/+1 matrix, which must be an error."""
    d = os.path.join(OUT, "mat73")
    # Pre-split layout with L_tr / L_te as 1-based ids; class 3 appears only in L_tr.
    write_mat73(
        os.path.join(d, "ids.mat"),
        {
            "I_tr": feat(8, 6, 0),
            "T_tr": feat(8, 5, 300),
            "L_tr": (np.arange(8) % 3 + 1).astype(np.float64)[:, None],
            "I_te": feat(4, 6, 200),
            "T_te": feat(4, 5, 400),
            "L_te": np.array([[2.0], [1.0], [2.0], [1.0]]),
        },
    )
    n = 12
    write_mat73(
        os.path.join(d, "signed.mat"),
        {"IAll": feat(n, 4, 0), "YAll": feat(n, 6, 0), "LAll": multi_hot(n, 3).astype(np.float64) * 2 - 1},
    )


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["labels"]:  # only the label-coding files, leaving the others as they are
        write_mat_labels()
        sys.exit(0)
    write_npz()
    write_mat()
    write_mat_labels()
    write_xmedia()
    write_wide()
    write_xmedia_pku()
    total = 0
    for root, _, files in os.walk(OUT):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    print(f"fixtures written to {os.path.normpath(OUT)} ({total} bytes)")
