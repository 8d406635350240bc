"""Gradient matching: Dataset Condensation (Zhao, Mopuri & Bilen, ICLR 2021) in numpy.

A synthetic set ``S = {(x̃ⱼ, ỹⱼ)}`` is learned so that, at the model parameters ``θ`` a
learner actually visits, the gradient of the loss on ``S`` points the way the gradient on the
real data ``T`` points; then training on ``S`` walks the path training on ``T`` walks.

The default (``theta_sampling="trajectory"``, every learner including the MLP) takes ``θ``
on the learner's own training path on the real data, computes the real gradients there
exactly on all rows, and refines ``S`` by L-BFGS on the relative distance
``|g_S − g_T|²/|g_T|²`` (see :class:`GradientMatching`, ``_ParameterBank`` and ``_MLPBank``).
For the MLP, ``θ`` along the learner's own runs on ``S`` are then added and ``S`` refined
(``refine_rounds``): a 50-point set pins only some of the network's directions, and training
on it otherwise drifts off the real path into fitting its own labels.
Below: the published variant (``theta_sampling="synthetic"``). Each outer iteration

1. draws a fresh initialisation ``θ₀`` (the learner's default initialisation);
2. at ``θ₀`` and after each of ``n_inner`` gradient-descent steps on ``S``
   (``θ ← θ − η ∇θL(S; θ)``), estimates ``g_T = ∇θL(T; θ)`` on a mini-batch of real rows
   drawn ∝ ``sample_weight``, computes ``g_S = ∇θL(S; θ)`` and the distance
   ``1 − cos(g_T, g_S)``, averaged over output units (one row of a weight matrix with its
   bias per unit, as in DC; for linear and logistic models the whole vector);
3. moves ``x̃`` and ``ỹ`` one Adam step down the gradient of that distance, in closed form:
   the chain rule through the cosine gives ``v = ∂dist/∂g_S``, the learner's vector-Jacobian
   product (:mod:`distillbt.distill._losses`) gives ``∂(v·g_S)/∂x̃`` and ``∂(v·g_S)/∂ỹ``.
   The training run is not differentiated (as in DC).

Classification labels are ``ỹ = sigmoid(z)`` with ``z`` learned, so they stay soft labels in
(0, 1). Step sizes follow a cosine decay over ``n_outer`` iterations.

Two departures from the paper, both about noise (market signals are weak, so a mini-batch
gradient is mostly noise):

- for linear and logistic learners ``g_T`` is estimated with a control variate whose linear
  part is exact (see :class:`RealGradient`): for linear regression it is the exact full-data
  gradient, for logistic regression the batch only supplies the small non-linear remainder;
- the convergence check and ``loss_history_`` use the distance on a fixed panel of 8
  initialisations with real gradients computed once on large batches, a function of ``S``
  alone (the training distance changes with every draw of ``θ`` and batch by more than ``S``
  improves it). The fit stops when its moving average over 20 iterations has not improved by
  ``tol`` for ``patience`` iterations.

Everything runs on standardised data (features, and the target for regression, centred and
scaled by their weighted mean and standard deviation): ``lr_x`` and ``lr_y`` are in standard
deviations per step; the result is mapped back to the units of ``X`` and ``y``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logit

from ..errors import InputError
from ._losses import LinearSpec, make_spec
from ._optim import Adam
from .base import BaseDistiller, check_init_points, check_training_data
from .coresets import KMedoids, RandomSubset, check_choice, check_float, check_int

__all__ = ["GradientMatching"]

INITS = ("kmedoids", "random")
SCHEDULES = ("cosine", "constant")
THETA_SAMPLINGS = ("auto", "trajectory", "synthetic")
DISTANCES = ("auto", "relative", "cosine")

# Real labels 0/1 start as soft labels 0.1/0.9: a logit of ±∞ could never move.
_LABEL_INIT = 0.9
# Step of the short training runs on S, in standardised units: below 2/λ_max of the loss's
# Hessian on unit-variance data; the logistic loss's curvature is at most 1/4, so the linear
# model of a classification task can step four times as far.
_INNER_LR, _INNER_LR_LOGISTIC = 0.3, 1.0
# Convergence panel: parameter draws, real rows per draw (at least), and the moving average
# of its distance (the set still jitters while the step is large).
_PANEL_SIZE = 8
_PANEL_BATCH = 4096
_SMOOTHING = 20
_EPS = 1e-12


class GradientMatching(BaseDistiller):
    """Distil ``(X, y)`` into ``size`` synthetic points by gradient matching.

    Parameters (keyword-only)
    -------------------------
    size : number of synthetic points.
    task : ``"regression"`` or ``"classification"`` (``y`` 0/1; learned labels are soft).
    learner : the model whose gradients are matched: ``"linear"`` (a linear model with the
        task's loss: least squares for regression, logistic for classification),
        ``"logistic"`` (the same, classification only) or ``"mlp"`` (one tanh hidden layer of
        ``hidden`` units, the task's loss).
    init : the real points the synthetic set starts from: ``"kmedoids"``
        (:class:`~distillbt.distill.coresets.KMedoids` on at most 2,000 rows, 5 rounds) or
        ``"random"`` (:class:`~distillbt.distill.coresets.RandomSubset`, ∝ ``sample_weight``);
        for classification within each class, in proportion to the class weights.
    n_outer : outer iterations (fresh initialisations), at most.
    n_inner : gradient-descent steps on ``S`` per initialisation; the gradients are matched
        at the initialisation and after each step, so one outer iteration makes
        ``n_inner + 1`` updates of ``S``.
    inner_lr : step of those runs; ``"auto"`` = 1.0 for the logistic model, else 0.3.
    lr_x, lr_y : Adam step sizes of the points and of the labels (the label logits for
        classification), in standard deviations.
    batch_size : real rows per gradient (drawn with replacement, ∝ ``sample_weight``).
    lr_schedule : ``"cosine"`` (decay to 0 over ``n_outer``) or ``"constant"``.
    tol, patience : stop when the panel distance (see ``loss_history_``), averaged over the
        last 20 iterations, has not improved by ``tol`` for ``patience`` outer iterations.
    hidden : hidden units of the ``"mlp"`` learner.
    learn_labels : also learn ``ỹ`` (otherwise the labels of the initial real points stay).
    theta_sampling : ``"trajectory"`` (default via ``"auto"``, every learner): match exact
        full-data gradients at parameters on the learner's own real-data path, refined by
        L-BFGS — for linear/logistic models Newton's path from 0 to the penalised full-data
        fit, ``n_experts`` paths from fresh initialisations and ``n_cloud`` points around the
        fit (``_ParameterBank``); for the MLP ``n_experts`` full-batch Adam runs on the real
        data (``path_steps`` steps of ``path_lr``, weight decays ``path_alphas`` cycled,
        default 1e-3, 3e-3, 1e-2 — the evaluation grid's decays at which the network learns;
        on at most ``path_rows`` rows) and ``n_cloud`` points around their ends
        (``_MLPBank``; the set is matched as the MLP sees it, standardised with its own
        moments, and returned with the real moments); then ``refine_rounds`` times, ``θ``
        along the learner's own runs on ``S`` join the bank and ``S`` is refined. The MLP's
        soft labels start at the base rate.
        ``"synthetic"``: the published DC variant (θ along runs on ``S``, mini-batches, cosine).
    distance : ``"relative"`` (``|g_S − g_T|²/|g_T|²``, default with trajectory sampling) or
        ``"cosine"``.
    alpha : the linear/logistic learner's penalty defining the end of its path.
    n_experts : real training paths in the bank; ``"auto"``: 4 for linear/logistic models,
        3 per decay in ``path_alphas`` for the MLP.
    refine_rounds : (MLP, trajectory sampling) rounds that add ``θ`` along the learner's own
        full-batch runs on ``S`` (2 per decay, the real paths' recipe) to the bank, with their
        exact real gradients, and refine ``S`` (``n_outer`` iterations each). 0: match the
        real paths only.
    random_state : seed of ``numpy.random.default_rng``.

    Attributes
    ----------
    ``X_`` (size, d), ``y_`` (size,), ``weight_`` (uniform), ``n_iter_`` (outer iterations
    run, over all refinement rounds), ``converged_`` (the last round stopped by the
    convergence check rather than by ``n_outer``),
    ``loss_history_`` (after each outer iteration, the mean distance ``1 − cos`` between real
    and synthetic gradients over a fixed panel of 8 initialisations: 0 is a perfect match,
    1 orthogonal; with trajectory sampling the bank distance, round after round for the MLP,
    each round on its larger bank).

    Example::

        gm = GradientMatching(size=50, task="classification", learner="logistic").fit(X, y)
        LogisticRegression().fit(gm.X_, gm.y_, sample_weight=gm.weight_)
    """

    def __init__(
        self,
        *,
        size=50,
        task="regression",
        learner="linear",
        init="kmedoids",
        n_outer=200,
        n_inner=5,
        inner_lr="auto",
        lr_x=0.05,
        lr_y=0.05,
        batch_size=256,
        lr_schedule="cosine",
        tol=1e-5,
        patience=20,
        hidden=16,
        learn_labels=True,
        theta_sampling="auto",
        distance="auto",
        alpha=1e-3,
        n_experts="auto",
        n_cloud=64,
        path_steps=300,
        path_lr=1e-2,
        path_alphas=None,
        path_rows=10_000,
        refine_rounds=2,
        random_state=0,
    ):
        self.size = size
        self.task = task
        self.learner = learner
        self.init = init
        self.n_outer = n_outer
        self.n_inner = n_inner
        self.inner_lr = inner_lr
        self.lr_x = lr_x
        self.lr_y = lr_y
        self.batch_size = batch_size
        self.lr_schedule = lr_schedule
        self.tol = tol
        self.patience = patience
        self.hidden = hidden
        self.learn_labels = learn_labels
        self.theta_sampling = theta_sampling
        self.distance = distance
        self.alpha = alpha
        self.n_experts = n_experts
        self.n_cloud = n_cloud
        self.path_steps = path_steps
        self.path_lr = path_lr
        self.path_alphas = path_alphas
        self.path_rows = path_rows
        self.refine_rounds = refine_rounds
        self.random_state = random_state

    def _check_options(self):
        """Validated options (``learner``, ``task`` and ``hidden`` are checked by ``make_spec``)."""
        check_choice("init", self.init, INITS)
        check_choice("lr_schedule", self.lr_schedule, SCHEDULES)
        options = {
            "n_outer": check_int("n_outer", self.n_outer, 1),
            "n_inner": check_int("n_inner", self.n_inner, 0),
            "batch_size": check_int("batch_size", self.batch_size, 1),
            "patience": check_int("patience", self.patience, 1),
            "lr_x": check_float("lr_x", self.lr_x),
            "lr_y": check_float("lr_y", self.lr_y),
            "tol": check_float("tol", self.tol, strict=False),
            "alpha": check_float("alpha", self.alpha, strict=False),
            "n_cloud": check_int("n_cloud", self.n_cloud, 0),
        }
        sampling = check_choice("theta_sampling", self.theta_sampling, THETA_SAMPLINGS)
        if sampling == "auto":
            sampling = "trajectory"
        options["theta_sampling"] = sampling
        options["path_steps"] = check_int("path_steps", self.path_steps, 1)
        options["path_lr"] = check_float("path_lr", self.path_lr)
        options["path_rows"] = check_int("path_rows", self.path_rows, 1)
        options["refine_rounds"] = check_int("refine_rounds", self.refine_rounds, 0)
        alphas = self.path_alphas
        if alphas is None:
            alphas = _MLP_PATH_ALPHAS
        try:
            alphas = tuple(check_float("path_alphas", a, strict=False) for a in alphas)
        except TypeError:
            raise InputError(f"path_alphas must be a sequence of numbers >= 0 or None, got {self.path_alphas!r}") from None
        if not alphas:
            raise InputError("path_alphas must not be empty")
        options["path_alphas"] = alphas
        if self.n_experts == "auto":
            options["n_experts"] = (_MLP_EXPERTS_PER_ALPHA * len(alphas) if self.learner == "mlp"
                                    else _LINEAR_EXPERTS)
        else:
            options["n_experts"] = check_int("n_experts", self.n_experts, 0)
        distance = check_choice("distance", self.distance, DISTANCES)
        if distance == "auto":
            distance = "relative" if sampling == "trajectory" else "cosine"
        if distance == "relative" and sampling != "trajectory":
            raise InputError("distance='relative' needs theta_sampling='trajectory'")
        options["distance"] = distance
        if self.inner_lr == "auto":
            logistic = self.learner != "mlp" and self.task == "classification"
            options["inner_lr"] = _INNER_LR_LOGISTIC if logistic else _INNER_LR
        else:
            options["inner_lr"] = check_float("inner_lr", self.inner_lr)
        return options

    def fit(self, X, y, sample_weight=None, *, init_points=None, init_targets=None):
        """Learn ``X_``, ``y_`` and ``weight_`` from ``(X, y)``; returns ``self``.

        ``init_points``/``init_targets`` (``size`` points in the units of ``X`` and ``y``):
        start from them instead of from real rows (a warm start, e.g. updating a saved set).
        """
        X, y, w = check_training_data(X, y, sample_weight, size=self.size, task=self.task)
        spec = make_spec(self.learner, self.task, hidden=self.hidden)
        opt = self._check_options()
        rng = np.random.default_rng(self.random_state)
        size, d = int(self.size), X.shape[1]
        classification = self.task == "classification"
        soft = classification and bool(self.learn_labels)

        x_mean, x_scale = _moments(X, w)
        y_mean, y_scale = (0.0, 1.0) if classification else _moments(y, w)
        Xs, ys = (X - x_mean) / x_scale, (y - y_mean) / y_scale

        if init_points is None:
            rows = _initial_indices(Xs, ys, size, w, rng, method=self.init, classification=classification)
            X_syn, start, clip = Xs[rows].copy(), ys[rows], 1 - _LABEL_INIT
            if soft and self.learner == "mlp":
                # The MLP's labels start at the base rate, not at 0.1/0.9: on a weak signal a
                # set starting there keeps large residuals that cancel only at the matched θ,
                # and the network (more parameters than 50 points pin down) fits them as
                # soon as its training leaves those θ (its validation loss at small decays then
                # rises far above the full data's).
                start = np.full(size, float(w @ ys))
        else:
            P, t = check_init_points(init_points, init_targets, size, d)
            X_syn, start, clip = (P - x_mean) / x_scale, (t - y_mean) / y_scale, 1e-6
        labels = logit(np.clip(start, clip, 1 - clip)) if soft else start.copy()
        labels_of = expit if soft else (lambda z: z)
        w_syn = np.full(size, 1.0 / size)

        if opt["theta_sampling"] == "trajectory" and self.learner == "mlp":
            bank = _MLPBank(spec, Xs, ys, w, rng, n_experts=max(opt["n_experts"], 1), n_cloud=opt["n_cloud"],
                            steps=opt["path_steps"], lr=opt["path_lr"], alphas=opt["path_alphas"],
                            rows=opt["path_rows"], standardise_labels=not classification)
            history = []
            for round_ in range(opt["refine_rounds"] + 1):
                if round_:
                    # Matching only at the real paths' θ leaves the set's loss free elsewhere,
                    # and training on it drifts off them into fitting the 50 labels. So θ
                    # along the learner's own runs on S join the bank, with their real
                    # gradients, and S is refined from where it is (as DAgger adds the states
                    # the learner visits): training on S is pulled back to the real path.
                    bank.extend(bank.learner_paths(X_syn, labels_of(labels), w_syn, rng,
                                                   _REFINE_RUNS_PER_ALPHA * len(opt["path_alphas"])))
                X_syn, labels, steps, converged = _fit_on_bank(
                    bank, X_syn, labels, w_syn, soft=soft, learn_labels=bool(self.learn_labels),
                    distance=opt["distance"], max_iter=opt["n_outer"], tol=opt["tol"], patience=opt["patience"])
                history += steps
            Z, y_out = bank.standardised(X_syn, labels_of(labels), w_syn)
            return self._set_result(
                Z * x_scale + x_mean, y_out * y_scale + y_mean, np.ones(size),
                n_iter=len(history), converged=converged, loss_history=history)

        if opt["theta_sampling"] == "trajectory":
            # the learner's penalty (α/2)|β|² on the original units, in standardised ones
            penalty = np.append(opt["alpha"] / x_scale**2 * (y_scale**2), 0.0)
            bank = _ParameterBank(spec, Xs, ys, w, rng, penalty=penalty, n_experts=opt["n_experts"],
                                  n_cloud=opt["n_cloud"])
            X_syn, labels, history, converged = _fit_on_bank(
                bank, X_syn, labels, w_syn, soft=soft, learn_labels=bool(self.learn_labels),
                distance=opt["distance"], max_iter=opt["n_outer"], tol=opt["tol"], patience=opt["patience"])
            return self._set_result(
                X_syn * x_scale + x_mean, labels_of(labels) * y_scale + y_mean, np.ones(size),
                n_iter=len(history), converged=converged, loss_history=history)

        params = [X_syn, labels] if self.learn_labels else [X_syn]
        base_lrs = [opt["lr_x"], opt["lr_y"]][: len(params)]
        optimiser = Adam(params)
        real_gradient = RealGradient(spec, Xs, ys, w, opt["batch_size"], rng)
        panel = _Panel(spec, Xs, ys, w, max(opt["batch_size"], _PANEL_BATCH), rng)

        n_outer = opt["n_outer"]
        history, best, stale, converged = [], math.inf, 0, False
        for outer in range(n_outer):
            decay = 0.5 * (1.0 + math.cos(math.pi * outer / n_outer)) if self.lr_schedule == "cosine" else 1.0
            lrs = [lr * decay for lr in base_lrs]
            theta = spec.init_params(rng, d)
            for step in range(opt["n_inner"] + 1):
                _, dX, dlabels, g_syn = _matching_objective(
                    spec, theta, real_gradient(theta), X_syn, labels, w_syn, soft_labels=soft
                )
                optimiser.step(params, [dX, dlabels][: len(params)], lrs)
                if step < opt["n_inner"]:
                    # g_syn is the gradient on S before this update: one evaluation saved; the
                    # run only serves to sample θ, it is not differentiated.
                    theta = theta - opt["inner_lr"] * g_syn
                    if not np.isfinite(theta).all():
                        break
            history.append(panel.distance(X_syn, labels_of(labels), w_syn))
            if len(history) >= _SMOOTHING:
                smoothed = float(np.mean(history[-_SMOOTHING:]))
                if smoothed < best - opt["tol"]:
                    best, stale = smoothed, 0
                else:
                    stale += 1
                if stale >= opt["patience"]:
                    converged = True
                    break

        return self._set_result(
            X_syn * x_scale + x_mean,
            labels_of(labels) * y_scale + y_mean,
            np.ones(size),
            n_iter=len(history),
            converged=converged,
            loss_history=history,
        )


# Geometric path from each fresh initialisation to the full-data solution: 9 points, the
# last 1/256 of the way from it.
_EXPERT_POINTS = 9
# Cloud around the solution: distances 10^U(-2.5, 0) times a fresh initialisation.
_CLOUD_DECADES = 2.5
# Floor of the relative distance's denominator, times the median |g_T|²: the real gradient
# vanishes at the (regularised) solution, and the relative error there would be unbounded.
_RELATIVE_FLOOR = 1e-4
_NEWTON_MAX = 50
# Weight decays of the MLP's real training paths (cycled over the experts): the decays at which
# the network learns from the data, the low end of the evaluation's grid in half decades.
# Larger ones (0.1 and 1 in that grid) shrink the network on a weak-signal market to the
# constant θ ≈ 0, whose gradients carry nothing to match, and sparser steps left the set
# unable to hold the decay the full data is fitted at (1e-3 on the sample market: see
# ``refine_rounds``).
_MLP_PATH_ALPHAS = (1e-3, 3e-3, 1e-2)
# Real paths per decay (``n_experts="auto"``): the evaluation trains the MLP from inits the
# bank never saw; the linear bank has one solution and needs fewer (4).
_MLP_EXPERTS_PER_ALPHA, _LINEAR_EXPERTS = 3, 4
# The learner's own runs on S per refinement round, per decay.
_REFINE_RUNS_PER_ALPHA = 2
_CHUNK = 32_768


class _ParameterBank:
    """Parameters ``θ`` of the learner where the gradients are matched, and the exact
    full-batch real gradients ``g_T(θ) = ∇θL(T; θ)`` there (linear and logistic models).

    - the learner's own path on the real data: Newton's method from ``θ = 0`` (where
      :class:`~distillbt.models.LogisticRegression` starts) to the full-data solution ``θ*``
      of the loss with the learner's penalty ``(α/2)|β|²`` (one step for least squares);
    - ``n_experts`` fresh initialisations (the learner family's default) and the points
      ``θ* + 2⁻ᵏ (θ₀ − θ*)``, ``k = 0…8``, on the way from each to ``θ*``: how a training run
      closes in on the solution, at every scale;
    - ``n_cloud`` points ``θ* + s ξ`` around the solution, ``ξ`` a fresh initialisation and
      ``s = 10^U(−2.5, 0)``: gradients that point back to ``θ*`` from every direction, so a set
      that matches them has its solution where the real data have theirs.

    The real gradient is linear in the rows, so it is computed exactly on all of them, in
    chunks, once: on a weak signal a mini-batch gradient is mostly label noise.
    """

    def __init__(self, spec, Xs, ys, w, rng, *, penalty, n_experts, n_cloud):
        self.spec = spec
        d = Xs.shape[1]
        path = self._solve(spec, Xs, ys, w, penalty)
        star = path[-1]
        thetas = list(path)
        for _ in range(n_experts):
            theta0 = spec.init_params(rng, d)
            thetas += [star + 0.5**k * (theta0 - star) for k in range(_EXPERT_POINTS)]
        if n_cloud:
            scales = 10.0 ** rng.uniform(-_CLOUD_DECADES, 0.0, n_cloud)
            thetas += [star + s * spec.init_params(rng, d) for s in scales]
        self.star = star
        self.thetas = np.array(thetas)
        self.targets = _full_gradients(spec, Xs, ys, w, self.thetas)
        norm2 = (self.targets**2).sum(axis=1)
        self.norm2 = norm2 + _RELATIVE_FLOOR * float(np.median(norm2)) + 1e-300

    @staticmethod
    def _solve(spec, Xs, ys, w, penalty):
        """Newton's iterates from 0 to the penalised full-data solution (penalty on β only)."""
        d = Xs.shape[1]
        theta = np.zeros(d + 1)
        path = [theta.copy()]
        for _ in range(_NEWTON_MAX if spec.head.name == "logistic" else 1):
            f = Xs @ theta[:-1] + theta[-1]
            r = w * spec.head.residual(f, ys)
            g = np.append(Xs.T @ r, r.sum()) + penalty * theta
            c = w * spec.head.curvature(f)
            H = np.empty((d + 1, d + 1))
            H[:d, :d] = (Xs * c[:, None]).T @ Xs
            H[:d, d] = H[d, :d] = Xs.T @ c
            H[d, d] = c.sum()
            H[np.diag_indices(d + 1)] += penalty
            step = np.linalg.lstsq(H, g, rcond=None)[0]
            theta = theta - step
            path.append(theta.copy())
            if np.linalg.norm(step) <= 1e-10 * (1.0 + np.linalg.norm(theta)):
                break
        return path

class _MLPBank:
    """Parameters of the one-hidden-layer network where its gradients are matched, and the
    exact full-batch real gradients there: the linear bank's design for the MLP.

    - the network's own training path on the real data: ``n_experts`` fresh initialisations
      (the evaluation's: PyTorch's default), each trained by full-batch Adam (step ``lr``,
      ``steps`` steps, weight decay ``alphas[k mod len]``, the MLP learner's recipe) on the
      real rows (a weighted subsample of at most ``rows`` of them, drawn once, when there
      are more: the path only places the ``θ``); ``θ`` is kept at steps 0, 1, 2, 4, … (a
      geometric grid, every scale of the run) and at the end;
    - ``n_cloud`` points ``θ_end + s ξ`` around the ends of the paths (``ξ`` a fresh
      initialisation, ``s = 10^U(−2.5, 0)``), gradients that point back to where training ends.

    The real gradients ``∇θL(T; θ)`` (no penalty: it is the same on both sides of the match
    because the weights of either set sum to 1) are computed once on **all** rows.

    The network standardises its inputs with the training set's own moments (and for
    regression its targets), so a synthetic set is seen through *its* mean and standard
    deviation. The bank therefore matches gradients of the standardised synthetic set: the
    free points ``P`` enter as ``Z = (P − μ_P)/σ_P`` (column-wise, weighted), the network sees
    exactly what it was matched on, and the distilled set has the real data's moments.
    """

    def __init__(self, spec, Xs, ys, w, rng, *, n_experts, n_cloud, steps, lr, alphas, rows,
                 standardise_labels):
        self.spec, self.standardise_labels = spec, standardise_labels
        self.steps, self.lr, self.alphas = steps, lr, alphas
        self._real = (Xs, ys, w)
        n, d = Xs.shape
        if n > rows:
            cdf = np.cumsum(w)
            pick = np.unique(np.searchsorted(cdf / cdf[-1], rng.random(rows), side="right"))
            Xp, yp = Xs[pick], ys[pick]
            wp = np.full(len(pick), 1.0 / len(pick))
        else:
            Xp, yp, wp = Xs, ys, w
        thetas, ends = [], []
        for k in range(n_experts):
            path = self._path(Xp, yp, wp, spec.init_params(rng, d), alphas[k % len(alphas)])
            thetas += path
            ends.append(path[-1])
        if n_cloud:
            scales = 10.0 ** rng.uniform(-_CLOUD_DECADES, 0.0, n_cloud)
            thetas += [ends[j % len(ends)] + s * spec.init_params(rng, d) for j, s in enumerate(scales)]
        self.ends = np.array(ends)
        self.thetas = np.empty((0, spec.n_params(d)))
        self.targets = np.empty_like(self.thetas)
        self.extend(thetas)

    def _path(self, X, y, w, theta, alpha):
        """Full-batch Adam from ``theta`` with weight decay ``alpha`` (the MLP learner's
        recipe): ``θ`` at steps 0, 1, 2, 4, … (every scale of the run) and at the end."""
        spec, steps = self.spec, self.steps
        keep = sorted({0, steps} | {2**k for k in range(int(math.log2(steps)) + 1)})
        penalty = alpha * spec.penalty_mask(X.shape[1])
        theta, opt, kept = theta.copy(), Adam([theta]), []
        for step in range(steps + 1):
            if step in keep:
                kept.append(theta.copy())
            if step == steps:
                break
            grad = spec.loss_and_grad(theta, X, y, w)[1] + penalty * theta
            opt.step([theta], [grad], [self.lr])
        return kept

    def extend(self, thetas):
        """Add parameters to the bank with their exact real gradients (on all rows)."""
        Xs, ys, w = self._real
        thetas = np.asarray(thetas, dtype="float64").reshape(-1, self.thetas.shape[1])
        targets = np.zeros_like(thetas)
        for start in range(0, len(Xs), _CHUNK):
            part = slice(start, start + _CHUNK)
            for i, theta in enumerate(thetas):
                targets[i] += self.spec.loss_and_grad(theta, Xs[part], ys[part], w[part])[1]
        self.thetas = np.vstack([self.thetas, thetas])
        self.targets = np.vstack([self.targets, targets])
        norm2 = (self.targets**2).sum(axis=1)
        self.norm2 = norm2 + _RELATIVE_FLOOR * float(np.median(norm2)) + 1e-300

    def learner_paths(self, P, y_syn, w_syn, rng, runs):
        """``θ`` along the learner's own training runs on the synthetic set as the network
        sees it (standardised), ``runs`` fresh initialisations, decays cycled: where training
        on ``S`` actually goes, which the real paths alone do not cover."""
        Z, y_in = self.standardised(P, y_syn, w_syn)
        d = Z.shape[1]
        thetas = []
        for k in range(runs):
            thetas += self._path(Z, y_in, w_syn, self.spec.init_params(rng, d), self.alphas[k % len(self.alphas)])[1:]
        return thetas

    @staticmethod
    def _standardise(P, w):
        mean = w @ P
        C = P - mean
        std = np.sqrt(w @ C**2)
        std = np.where(std > 1e-12, std, 1.0)
        return C / std, std

    @staticmethod
    def _standardise_vjp(G, Z, std, w):
        """∂/∂P of Σ G·Z for ``Z = (P − Σwᵢpᵢ)/σ``: ``(G − w ΣG − w Z Σ(G Z)) / σ`` per column."""
        wcol = w if G.ndim == 1 else w[:, None]
        return (G - wcol * G.sum(axis=0) - wcol * Z * (G * Z).sum(axis=0)) / std

    def standardised(self, P, y, w):
        """The set the network sees: standardised points (and regression targets)."""
        Z = self._standardise(P, w)[0]
        return Z, (self._standardise(y, w)[0] if self.standardise_labels else y)

    def objective(self, P, labels, w_syn, *, soft, distance):
        """Mean distance over the bank and its gradients with respect to ``P`` and the labels
        (their logits when ``soft``); as :func:`_bank_objective`, for the MLP."""
        spec, K = self.spec, len(self.thetas)
        Z, std = self._standardise(P, w_syn)
        y_syn = expit(labels) if soft else labels
        if self.standardise_labels:
            y_in, y_std = self._standardise(y_syn, w_syn)
        else:
            y_in = y_syn
        loss, dZ, dy = 0.0, np.zeros_like(Z), np.zeros_like(y_in)
        for theta, target, norm2 in zip(self.thetas, self.targets, self.norm2):
            g = spec.loss_and_grad(theta, Z, y_in, w_syn)[1]
            if distance == "relative":
                diff = g - target
                loss += float(diff @ diff) / norm2 / K
                v = 2.0 * diff / norm2 / K
            else:
                na, nb = np.linalg.norm(target), np.linalg.norm(g)
                den = na * nb + _EPS
                dot = float(target @ g)
                loss += (1.0 - dot / den) / K
                v = -(target / den - dot * na / (max(nb, _EPS) * den**2) * g) / K
            gx, gy = spec.data_vjp(theta, Z, y_in, w_syn, v)
            dZ += gx
            dy += gy
        dP = self._standardise_vjp(dZ, Z, std, w_syn)
        if self.standardise_labels:
            dy = self._standardise_vjp(dy, y_in, y_std, w_syn)
        if soft:
            dy = dy * y_syn * (1.0 - y_syn)
        return loss, dP, dy


def _full_gradients(spec, Xs, ys, w, thetas):
    """``∇θL(T; θ)`` of a linear/logistic model at every row of ``thetas``, on all the data."""
    grads = np.zeros_like(thetas)
    B, c = thetas[:, :-1].T, thetas[:, -1]
    for start in range(0, len(Xs), _CHUNK):
        X = Xs[start : start + _CHUNK]
        D = w[start : start + _CHUNK, None] * spec.head.residual(X @ B + c, ys[start : start + _CHUNK, None])
        grads[:, :-1] += D.T @ X
        grads[:, -1] += D.sum(axis=0)
    return grads


def _bank_objective(bank, X_syn, labels, w_syn, *, soft, distance):
    """Mean matching distance over the bank and its gradients with respect to the synthetic
    points and labels (label logits when ``soft``), vectorised over all ``θ`` at once.

    ``relative``: ``|g_S − g_T|² / |g_T|²`` (direction *and* size: sets distilled per regime
    add up to the history, and the learner's penalty weighs the same on both);
    ``cosine``: ``1 − cos(g_S, g_T)`` as in DC. Returns ``(distance, ∂/∂X_syn, ∂/∂labels)``.
    """
    head = bank.spec.head
    thetas, targets = bank.thetas, bank.targets
    K = len(thetas)
    y_syn = expit(labels) if soft else labels
    B, c = thetas[:, :-1].T, thetas[:, -1]
    F = X_syn @ B + c  # (M, K)
    D = w_syn[:, None] * head.residual(F, y_syn[:, None])
    g_syn = np.column_stack([D.T @ X_syn, D.sum(axis=0)])  # (K, d + 1)
    if distance == "relative":
        diff = g_syn - targets
        loss = float(((diff**2).sum(axis=1) / bank.norm2).mean())
        V = 2.0 * diff / bank.norm2[:, None] / K
    else:
        na, nb = np.linalg.norm(targets, axis=1), np.linalg.norm(g_syn, axis=1)
        dot = (targets * g_syn).sum(axis=1)
        den = na * nb + _EPS
        loss = float(np.mean(1.0 - dot / den))
        V = -(targets / den[:, None] - (dot * na / (np.maximum(nb, _EPS) * den**2))[:, None] * g_syn) / K
    # v·g_S summed over θ, differentiated as in LinearSpec.data_vjp, for all θ side by side
    U = X_syn @ V[:, :-1].T + V[:, -1]  # (M, K)
    dX = (w_syn[:, None] * head.curvature(F) * U) @ B.T + D @ V[:, :-1]
    dy = -w_syn * U.sum(axis=1)
    if soft:
        dy = dy * y_syn * (1.0 - y_syn)
    return loss, dX, dy


def _fit_on_bank(bank, X_syn, labels, w_syn, *, soft, learn_labels, distance, max_iter, tol, patience):
    """Minimise the bank distance over the synthetic set with L-BFGS (the objective is
    deterministic: exact real gradients, a fixed bank). Stops after ``max_iter`` iterations,
    when L-BFGS converges, or when the distance has not improved by a fraction ``tol`` for
    ``patience`` iterations. Returns ``(X_syn, labels, history, converged)``."""
    M, d = X_syn.shape
    fixed_labels = labels.copy()

    def unpack(p):
        return p[: M * d].reshape(M, d), (p[M * d :] if learn_labels else fixed_labels)

    evaluate = getattr(bank, "objective", None) or (lambda *a, **k: _bank_objective(bank, *a, **k))

    def objective(p):
        X, lab = unpack(p)
        loss, dX, dy = evaluate(X, lab, w_syn, soft=soft, distance=distance)
        return loss, (np.concatenate([dX.ravel(), dy]) if learn_labels else dX.ravel())

    history, state = [], {"best": math.inf, "stale": 0, "plateau": False}

    def callback(intermediate_result):
        loss = float(intermediate_result.fun)
        history.append(loss)
        if loss < state["best"] * (1.0 - tol) or not math.isfinite(state["best"]):
            state["best"], state["stale"] = loss, 0
        else:
            state["stale"] += 1
            if state["stale"] >= patience:
                state["plateau"] = True
                raise StopIteration

    start = np.concatenate([X_syn.ravel(), labels]) if learn_labels else X_syn.ravel()
    result = minimize(objective, start, jac=True, method="L-BFGS-B", callback=callback,
                      options={"maxiter": max_iter, "gtol": 1e-12, "ftol": 1e-12})
    X_out, labels_out = unpack(result.x)
    converged = state["plateau"] or (bool(result.success) and len(history) < max_iter)
    return X_out.copy(), np.array(labels_out, dtype=float), history, converged


class RealGradient:
    """Mini-batch estimates of the real gradient ``∇θL(T; θ)``, rows drawn ∝ the weights.

    For linear and logistic models the estimate uses a control variate. Their gradient is
    ``E[J (h(f) − y)]`` with ``J = [x, 1]`` independent of ``θ``; with ``h(f) ≈ a + b f`` (the
    head's Taylor expansion at 0),

        ``E[J (h(f) − y)] = b M θ + a E[J] − E[J y] + E[J (h(f) − a − b f)]``,

    where ``M = E[J Jᵀ]``, ``E[J]`` and ``E[J y]`` are computed once, exactly, from all the
    data, and only the last term (zero for the squared loss: the gradient is exact) comes from
    the mini-batch. On a weak signal the plain mini-batch gradient is dominated by the label
    noise of the batch (its Bernoulli labels), which this term no longer carries: the
    matching target becomes nearly noise-free for the same cost. The MLP's ``J`` depends on
    ``θ``, so it gets the plain mini-batch estimate.
    """

    def __init__(self, spec, Xs, ys, w, batch, rng):
        self.spec, self.Xs, self.ys, self.rng = spec, Xs, ys, rng
        self.cdf = np.cumsum(w)
        self.cdf /= self.cdf[-1]
        self.w_batch = np.full(batch, 1.0 / batch)
        self.linear = isinstance(spec, LinearSpec)
        if self.linear:
            J = np.column_stack([Xs, np.ones(len(Xs))])
            self.moments = (J * w[:, None]).T @ J
            self.label_moment = J.T @ (w * ys)
            # the squared loss's h(f) = f is its own expansion: nothing left to sample
            self.exact = spec.head.name == "squared"

    def _rows(self):
        return np.searchsorted(self.cdf, self.rng.random(len(self.w_batch)), side="right")

    def __call__(self, theta):
        if not self.linear:
            rows = self._rows()
            return self.spec.loss_and_grad(theta, self.Xs[rows], self.ys[rows], self.w_batch)[1]
        a, b = self.spec.head.taylor
        # M[:, -1] = E[J] because the last entry of J is 1
        grad = b * (self.moments @ theta) + a * self.moments[:, -1] - self.label_moment
        if not self.exact:
            rows = self._rows()
            X = self.Xs[rows]
            f = X @ theta[:-1] + theta[-1]
            rest = self.w_batch * (self.spec.head.output(f) - a - b * f)
            grad[:-1] += X.T @ rest
            grad[-1] += rest.sum()
        return grad


class _Panel:
    """The matching distance on a fixed panel of parameter draws (fresh initialisations) and
    real gradients computed once on large batches: what the convergence check watches."""

    def __init__(self, spec, Xs, ys, w, batch, rng):
        d = Xs.shape[1]
        real_gradient = RealGradient(spec, Xs, ys, w, batch, rng)
        self.spec, self.layers = spec, spec.layers(d)
        self.thetas = [spec.init_params(rng, d) for _ in range(_PANEL_SIZE)]
        self.targets = [real_gradient(theta) for theta in self.thetas]

    def distance(self, X_syn, y_syn, w_syn):
        return float(
            np.mean(
                [
                    _cosine_distance(g_real, self.spec.loss_and_grad(theta, X_syn, y_syn, w_syn)[1], self.layers)[0]
                    for theta, g_real in zip(self.thetas, self.targets)
                ]
            )
        )


def _matching_objective(spec, theta, g_real, X_syn, labels, w_syn, *, soft_labels):
    """The matching distance at ``θ`` and its gradients with respect to the synthetic set.

    ``labels`` are the targets, or their logits when ``soft_labels``. Returns
    ``(distance, ∂/∂X_syn, ∂/∂labels, g_syn)``.
    """
    y_syn = expit(labels) if soft_labels else labels
    _, g_syn = spec.loss_and_grad(theta, X_syn, y_syn, w_syn)
    dist, v = _cosine_distance(g_real, g_syn, spec.layers(X_syn.shape[1]))
    dX, dy = spec.data_vjp(theta, X_syn, y_syn, w_syn, v)
    if soft_labels:
        dy = dy * y_syn * (1.0 - y_syn)
    return dist, dX, dy, g_syn


def _cosine_distance(g_real, g_syn, layers):
    """Mean over rows of ``1 − cos(g_real, g_syn)`` and its gradient with respect to ``g_syn``.

    ``layers`` are ``(start, stop, rows)`` blocks of the parameter vector, each reshaped to
    ``rows`` rows (one per output unit).
    """
    total, n_rows = 0.0, 0
    grad = np.empty_like(g_syn)
    for start, stop, rows in layers:
        a = g_real[start:stop].reshape(rows, -1)
        b = g_syn[start:stop].reshape(rows, -1)
        na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        dot = (a * b).sum(axis=1)
        den = na * nb + _EPS  # keeps a zero gradient (e.g. at an optimum) from dividing by 0
        total += rows - float((dot / den).sum())
        # ∂cos/∂b = a/den − dot·|a|·b / (|b|·den²)
        dcos = a / den[:, None] - (dot * na / (np.maximum(nb, _EPS) * den**2))[:, None] * b
        grad[start:stop] = -dcos.ravel()
        n_rows += rows
    return total / n_rows, grad / n_rows


def _initial_indices(Xs, ys, size, w, rng, *, method, classification):
    """Rows of the real data that seed the synthetic set: a k-medoids coreset (on ``(x, y)``)
    or a random subset (∝ ``w``), taken within each class for classification, as DC seeds
    each class with real samples of that class."""
    if not classification:
        return _seed_rows(Xs, ys, w, size, rng, method)
    groups = [np.flatnonzero(ys == c) for c in (0.0, 1.0)]
    counts = _allocate(size, np.array([w[g].sum() for g in groups]), np.array([np.count_nonzero(w[g]) for g in groups]))
    return np.concatenate(
        [g[_seed_rows(Xs[g], ys[g], w[g], int(k), rng, method)] for g, k in zip(groups, counts) if k]
    )


def _seed_rows(X, y, w, size, rng, method):
    # Kept cheap (at most 2,000 rows searched, 5 rounds): the points only have to start
    # spread over the data, gradient matching moves them afterwards.
    if method == "kmedoids":
        selector = KMedoids(size=size, max_iter=5, subsample=max(size, 2000), random_state=rng)
    else:
        selector = RandomSubset(size=size, random_state=rng)
    return selector.fit(X, y, w).indices_


def _allocate(size, shares, caps):
    """Split ``size`` points between groups ∝ ``shares`` (largest remainder), at most ``caps``
    each, at least one for every group with a positive share when there is room."""
    quota = size * shares / shares.sum()
    counts = np.minimum(np.floor(quota).astype(int), caps)
    if size >= (shares > 0).sum():
        counts = np.maximum(counts, (shares > 0).astype(int))
    while counts.sum() > size:
        counts[np.argmax(counts)] -= 1
    while counts.sum() < size:
        counts[np.argmax(np.where(counts < caps, quota - counts, -np.inf))] += 1
    return counts


def _moments(values, w):
    """Weighted mean and standard deviation (1 where a column is constant: a usable divisor)."""
    mean = w @ values
    std = np.sqrt(w @ (values - mean) ** 2)
    return mean, np.where(std > 1e-12, std, 1.0)
