"""Numeric arrays in JSON: dtype, shape and base64 of the bytes (data, never a pickle).

What a distilled set's header stores of its reference statistics
(:meth:`~distillbt.distill.drift.BlockStats.to_json`)::

    encode_array(np.arange(3, dtype="<i4"))   # {"dtype": "<i4", "shape": [3], "data": "AAAAAAEAAAACAAAA"}
    decode_array(_)                            # array([0, 1, 2], dtype=int32), read-only

Only integer, unsigned and float dtypes decode; anything else raises ``ValueError``.
"""

from __future__ import annotations

import base64

import numpy as np

__all__ = ["encode_array", "decode_array"]


def encode_array(values: np.ndarray) -> dict:
    """``{"dtype", "shape", "data"}``: the array's dtype string (with its byte order), shape and
    base64 of its C-contiguous bytes."""
    values = np.ascontiguousarray(values)
    return {"dtype": values.dtype.str, "shape": list(values.shape),
            "data": base64.b64encode(values.tobytes()).decode("ascii")}


def decode_array(data: dict) -> np.ndarray:
    """The array :func:`encode_array` encoded (a read-only view of the decoded bytes)."""
    dtype = np.dtype(data["dtype"])
    if dtype.kind not in "iuf" or dtype.hasobject:
        raise ValueError(f"unexpected dtype {data['dtype']!r}")
    return np.frombuffer(base64.b64decode(data["data"], validate=True), dtype=dtype).reshape(data["shape"])
