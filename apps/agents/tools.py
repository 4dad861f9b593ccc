"""An agent's tools are the tenant's functions: their OpenAI tool definitions come from the functions app, and
a model's tool call runs as a function execution in this task (`function_run_now`, recorded like any run)."""

from __future__ import annotations

from apps.core.errors import ApiError, InvalidRequest
from apps.functions import selectors as function_selectors
from apps.functions import services as function_services

MAX_TOOLS = 64


def check(tenant, function_ids: list) -> list[str]:
    """The ids (or names) as stored; one that is missing, disabled or another tenant's is an error naming it."""
    refs = [str(ref) for ref in function_ids]
    if len(refs) > MAX_TOOLS:
        raise InvalidRequest(f"An agent has at most {MAX_TOOLS} tools.")
    if refs:
        found = function_selectors.tool_names(tenant, refs).values()
        known = {str(f.id) for f in found} | {f.name for f in found}
        missing = [ref for ref in refs if ref not in known]
        if missing:
            raise InvalidRequest(f"No enabled function {', '.join(map(repr, missing))}.")
    return refs


def specs_for(tenant, function_ids: list) -> tuple[list[dict], dict[str, str]]:
    """OpenAI tool definitions, and {tool name: function id}."""
    if not function_ids:
        return [], {}
    named = function_selectors.tool_names(tenant, function_ids)
    return ([function_selectors.tool_spec(name, function) for name, function in named.items()],
            {name: str(function.id) for name, function in named.items()})


def call(tenant, names: dict[str, str], name: str, arguments: dict, *, context: dict) -> dict:
    """Run the named tool as a function: {"result"} or {"error"}, with the function execution's id and status
    (fed back to the model either way)."""
    function_id = names.get(name)
    if function_id is None:
        return {"status": "failed", "error": f"No tool named {name!r}."}
    if not isinstance(arguments, dict):
        arguments = {"input": arguments}
    try:
        run = function_services.function_run_now(tenant, function_id=function_id, input=arguments, trigger="agent",
                                                 context=context)
    except ApiError as error:
        return {"status": "failed", "error": error.message}
    outcome = {"function_execution_id": str(run.id), "status": run.status}
    if run.status == "completed":
        outcome["result"] = run.output
    else:
        outcome["error"] = run.error or f"The function ended {run.status}."
    return outcome
