"""The merchant's rules: a governed rulebook evaluated with a decision trace."""

from shelfwise.rules.masks import CatalogMasks
from shelfwise.rules.model import RULE, RULES, Rule, Scope, Window, parse_rule, rule_body
from shelfwise.rules.predicate import Predicate, matches
from shelfwise.rules.rulebook import Rulebook
from shelfwise.rules.trace import ArrangeResult, Decision, SafetyResult

__all__ = [
    "RULE",
    "RULES",
    "ArrangeResult",
    "CatalogMasks",
    "Decision",
    "Predicate",
    "Rule",
    "Rulebook",
    "SafetyResult",
    "Scope",
    "Window",
    "matches",
    "parse_rule",
    "rule_body",
]
