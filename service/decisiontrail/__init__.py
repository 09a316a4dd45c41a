"""DecisionTrail: a tamper-evident audit trail for the decisions of AI agents."""

__version__ = "0.1.0"
