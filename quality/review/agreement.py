"""How annotators agree: Cohen's kappa for each pair on the items both judged, Fleiss' kappa overall,
each annotator's agreement with the LLM judge, and the disputed items. Votes are keep (an edit keeps),
swap and reject_both; a skip is not a vote."""
from __future__ import annotations

from collections import Counter, defaultdict
from itertools import combinations

from quality.review.store import VOTES, Decision


def votes_by_item(decisions: list[Decision]) -> dict[str, dict[str, str]]:
    votes: dict[str, dict[str, str]] = defaultdict(dict)
    for d in decisions:
        if d.decision in VOTES:
            votes[d.item_id][d.annotator] = VOTES[d.decision]
    return dict(votes)


def majority(item_votes: dict[str, str]) -> str | None:
    """The vote most annotators gave; None on a tie (or no vote)."""
    ranked = Counter(item_votes.values()).most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    if not a:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / len(a)
    pa, pb = Counter(a), Counter(b)
    expected = sum(pa[k] * pb[k] for k in set(a) | set(b)) / len(a) ** 2
    return None if expected == 1 else round((observed - expected) / (1 - expected), 4)


def pairwise_kappa(votes: dict[str, dict[str, str]]) -> list[dict]:
    annotators = sorted({name for item in votes.values() for name in item})
    pairs = []
    for a, b in combinations(annotators, 2):
        shared = [item for item in votes.values() if a in item and b in item]
        if shared:
            pairs.append({"annotators": [a, b], "items": len(shared),
                          "cohen_kappa": cohen_kappa([i[a] for i in shared], [i[b] for i in shared])})
    return pairs


def fleiss_kappa(votes: dict[str, dict[str, str]]) -> float | None:
    """Fleiss' kappa over the items two or more annotators judged (raters per item may differ)."""
    rated = [Counter(item.values()) for item in votes.values() if len(item) >= 2]
    if not rated:
        return None
    agreement = [(sum(n * n for n in counts.values()) - sum(counts.values())) /
                 (sum(counts.values()) * (sum(counts.values()) - 1)) for counts in rated]
    totals = Counter()
    for counts in rated:
        totals.update(counts)
    expected = sum((n / sum(totals.values())) ** 2 for n in totals.values())
    observed = sum(agreement) / len(agreement)
    return None if expected == 1 else round((observed - expected) / (1 - expected), 4)


def judge_agreement(decisions: list[Decision]) -> dict[str, dict]:
    """Per annotator: how often they kept the judge's chosen answer (keep, edit) rather than swapping it."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for d in decisions:
        vote = VOTES.get(d.decision)
        if vote in ("keep", "swap"):
            counts[d.annotator]["agree" if vote == "keep" else "disagree"] += 1
    return {name: {"agree": c["agree"], "disagree": c["disagree"],
                   "share": round(c["agree"] / (c["agree"] + c["disagree"]), 4)} for name, c in sorted(counts.items())}


def disputed(votes: dict[str, dict[str, str]]) -> list[dict]:
    return [{"item": item, "votes": dict(sorted(v.items()))} for item, v in sorted(votes.items())
            if len(set(v.values())) > 1]


def agreement_report(decisions: list[Decision]) -> dict:
    votes = votes_by_item(decisions)
    return {"pairwise": pairwise_kappa(votes), "fleiss_kappa": fleiss_kappa(votes),
            "judge_agreement": judge_agreement(decisions), "disputed": disputed(votes)}
