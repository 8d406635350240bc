"""Trajectory matching (MTT; Cazenavette, Wang, Torralba, Efros & Zhu, "Dataset Distillation by
Matching Training Trajectories", CVPR 2022) in numpy.

Gradient matching compares single steps; MTT compares where training *goes*. Before the
synthetic set is touched, ``n_experts`` learners are trained on the real data from fresh
initialisations, ``expert_steps`` gradient-descent steps each, and every parameter vector
along the way is kept: the expert trajectories ``θ*₀, θ*₁, …``. Each iteration then

1. picks an expert and a start ``t ≤ expert_steps − expert_span``;
2. trains a *student* on the synthetic set ``S`` from the expert's checkpoint:
   ``θ̂₀ = θ*_t``, ``θ̂ₖ₊₁ = θ̂ₖ − α ∇θL(S; θ̂ₖ)`` for ``k < student_steps``;
3. scores where the student ended against where the expert went in ``expert_span`` (M)
   steps on the real data, normalised by how far the expert went::

       loss = ||θ̂_N − θ*_{t+M}||² / ||θ*_t − θ*_{t+M}||²

4. moves ``x̃``, ``ỹ`` (and ``log α`` when ``learn_lr``) one Adam step down its gradient.

The gradient differentiates through the whole unrolled student run (reverse mode by hand):
with ``aₖ = ∂loss/∂θ̂ₖ``, ``a_N = 2 (θ̂_N − θ*_{t+M}) / ||θ*_t − θ*_{t+M}||²`` and, going back,

    ∂loss/∂S += −α ∂(aₖ₊₁ · ∇θL(S; θ̂ₖ))/∂S     (the learner's data VJP, :mod:`._losses`)
    ∂loss/∂α += −aₖ₊₁ · ∇θL(S; θ̂ₖ)
    aₖ = aₖ₊₁ − α H(θ̂ₖ) aₖ₊₁                    (H: Hessian of L(S; ·), :func:`hvp`)

All closed form for the linear, logistic and one-hidden-layer tanh learners of
:mod:`distillbt.models`, under their weighted-mean loss convention (``L = Σᵢ wᵢ ℓᵢ``, the
synthetic points weighing ``1/size`` each); no penalty, as in gradient matching. The cost of a
student run is ``student_steps`` gradient, Hessian-vector and data-VJP products on the
``size`` synthetic points: negligible next to the experts, which see the real data.

Experts take full gradient-descent steps estimated on ``batch_size`` real rows drawn
∝ ``sample_weight`` — for the linear and logistic learners with gradient matching's control
variate (:class:`~distillbt.distill.gradient.RealGradient`: the linear part of the gradient
is exact), because on market data a plain mini-batch gradient is mostly label noise and a
noisy expert would teach the synthetic set the noise. Their step ``expert_lr="auto"`` is
``c / λ_max`` of the standardised second-moment matrix ``E[J Jᵀ]`` (``J = [x, 1]``), with
``c = 1`` for the squared loss and ``4`` for the logistic loss (its curvature is at most 1/4):
the largest step that is stable for the linear learners whatever the features' correlation.

The recorded loss (``loss_history_``, and what the plateau rule watches) is the matching
loss on a fixed panel of (expert, start) pairs, a deterministic function of ``S``; starting
points, standardisation, soft labels ``sigmoid(u)`` for classification, Adam with a cosine
schedule and the plateau rule are those of distribution matching (shared helpers in
:mod:`.distribution` and :func:`descend` here, also used by :mod:`.cafe`).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._losses import LinearSpec, MLPSpec, make_spec
from ._optim import Adam, Schedule
from .base import TASKS, BaseDistiller, check_training_data
from .coresets import check_choice, check_float, check_int, uniform
from .distribution import optimisation_options, sigmoid, starting_labels, starting_points
from .gradient import RealGradient

__all__ = ["TrajectoryMatching", "hvp"]

# Panel of (expert, start) pairs the recorded loss is computed on, at most.
_PANEL_PAIRS = 6
# Starts where the expert's move over the span is below this share of its largest move are
# not used (see _usable_starts); _TINY only guards a division by an exact zero.
_MIN_MOVE = 1e-2
_TINY = 1e-300


# --------------------------------------------------------------------------- second order


def hvp(spec, theta, X, y, w, v):
    """Hessian-vector product ``∇²θL(θ) v`` of the weighted loss ``L = Σᵢ wᵢ ℓᵢ`` of ``spec``.

    Written beside :mod:`._losses` rather than in it because only trajectory matching needs
    it (the unrolled student run is differentiated with respect to its own parameters too).
    """
    if isinstance(spec, LinearSpec):
        # ∇θL = Σ wᵢ rᵢ Jᵢ; its change along v is Σ wᵢ h'(fᵢ) (Jᵢ·v) Jᵢ
        f = spec.decision(theta, X)
        d_delta = w * spec.head.curvature(f) * (X @ v[:-1] + v[-1])
        return np.append(X.T @ d_delta, d_delta.sum())
    if isinstance(spec, MLPSpec):
        # Directional derivative of MLPSpec.loss_and_grad along v, term by term: with
        # Q = X V₁ + v_b₁ the change of Z, dA = D ⊙ Q, df = dA·w₂ + A·v_w₂ + v_b₂,
        # dδ = w h'(f) df, dD = −2 A dA and E = δ w₂ᵀ ⊙ D, the gradient's pieces change by
        # dE = (dδ w₂ᵀ + δ v_w₂ᵀ) ⊙ D + δ w₂ᵀ ⊙ dD, and dA, dδ.
        W1, b1, w2, b2 = spec.unpack(theta, X.shape[1])
        V1, vb1, vw2, vb2 = spec.unpack(v, X.shape[1])
        A = np.tanh(X @ W1 + b1)
        D = 1.0 - A * A
        f = A @ w2 + b2
        dA = D * (X @ V1 + vb1)
        delta = w * spec.head.residual(f, y)
        d_delta = w * spec.head.curvature(f) * (dA @ w2 + A @ vw2 + vb2)
        dE = (np.outer(d_delta, w2) + np.outer(delta, vw2)) * D - 2.0 * np.outer(delta, w2) * A * dA
        return spec.pack(X.T @ dE, dE.sum(axis=0), dA.T @ delta + A.T @ d_delta, d_delta.sum())
    raise TypeError(f"no Hessian-vector product for {type(spec).__name__}")


def _student_loss_grad(spec, start, target, X, y, w, lr, steps, *, grad=True):
    """Matching loss of a student run on ``(X, y, w)`` and its gradients.

    ``steps`` gradient-descent steps of size ``lr`` from ``start``; returns ``(loss, dX, dy,
    dlr)`` (``dX = dy = dlr = None`` without ``grad``; ``loss = inf`` when the run diverged).
    """
    scale = float((start - target) @ (start - target))
    thetas, grads = [start], []
    theta = start
    for _ in range(steps):
        g = spec.loss_and_grad(theta, X, y, w)[1]
        theta = theta - lr * g
        thetas.append(theta)
        grads.append(g)
    diff = theta - target
    loss = float(diff @ diff) / max(scale, _TINY)
    if not np.isfinite(loss):
        return np.inf, None, None, None
    if not grad:
        return loss, None, None, None
    a = 2.0 * diff / max(scale, _TINY)
    dX, dy, dlr = np.zeros_like(X), np.zeros_like(y), 0.0
    for k in range(steps - 1, -1, -1):
        dlr -= float(a @ grads[k])
        vx, vy = spec.data_vjp(thetas[k], X, y, w, a)
        dX -= lr * vx
        dy -= lr * vy
        if k:  # ∂loss/∂θ̂₀ is not needed: the start is a fixed expert checkpoint
            a = a - lr * hvp(spec, thetas[k], X, y, w, a)
    return loss, dX, dy, dlr


# --------------------------------------------------------------------------- shared loop


def descend(params, gradients, probe, *, lr, n_iter, schedule_kind, tol, patience, lr_scales=None):
    """Adam on ``params`` with the cosine/constant schedule and plateau rule of
    :class:`~._optim.Schedule`, the loop distribution matching runs, shared by trajectory
    matching and CAFE.

    ``gradients()`` returns one gradient per parameter array at the current values;
    ``probe()`` the recorded loss; ``lr_scales`` (one per array) multiplies the scheduled
    rate. Returns ``(schedule, history)`` with ``history`` the probe before and after each
    update.
    """
    scales = lr_scales or [1.0] * len(params)
    adam = Adam(params)
    schedule = Schedule(schedule_kind, lr, n_iter, tol=tol, patience=patience)
    history = [probe()]
    for _ in range(n_iter):
        rate = schedule.lr()
        adam.step(params, gradients(), [rate * s for s in scales])
        history.append(probe())
        if schedule.update(history[-1]):
            break
    return schedule, history


def _second_moment_lr(Xs, w, *, logistic):
    """``c / λ_max(E[J Jᵀ])`` with ``J = [x, 1]``: the largest stable gradient-descent step of
    the linear learner (``c = 1`` squared loss, ``4`` logistic loss)."""
    J = np.column_stack([Xs, np.ones(len(Xs))])
    top = float(np.linalg.eigvalsh((J * w[:, None]).T @ J)[-1])
    return (4.0 if logistic else 1.0) / top


# --------------------------------------------------------------------------- the distiller


class TrajectoryMatching(BaseDistiller):
    """Distil ``(X, y)`` into ``size`` synthetic points by matching training trajectories
    (see the module docstring for the loss and its gradient).

    Parameters (keyword-only)
    -------------------------
    size : int, default 50
    task : {"regression", "classification"}, default "regression"
        Classification learns soft labels ``sigmoid(u)`` in (0, 1).
    learner : {"linear", "logistic", "mlp"}, default "linear"
        The model whose trajectories are matched (``"linear"`` has the task's loss: least
        squares or logistic regression).
    hidden : int, default 16
        Hidden units of the ``"mlp"`` learner.
    n_experts : int, default 6
        Expert runs on the real data (fresh initialisations).
    expert_steps : int, default 40
        Gradient-descent steps of each expert run (its trajectory has ``expert_steps + 1``
        checkpoints).
    expert_span : int, default 5
        ``M``: expert steps the student must cover from its start.
    student_steps : int, default 10
        ``N``: steps of the student on the synthetic set.
    expert_lr : float or "auto", default "auto"
        Step of the experts in standardised units; "auto" = ``c / λ_max(E[J Jᵀ])``.
    student_lr : float or "auto", default "auto"
        Initial student step ``α``; "auto" = ``expert_lr · M / N`` (the same distance in
        ``N`` steps as the expert's in ``M``).
    learn_lr : bool, default True
        Also learn ``α`` (as ``log α``, so it stays positive), as MTT does.
    lr_lr : float, default 0.01
        Adam step size of ``log α``, scaled by the same schedule as ``lr``.
    pairs_per_iter : int, default 2
        (expert, start) pairs whose gradients are averaged per update.
    n_iter : int, default 200
        Maximum updates (0 returns the initial points).
    lr : float, default 0.02
        Adam step size of the points and labels, in standard deviations (label logits for
        classification).
    batch_size : int, default 4096
        Real rows per expert gradient (the whole set, exactly weighted, when it is smaller).
    init : {"kmedoids", "random"}, default "kmedoids"
    lr_schedule : {"cosine", "constant"}, default "cosine"
    tol : float, default 1e-6
    patience : int, default 30
        Plateau rule and final annealing of :class:`~distillbt.distill._optim.Schedule`.
    random_state : int, Generator or None, default 0

    Attributes
    ----------
    X_, y_ : the synthetic points (units of ``X`` and ``y``); ``weight_`` uniform.
    student_lr_ : float, the (learned) student step in standardised units.
    expert_lr_ : float, the experts' step.
    n_iter_, converged_ : updates run; whether the plateau rule ended training.
    loss_history_ : list of float
        The mean matching loss on a fixed panel of at most 6 (expert, start) pairs, before
        training and after every update (``n_iter_ + 1`` values); 1 means "no better than
        standing still at ``θ*_t``", 0 a perfect match.

    Example::

        tm = TrajectoryMatching(size=50, task="classification").fit(X, y)
        LogisticRegression().fit(tm.X_, tm.y_, sample_weight=tm.weight_)
    """

    def __init__(
        self,
        *,
        size=50,
        task="regression",
        learner="linear",
        hidden=16,
        n_experts=6,
        expert_steps=40,
        expert_span=5,
        student_steps=10,
        expert_lr="auto",
        student_lr="auto",
        learn_lr=True,
        lr_lr=0.01,
        pairs_per_iter=2,
        n_iter=200,
        lr=0.02,
        batch_size=4096,
        init="kmedoids",
        lr_schedule="cosine",
        tol=1e-6,
        patience=30,
        random_state=0,
    ):
        self.size = size
        self.task = task
        self.learner = learner
        self.hidden = hidden
        self.n_experts = n_experts
        self.expert_steps = expert_steps
        self.expert_span = expert_span
        self.student_steps = student_steps
        self.expert_lr = expert_lr
        self.student_lr = student_lr
        self.learn_lr = learn_lr
        self.lr_lr = lr_lr
        self.pairs_per_iter = pairs_per_iter
        self.n_iter = n_iter
        self.lr = lr
        self.batch_size = batch_size
        self.init = init
        self.lr_schedule = lr_schedule
        self.tol = tol
        self.patience = patience
        self.random_state = random_state

    def _check_options(self):
        span = check_int("expert_span", self.expert_span, 1)
        options = {
            "n_experts": check_int("n_experts", self.n_experts, 1),
            "expert_steps": check_int("expert_steps", self.expert_steps, span),
            "span": span,
            "student_steps": check_int("student_steps", self.student_steps, 1),
            "pairs": check_int("pairs_per_iter", self.pairs_per_iter, 1),
            "lr_lr": check_float("lr_lr", self.lr_lr, strict=False),
        }
        for name in ("expert_lr", "student_lr"):
            value = getattr(self, name)
            options[name] = None if value == "auto" else check_float(name, value)
        return options

    def fit(self, X, y, sample_weight=None):
        """Learn ``X_``, ``y_`` and ``weight_`` from ``(X, y)``; returns ``self``."""
        task = check_choice("task", self.task, TASKS)
        X, y, w = check_training_data(X, y, sample_weight, size=self.size, task=task)
        size = check_int("size", self.size, 1)
        spec = make_spec(self.learner, task, hidden=self.hidden)
        n_iter, lr, batch_size, schedule_kind, tol, patience = optimisation_options(self)
        opt = self._check_options()
        rng = np.random.default_rng(self.random_state)
        classify = task == "classification"

        scaler, start = starting_points(self, X, y, w, size, rng)
        xs = scaler.transform_x(start.X_)
        label = starting_labels(start.y_, scaler, soft=classify)
        # The learner's space: standardised features; 0/1 labels or standardised targets.
        X_real = scaler.transform_x(X)
        y_real = y if classify else scaler.transform_y(y)

        expert_lr = opt["expert_lr"] or _second_moment_lr(X_real, w, logistic=classify)
        trajectories = _expert_trajectories(spec, X_real, y_real, w, batch_size, rng,
                                            n_experts=opt["n_experts"], steps=opt["expert_steps"], lr=expert_lr)
        span, steps = opt["span"], opt["student_steps"]
        student_lr = opt["student_lr"] or expert_lr * span / steps
        log_lr = np.array([np.log(student_lr)])
        w_syn = uniform(size)
        pairs = _usable_starts(trajectories, span)
        panel = [pairs[i] for i in np.unique(np.linspace(0, len(pairs) - 1, _PANEL_PAIRS).round().astype(int))]

        def targets():
            return sigmoid(label) if classify else label

        def pair_loss_grad(expert, t, *, grad=True):
            path = trajectories[expert]
            return _student_loss_grad(spec, path[t], path[t + span], xs, targets(), w_syn,
                                      float(np.exp(log_lr[0])), steps, grad=grad)

        def probe():
            losses = [pair_loss_grad(e, t, grad=False)[0] for e, t in panel]
            return float(np.mean(losses))

        def gradients():
            gx, gy, glr, used = np.zeros_like(xs), np.zeros_like(label), 0.0, 0
            for _ in range(opt["pairs"]):
                loss, dX, dy, dlr = pair_loss_grad(*pairs[rng.integers(len(pairs))])
                if not np.isfinite(loss):  # a diverged student run says nothing about S
                    continue
                gx, gy, glr, used = gx + dX, gy + dy, glr + dlr, used + 1
            if classify:
                p = sigmoid(label)
                gy = gy * p * (1.0 - p)
            # d loss / d log α = α · d loss / d α
            glr = glr * float(np.exp(log_lr[0])) if self.learn_lr else 0.0
            used = max(used, 1)
            return [gx / used, gy / used, np.array([glr / used])]

        schedule, history = descend(
            [xs, label, log_lr], gradients, probe, lr=lr, n_iter=n_iter, schedule_kind=schedule_kind,
            tol=tol, patience=patience, lr_scales=[1.0, 1.0, opt["lr_lr"] / lr],
        )
        self.expert_lr_ = float(expert_lr)
        self.student_lr_ = float(np.exp(log_lr[0]))
        return self._set_result(
            scaler.inverse_x(xs),
            sigmoid(label) if classify else scaler.inverse_y(label),
            w_syn,
            n_iter=schedule.t,
            converged=schedule.converged,
            loss_history=history,
        )


def _usable_starts(trajectories, span):
    """The (expert, start) pairs a student may start from: those where the expert still moves
    at least ``_MIN_MOVE`` of its largest move over ``span`` steps. Near convergence the
    normaliser ``||θ*_t − θ*_{t+M}||²`` tends to 0 and the ratio would only measure the
    student's distance from a point, blown up by the vanishing denominator (MTT bounds the
    start by a fixed ``max_start_epoch`` for the same reason)."""
    pairs = []
    for expert, path in enumerate(trajectories):
        moves = ((path[span:] - path[:-span]) ** 2).sum(axis=1)
        pairs += [(expert, int(t)) for t in np.flatnonzero(moves >= _MIN_MOVE * moves.max())]
    return pairs


def _expert_trajectories(spec, X, y, w, batch_size, rng, *, n_experts, steps, lr):
    """``n_experts`` gradient-descent runs on the real data from fresh initialisations: a list
    of ``(steps + 1, n_params)`` arrays of checkpoints (runs that diverge are dropped)."""
    if len(X) <= batch_size:
        # the whole set, exactly weighted: the experts are deterministic given their start
        def real_gradient(theta):
            return spec.loss_and_grad(theta, X, y, w)[1]
    else:
        real_gradient = RealGradient(spec, X, y, w, batch_size, rng)
    runs = []
    for _ in range(n_experts):
        path = [spec.init_params(rng, X.shape[1])]
        for _ in range(steps):
            path.append(path[-1] - lr * real_gradient(path[-1]))
        path = np.array(path)
        if np.isfinite(path).all():
            runs.append(path)
    if not runs:
        raise InputError(f"every expert run diverged with expert_lr={lr:g}: give a smaller expert_lr")
    return runs
