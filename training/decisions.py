"""Registration and promotion decisions: go ahead unless the evidence shows harm.

A real office's evidence is thin for years and a fresher model is the default
choice in a drifting world, so:
- register when the lower bound of (model - random) is above 0, and refuse
  because of the office rule only when the whole interval of (model - office
  rule) lies below -delta; otherwise register and say what the comparison with
  the rule showed ("unproven (insufficient evidence)" when that is the truth);
- promote unless the whole interval of (challenger - champion) lies below
  -delta, or a blocking fairness check says otherwise; with insufficient
  evidence, promote and record it.
Evidence is the off-policy estimate when sufficient, else the labelled view,
marked biased (`training.evidence.deciding`). The simulated truth never enters
here: it is printed beside a decision by the caller.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.mlflow_store import COMPARED_WITH_TAG, FAIRNESS_BLOCKS_TAG, VERSUS_CHAMPION_TAG
from training.offpolicy import Evidence
from training.settings import TrainingSettings

MODEL_VS_RANDOM = "model - random"
MODEL_VS_RULE = "model - office rule"
CHALLENGER_VS_CHAMPION = "challenger - champion"


@dataclass(frozen=True)
class DecisionSettings:
    """How much harm a decision tolerates before it refuses (precision at the operational capacity)."""

    delta: float = TrainingSettings.delta  # declared (and commented) in training.settings
    fairness_tolerance: float = TrainingSettings.fairness_tolerance


@dataclass
class Decision:
    """What was decided, the sentence that decided it, and the evidence behind it."""

    action: str  # "register" or "promote"
    go: bool
    sentence: str
    evidence: list[Evidence] = field(default_factory=list)
    objections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The short block printed first by train, promote and retrain."""
        verb = {"register": ("REGISTERED", "NOT REGISTERED"), "promote": ("PROMOTED", "NOT PROMOTED")}
        head = verb.get(self.action, ("GO", "NO"))[0 if self.go else 1]
        lines = [f"Decision: {head}: {self.sentence}"]
        lines += [f"  - {objection}" for objection in self.objections if objection != self.sentence]
        lines += [f"  evidence: {e.describe()}" for e in self.evidence]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "action": self.action,
                "go": self.go,
                "sentence": self.sentence,
                "objections": self.objections,
                "notes": self.notes,
                "evidence": [e.to_dict() for e in self.evidence],
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Decision:
        data: dict[str, Any] = json.loads(text)
        return cls(
            action=data["action"],
            go=bool(data["go"]),
            sentence=data["sentence"],
            evidence=[Evidence.from_dict(e) for e in data.get("evidence", [])],
            objections=list(data.get("objections", [])),
            notes=list(data.get("notes", [])),
        )


DEFAULT_DECISIONS = DecisionSettings()


def _interval(evidence: Evidence) -> str:
    return f"{evidence.estimate:+.3f} [{evidence.low:+.3f}, {evidence.high:+.3f}]"


def _finite(*values: float) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def registration_decision(
    versus_random: Evidence, versus_rule: Evidence, settings: DecisionSettings = DEFAULT_DECISIONS
) -> Decision:
    """Register unless nothing shows the model beats random, or the evidence shows it below the rule."""
    evidence = [versus_random, versus_rule]
    if not _finite(versus_random.low) or versus_random.low <= 0:
        if _finite(versus_random.estimate):
            sentence = (
                f"the evidence does not show that the model finds more than a random list "
                f"(lower bound of {MODEL_VS_RANDOM} {versus_random.low:+.3f} is not above 0)"
            )
        else:
            sentence = f"no evidence that the model finds more than a random list ({versus_random.note})"
        return Decision("register", False, sentence, evidence, [sentence])
    if _finite(versus_rule.high) and versus_rule.high < -settings.delta:
        sentence = (
            f"the model finds less than the office rule: the whole interval of {MODEL_VS_RULE} "
            f"[{versus_rule.low:+.3f}, {versus_rule.high:+.3f}] lies below -{settings.delta:g}"
        )
        return Decision("register", False, sentence, evidence, [sentence])
    if versus_rule.sufficient and not versus_rule.biased:
        rule = f"comparison with the office rule: {_interval(versus_rule)}"
    else:
        rule = "comparison with the office rule: unproven (insufficient evidence)"
        if _finite(versus_rule.estimate):
            rule += f"; {versus_rule.source} estimate {_interval(versus_rule)}"
    sentence = f"the model finds more than a random list (lower bound {versus_random.low:+.3f} > 0); {rule}"
    return Decision("register", True, sentence, evidence)


def promotion_decision(
    versus_champion: Evidence | None,
    champion_version: str | None,
    blocks: Sequence[str] = (),
    settings: DecisionSettings = DEFAULT_DECISIONS,
) -> Decision:
    """Promote unless the evidence shows the challenger worse than the champion, or a fairness block."""
    if champion_version is None or versus_champion is None:
        return Decision("promote", True, "no champion in service: the challenger becomes the first champion")
    evidence = [versus_champion]
    objections = []
    if _finite(versus_champion.high) and versus_champion.high < -settings.delta:
        objections.append(
            f"the challenger finds less than champion v{champion_version}: the whole interval of "
            f"{CHALLENGER_VS_CHAMPION} [{versus_champion.low:+.3f}, {versus_champion.high:+.3f}] "
            f"lies below -{settings.delta:g}"
        )
    objections += [f"fairness: {block}" for block in blocks]
    if objections:
        return Decision("promote", False, objections[0], evidence, objections)
    if versus_champion.sufficient and not versus_champion.biased:
        sentence = (
            f"the evidence does not show the challenger worse than champion v{champion_version} "
            f"({CHALLENGER_VS_CHAMPION} {versus_champion.estimate:+.3f} "
            f"[{versus_champion.low:+.3f}, {versus_champion.high:+.3f}])"
        )
    else:
        sentence = (
            f"insufficient evidence against champion v{champion_version}; promoted because the rule is "
            "to go ahead unless the evidence shows harm"
        )
    return Decision("promote", True, sentence, evidence)


def promotion_from_tags(
    challenger_tags: Mapping[str, str], champion_version: str, settings: DecisionSettings = DEFAULT_DECISIONS
) -> Decision:
    """The promotion decision for a challenger (given its version tags) against the current champion.

    Valid only on the same hold-out: the challenger must have been evaluated
    against this very champion version at training time. Then it is promoted
    unless the recorded challenger - champion interval lies wholly below -delta
    or a fairness check blocks it (go ahead unless the evidence shows harm).
    """
    compared_with = challenger_tags.get(COMPARED_WITH_TAG)
    if compared_with is None:
        sentence = (
            f"not evaluated against champion v{champion_version} on its hold-out: "
            "retrain with the champion in place"
        )
        return Decision("promote", False, sentence, [], [sentence])
    if compared_with != champion_version:
        sentence = f"evaluated against v{compared_with}, but the champion is now v{champion_version}: retrain"
        return Decision("promote", False, sentence, [], [sentence])
    text = challenger_tags.get(VERSUS_CHAMPION_TAG)
    evidence = Evidence.from_dict(json.loads(text)) if text else None
    blocks = [str(b) for b in json.loads(challenger_tags.get(FAIRNESS_BLOCKS_TAG) or "[]")]
    return promotion_decision(evidence, champion_version, blocks, settings)
