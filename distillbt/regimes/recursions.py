"""The regime filter's recursions over blocks, vectorised: forward filter, backward pass.

Each is a product of a vector by one small matrix per block. Run step by step that is one
numpy call per block; here the steps are grouped (:func:`chain`, :func:`scan`), so a series
of any length takes a few hundred numpy steps — still causal bit for bit: an output row
depends only on the inputs up to it, and changing later inputs leaves it unchanged.
"""

from __future__ import annotations

import numpy as np

__all__ = ["shift_max_to_zero", "chain", "scan", "forward", "forward_backward"]

#: Steps per group of the vectorised forward / backward recursion (:func:`chain`).
_SCAN_CHUNK = 32
#: Steps between rescalings of the running products in :func:`scan`.
_RESCALE = 8


def shift_max_to_zero(log_lik: np.ndarray) -> np.ndarray:
    """Rows shifted so their maximum is 0: exp() then neither overflows nor underflows all."""
    return log_lik - log_lik.max(axis=1, keepdims=True)


def chain(m: np.ndarray, v0: np.ndarray, chunk: int = _SCAN_CHUNK) -> np.ndarray:
    """``u_0 = v0``, ``u_c ∝ u_{c-1} @ m[c-1]`` (rows summing to 1): ``len(m) + 1`` rows.

    ``m`` may have a leading axis of independent sequences (``m``: s × n × k × k, ``v0``: s × k,
    result s × (n + 1) × k). Vectorised, and causal bit for bit: ``u_c`` is built from
    ``m[:c]`` only, and every operation is per matrix or per row, so changing later matrices
    leaves earlier rows unchanged. Sequences longer than ``2 · chunk`` are cut into groups of
    ``chunk`` steps: (1) the product over each group, all groups at once, step by step
    (rescaled to a largest entry of 1: only directions matter); (2) the vector at the start of
    each group, by the same recursion over the groups' products; (3) all groups at once from
    their starting vectors. Python loops of about ``4 · chunk`` steps per level instead of n.
    """
    if m.ndim == 3:
        return chain(m[None], v0[None], chunk)[0]
    s, n, k, _ = m.shape
    out = np.empty((s, n + 1, k))
    out[:, 0] = v0 / v0.sum(axis=1, keepdims=True)
    if n <= 2 * chunk:
        for c in range(n):
            u = (out[:, c, None, :] @ m[:, c])[:, 0]
            out[:, c + 1] = u / u.sum(axis=1, keepdims=True)
        return out
    g = -(-n // chunk)
    steps = np.broadcast_to(np.eye(k), (s, g * chunk, k, k)).copy()
    steps[:, :n] = m
    steps = steps.reshape(s, g, chunk, k, k)
    total = np.broadcast_to(np.eye(k), (s, g, k, k)).copy()
    for i in range(chunk):
        total = total @ steps[:, :, i]
        total /= total.max(axis=(2, 3), keepdims=True)
    u = chain(total[:, :-1], out[:, 0], chunk)  # (s, g, k): the vector entering each group
    res = np.empty((s, g, chunk, k))
    for i in range(chunk):
        u = (u[:, :, None, :] @ steps[:, :, i])[:, :, 0]
        u /= u.sum(axis=2, keepdims=True)
        res[:, :, i] = u
    out[:, 1:] = res.reshape(s, g * chunk, k)[:, :n]
    return out


def scan(lik: np.ndarray, mat: np.ndarray, init: np.ndarray, chunk: int = 2 * _SCAN_CHUNK) -> np.ndarray:
    """``v_t ∝ lik_t ⊙ (v_{t-1} @ mat)`` for every t, ``v_{-1} = init``; rows sum to 1.

    For s independent sequences at once: ``lik`` s × T × k, ``mat`` s × k × k, ``init`` s × k.
    :func:`chain` with the step matrices ``mat · diag(lik_t)``, cheaper for that form: the
    product over each group of ``chunk`` steps, all groups at once, takes one small matrix
    product per step (the k unit vectors of every group through ``mat``, then scaled by
    ``lik``); the vectors entering the groups come from :func:`chain` over the groups'
    products; then all groups run their steps at once. Causal bit for bit, like :func:`chain`.

    The running products and vectors are rescaled every ``_RESCALE`` steps only: ``lik`` rows
    have a largest entry of 1 (:func:`shift_max_to_zero`) and the transition entries are at
    least about 1e-12, so they cannot shrink by more than ~1e-12 per step (~1e-96 between
    rescalings, far above the smallest float64); rows of the result are normalised at the end.
    """
    s, t, k = lik.shape
    n = max(1, -(-t // chunk))
    steps = np.ones((s, n * chunk, k))
    steps[:, :t] = lik
    steps = steps.reshape(s, n, chunk, k)
    total = np.broadcast_to(np.eye(k), (s, n, k, k)).copy()  # total[., c, b]: image of unit vector b
    for i in range(chunk):
        total = (total.reshape(s, n * k, k) @ mat).reshape(s, n, k, k) * steps[:, :, i, None, :]
        if i % _RESCALE == _RESCALE - 1 or i == chunk - 1:
            total /= total.max(axis=(2, 3), keepdims=True)
    v = chain(total[:, :-1], init)  # (s, n, k): the vector entering each group
    out = np.empty((s, n, chunk, k))
    for i in range(chunk):
        v = steps[:, :, i] * (v @ mat)
        out[:, :, i] = v
        if i % _RESCALE == _RESCALE - 1:
            v = v / v.sum(axis=2, keepdims=True)
    out /= out.sum(axis=3, keepdims=True)
    return out.reshape(s, n * chunk, k)[:, :t]


def forward(lik: np.ndarray, transition: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Filtered state probabilities after each block: α_t ∝ lik_t ⊙ (Aᵀ α_{t-1}), α_{-1} = start."""
    return scan(lik[None], transition[None], start[None])[0]


def forward_backward(lik: np.ndarray, transition: np.ndarray, start: np.ndarray):
    """Filtered probabilities α (as :func:`forward`) and backward messages β_t ∝ A (lik_{t+1}
    ⊙ β_{t+1}), β_last = 1, in one :func:`scan` of two sequences.

    With g_t = lik_t ⊙ β_t, run backwards g_t = lik_t ⊙ (A g_{t+1}), g_last ∝ lik_last: a scan
    over the reversed blocks with ``mat = Aᵀ`` from ones (A·1 = 1); then β_t = A g_{t+1}.
    """
    k = lik.shape[1]
    both = scan(np.stack([lik, lik[::-1]]), np.stack([transition, transition.T]),
                 np.stack([start, np.ones(k)]))
    alpha, g = both[0], both[1][::-1]
    beta = np.ones_like(lik)
    b = g[1:] @ transition.T
    beta[:-1] = b / b.sum(axis=1, keepdims=True)
    return alpha, beta
