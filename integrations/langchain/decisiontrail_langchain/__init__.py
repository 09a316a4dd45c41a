"""DecisionTrail for LangChain and LangGraph: one decision per completed run.

from decisiontrail_langchain import DecisionTrailCallbackHandler
agent.invoke(inputs, config={"callbacks": [DecisionTrailCallbackHandler()]})
"""

from __future__ import annotations

from decisiontrail_langchain.handlers import (
    AsyncDecisionTrailCallbackHandler,
    DecisionTrailCallbackHandler,
)
from decisiontrail_langchain.recorder import PersonalData, RunInfo

__all__ = [
    "AsyncDecisionTrailCallbackHandler",
    "DecisionTrailCallbackHandler",
    "PersonalData",
    "RunInfo",
]
