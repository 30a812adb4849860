"""Type stubs of the compiled module; the documented API is in seqmodal/__init__.py."""

from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

Codes = Union[npt.NDArray[np.uint8], npt.NDArray[np.uint64]]

def knn(
    db_codes: Codes, query_codes: Codes, k: int, radius: Optional[int], threads: int
) -> Tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]: ...
def range_search(
    db_codes: Codes, query_codes: Codes, radius: int, threads: int
) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64]]: ...
def evaluate(
    db_codes: Codes,
    query_codes: Codes,
    db_labels: npt.NDArray[np.uint8],
    db_descr: str,
    db_shape: Sequence[int],
    query_labels: npt.NDArray[np.uint8],
    query_descr: str,
    query_shape: Sequence[int],
    metrics: List[str],
    pr_curve: bool,
    threads: int,
) -> Dict[str, object]: ...
