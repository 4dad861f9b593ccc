"""The workflow engine: pure Python (no Django, Celery or graphene; an import-linter contract keeps it so).

- `net`: the Petri net as frozen dataclasses;
- `definition`: definitions in our shape and the original's -> `Net`, and back (export);
- `validation`: structural problems, one message each;
- `analysis`: reachability graph, deadlocks, dead transitions, unbounded places, soundness;
- `firing`: enabling and firing on markings, and the token-level plan of a firing.
"""

from .analysis import Analysis, Finding, analyse
from .definition import export_definition, parse_definition
from .errors import DefinitionInvalid, TransitionNotEnabled
from .firing import FiringPlan, TokenView, deep_merge, enabled, fire, plan, select_tokens
from .net import PLACE_KINDS, Arc, Net, Place, Transition
from .validation import structural_problems

__all__ = ["PLACE_KINDS", "Analysis", "Arc", "DefinitionInvalid", "Finding", "FiringPlan", "Net", "Place",
           "TokenView", "Transition", "TransitionNotEnabled", "analyse", "deep_merge", "enabled", "export_definition",
           "fire", "parse_definition", "plan", "select_tokens", "structural_problems"]
