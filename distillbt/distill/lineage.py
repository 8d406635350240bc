"""Parent and child: what a distilled set has seen, what an update did to it, and the records a
child carries of its parent.

- :func:`last_seen` and :func:`regime_sources`: read from a set's header, the last row it has
  seen (candles after it are *new*) and each regime's source period.
- :class:`UpdateReport`: what an update did and why, with timings.
- :func:`child_meta`: the header of a set made from a parent by an update (source periods,
  split, jobs, reference statistics); :func:`record_update` stamps it with the update's
  :func:`lineage_entry` and the new data range.

``meta["lineage"]`` is a list, oldest first; each update appends one entry: the parent's
:meth:`~distillbt.distill.artifact.DistilledSet.content_fingerprint`, the policy and action,
when, the new candles' range and fingerprint, and the policy's details (window, what was
re-distilled or kept, seed, seconds; a multi-horizon set's entry gives each part's action).
Sets without lineage (distilled directly, or by older versions) load as before.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import pandas as pd

from ..data.candles import Candles
from ..features import FEATURE_DEFAULTS
from .artifact import ArtifactError, DistilledSet, fingerprint_candles

__all__ = ["UpdateReport", "last_seen", "regime_sources", "child_meta", "lineage_entry", "extend_lineage",
           "record_update", "SIZE_KEYS"]

#: Header entries that describe one stored file, not the set: a child does not inherit them.
SIZE_KEYS = ("payload_bytes", "compression_ratio", "format_version")


@dataclass
class UpdateReport:
    """What an update did and why, with timings (JSON-able through :meth:`to_dict`)."""

    policy: str
    action: str  # "none", "redistilled", "fine-tuned", "partial", "reweighted", "checked"
    reason: str
    new_rows: int = 0
    new_range: dict = field(default_factory=dict)
    window: dict = field(default_factory=dict)
    regimes: dict = field(default_factory=dict)
    mix: dict = field(default_factory=dict)
    closeness: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    redistilled: list = field(default_factory=list)
    kept: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def summary_lines(self) -> list[str]:
        lines = [f"policy:      {self.policy} → {self.action}: {self.reason}"]
        if self.new_rows:
            lines.append(f"new rows:    {self.new_rows} ({self.new_range.get('first')} → "
                         f"{self.new_range.get('last')})")
        if self.window:
            lines.append(f"window:      {self.window.get('rows')} rows ({self.window.get('first')} → "
                         f"{self.window.get('last')})")
        if self.mix:
            m = self.mix
            lines.append(f"regime mix:  TV {m['tv']:.3f}, chi-square {m['chi2']:.3f}, block-permutation p "
                         f"{m['p_value']:.4f} (threshold {m['threshold']:.3f} at alpha {m['alpha']}; "
                         f"{m['blocks_old']}+{m['blocks_new']} blocks of {m['block']} rows) → "
                         f"{'CHANGED' if m['changed'] else 'unchanged'}")
            lines.append("             old " + " ".join(f"{k} {v:.3f}" for k, v in m["old_shares"].items()))
            lines.append("             new " + " ".join(f"{k} {v:.3f}" for k, v in m["new_shares"].items()))
            lines.append(f"reference:   {'fingerprint verified' if m.get('reference_verified') else 'not verified'}")
        for name, r in self.regimes.items():
            if "p_value" in r:
                lines.append(f"  {name:<9} {r['status']:<12} stat {r['statistic']:.3f} (worst: {r['feature']}), "
                             f"p {r['p_value']:.4f} vs {r['alpha']:.4f}; rows old {r['rows_old']} new {r['rows_new']}")
            else:
                lines.append(f"  {name:<9} {r['status']:<12} {r.get('why', '')}")
        for key, value in self.closeness.items():
            lines.append(f"closeness:   {key} {value:.4g}" if isinstance(value, float) else f"closeness:   {key} {value}")
        lines.append("time:        " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items()))
        return lines


def last_seen(meta: dict) -> pd.Timestamp:
    """The time of the last row the set has seen (``meta["data_range"]["last"]``; for a set
    straight from ``distill``, the last row of its test period): later rows are new."""
    rng = meta.get("data_range") or {}
    if rng.get("last"):
        return pd.Timestamp(rng["last"])
    split = meta.get("split") or {}
    for part in ("test", "validation", "train"):
        if part in split:
            return pd.Timestamp(split[part]["last"])
    raise ArtifactError("the distilled set's header has no split or data range: cannot tell which candles are new")


def regime_sources(meta: dict) -> dict:
    """Each regime's source period ``{"first", "last"}``: the training period unless updated."""
    sources = dict(meta.get("regime_sources") or {})
    train = (meta.get("split") or {}).get("train")
    for name in meta.get("regimes") or []:
        if name not in sources and train:
            sources[name] = {"first": train["first"], "last": train["last"]}
    return sources


