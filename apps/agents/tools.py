"""An agent's tools are the tenant's functions: their OpenAI tool definitions come from the functions app, and
a model's tool call runs as a function execution (recorded like any other run)."""

from __future__ import annotations

from apps.core.errors import ApiError, InvalidRequest

try:  # TEMPORARY until h-functions is merged
    from apps.functions import selectors as function_selectors
    from apps.functions import services as function_services
except ImportError:  # pragma: no cover
    function_selectors = function_services = None


def _split(specs: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """OpenAI tool definitions, and {tool name: function id}."""
    tools, names = [], {}
    for spec in specs:
        tools.append({"type": "function", "function": spec["function"]})
        names[spec["function"]["name"]] = str(spec.get("function_id"))
    return tools, names


def check(tenant, function_ids: list) -> list[str]:
    """The ids as stored; a missing or foreign function is an error naming it."""
    ids = [str(i) for i in function_ids]
    if ids:
        if function_selectors is None:
            raise InvalidRequest("Functions are not available.", code="functions_unavailable")
        function_selectors.tool_specs(tenant, ids)
    return ids


def specs_for(tenant, function_ids: list) -> tuple[list[dict], dict[str, str]]:
    if not function_ids:
        return [], {}
    return _split(function_selectors.tool_specs(tenant, [str(i) for i in function_ids]))


def call(tenant, names: dict[str, str], name: str, arguments: dict, *, context: dict) -> dict:
    """Run the named tool as a function; {"result"} or {"error"} (fed back to the model either way)."""
    function_id = names.get(name)
    if function_id is None:
        return {"error": f"No tool named {name!r}.", "status": "failed"}
    try:
        run = function_services.function_run_now(tenant, function_id=function_id, input=arguments, trigger="agent",
                                                 context=context)
    except ApiError as error:
        return {"error": error.message, "status": "failed"}
    status = getattr(run, "status", "")
    outcome = {"function_execution_id": str(run.id), "status": status}
    if status == "completed":
        outcome["result"] = getattr(run, "output", None)
    else:
        outcome["error"] = getattr(run, "error", "") or f"The function ended {status}."
    return outcome
