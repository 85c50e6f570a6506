"""The settings a campaign contest adds (issue 15): challenge mode, review after the end, certificates."""

from __future__ import annotations

from typing import Any

from contest.validation import Fields

__all__ = ["campaign_fields"]


def campaign_fields(f: Fields, merged: dict[str, Any], config: dict[str, Any],
                     existing: dict[str, Any] | None) -> None:
    """mode, max_questions, review_after_end and certificate (issue 15)."""
    mode = f.choice("mode", ("paper", "challenge"), default="paper")
    if existing is not None and existing.get("status", "draft") != "draft" and mode != existing.get("mode", "paper"):
        # attempts already started carry their mode in Redis; the answer script is called per mode
        f.fail("mode", "cannot be changed once the contest is published", "not_changeable")
    drawn = sum(r["count"] for r in config["paper"]["draw"])
    max_q = f.integer("max_questions", required=False, minimum=1, maximum=200, default=None)
    if max_q is not None and drawn and max_q > drawn:
        f.fail("max_questions", f"at most the {drawn} questions the draw rules give", "too_large", max=drawn)
    config["mode"] = mode
    config["max_questions"] = (max_q or drawn) if mode == "challenge" else max_q
    config["review_after_end"] = f.boolean("review_after_end", default=True)
    cert = merged.get("certificate")
    if cert is None or cert is False:
        config["certificate"] = None
    elif not isinstance(cert, dict):
        f.fail("certificate", "must be null or an object {min_score, title}", "not_an_object")
        config["certificate"] = None
    else:
        cf = Fields(cert, prefix="certificate.")
        title = cf.text("title", required=False, max_len=60, default="荣誉证书") or "荣誉证书"
        config["certificate"] = {"min_score": cf.integer("min_score", minimum=0, maximum=1_000_000), "title": title}
        f.errors.update(cf.errors)