def child_meta(parent: DistilledSet, *, sources: dict, jobs: list, n_source: int, reference=None) -> dict:
    """The parent's header for a child distilled from ``sources`` (regime → ``{"first", "last",
    "rows"}``) by ``jobs``: the training period spans the sources, the parent's validation and
    test periods are dropped, ``reference`` (a :class:`~distillbt.distill.drift.BlockStats`)
    replaces the stored reference statistics."""
    meta = {k: v for k, v in parent.meta.items() if k not in SIZE_KEYS}
    firsts = [pd.Timestamp(s["first"]) for s in sources.values()]
    lasts = [pd.Timestamp(s["last"]) for s in sources.values()]
    split = dict(meta.get("split") or {})
    split["train"] = {"first": min(firsts).isoformat(), "last": max(lasts).isoformat(),
                      "rows": int(sum(s.get("rows", 0) for s in sources.values()))}
    # validation/test periods belonged to the parent's data, not to the update's
    split = {k: v for k, v in split.items() if k in ("train", "fractions")}
    meta.update({"split": split, "regime_sources": sources, "jobs": jobs, "n_source_candles": int(n_source)})
    if reference is not None:
        meta["reference"] = reference.to_json()
    return meta


def lineage_entry(parent: DistilledSet, candles: Candles, data_range: dict, *, policy: str, action: str,
                  **details) -> dict:
    """One ``meta["lineage"]`` entry: the parent's content fingerprint, ``policy``, ``action``,
    the time (UTC), ``data_range`` with the fingerprint of ``candles``, then ``details``."""
    return {"parent": parent.content_fingerprint(), "policy": policy, "action": action,
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "data": {**data_range, "candles_fingerprint": fingerprint_candles(candles.frame)}, **details}


def extend_lineage(parent: DistilledSet, entry: dict) -> list:
    """The parent's lineage with ``entry`` appended (a new list)."""
    return list(parent.meta.get("lineage") or []) + [entry]


def record_update(child: DistilledSet, parent: DistilledSet, candles: Candles, report: UpdateReport, *,
                  last: pd.Timestamp, seed: int, seconds: float) -> None:
    """Stamp ``child``'s header after an update of ``parent`` with ``candles`` whose last new row
    is at ``last``: the lineage entry, the time taken, the fingerprint of the candles up to
    ``last``, the data range and the feature options (as JSON lists)."""
    entry = lineage_entry(
        parent, candles, report.new_range, policy=report.policy, action=report.action,
        window=report.window or None, redistilled=report.redistilled, kept=report.kept,
        reweighted=bool(report.mix.get("changed")) if report.mix else None, seed=seed, seconds=seconds)
    first = (parent.meta.get("data_range") or {}).get("first") or \
        (parent.meta.get("split") or {}).get("train", {}).get("first")
    child.meta.update({
        "lineage": extend_lineage(parent, entry), "seconds": seconds,
        "fingerprint": fingerprint_candles(candles.frame.loc[:last]),
        "data_range": {"first": first, "last": last.isoformat(), "last_candle": last.isoformat()},
        "feature_options": dict(parent.meta.get("feature_options") or FEATURE_DEFAULTS),
    })
    child.meta["feature_options"] = {k: list(v) if isinstance(v, tuple) else v
                                     for k, v in child.meta["feature_options"].items()}
