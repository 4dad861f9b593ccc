"""Place agents and tokens: the template variables a token offers, the input mapping, writing the output back
into the token (output mapping), the automatic transition, and a binding's schedule."""

from __future__ import annotations

import logging

from apps.core.errors import ApiError, InvalidRequest
from apps.workflows import services as workflow_services
from apps.workflows.engine import deep_merge
from apps.workflows.models import Token, TokenHistory

from . import dispatch, templates, tools
from .models import AgentExecution, ExecutionStatus

log = logging.getLogger(__name__)
SOURCES = ("output", "text", "json")  # plus output.<path> into the JSON output


def target_problems(target) -> str | None:
    if not isinstance(target, str) or not target.startswith(("data.", "metadata.")) or target.endswith(".") \
            or any(not part for part in target.split(".")):
        return f"{target!r}: a target is data.<path> or metadata.<path>."
    return None


def source_problems(source) -> str | None:
    if not isinstance(source, str) or not (source in SOURCES or source.startswith("output.")):
        return f"{source!r}: a source is output, text, json or output.<path>."
    return None


def input_problems(path) -> str | None:
    if not isinstance(path, str) or not (path in ("id", "place") or path.startswith(("data.", "metadata."))
                                         or path in ("data", "metadata")):
        return f"{path!r}: an input is data.<path>, metadata.<path>, id or place."
    return None


def function_step_problems(tenant, steps) -> list[str]:
    if not isinstance(steps, list):
        return ["Must be a list of {function, input, output}."]
    problems = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or set(step) - {"function", "input", "output"} or "function" not in step:
            problems.append(f"[{i}]: an object {{function, input, output}}.")
            continue
        try:
            tools.check(tenant, [step["function"]])
        except ApiError as error:
            problems.append(f"[{i}]: {error.message}")
        inputs = step.get("input") or {}
        if not isinstance(inputs, dict):
            problems.append(f"[{i}].input: an object {{field: path}}.")
        else:
            problems += [f"[{i}].input: {p}" for p in map(input_problems, inputs.values()) if p]
        if step.get("output") is not None and (problem := target_problems(step["output"])):
            problems.append(f"[{i}].output: {problem}")
    return problems


def run_function_steps(ex: AgentExecution, event) -> list[dict]:
    """The binding's function steps, in order, over the token as the output left it; each output is merged into
    the token. A failed step raises (the run fails)."""
    done = []
    for step in ex.place_agent.functions or []:
        token = Token.objects.get(pk=ex.token_id)
        variables = token_variables(token, workflow=ex.workflow)
        arguments = {}
        for name, path in (step.get("input") or {}).items():
            value = templates.lookup(variables, path)
            if templates.missing(value):
                raise InvalidRequest(f"Function step {step['function']!r}: the token has no {path!r}.",
                                     code="function_input_missing")
            arguments[name] = value
        _, names = tools.specs_for(ex.tenant, [step["function"]])
        name = next(iter(names), str(step["function"]))
        event("agent_tool_call", name=name, arguments=arguments, step="after")
        result = tools.call(ex.tenant, names, name, arguments, context={
            "agent_execution_id": str(ex.id), "workflow": ex.workflow, "instance_id": str(ex.instance_id),
            "token_id": str(ex.token_id)})
        event("agent_tool_result", name=name, step="after", **result)
        done.append({"name": name, "arguments": arguments, "step": "after", **result})
        if "result" not in result:
            raise ApiError(f"Function step {name!r} failed: {result.get('error')}", code="function_step_failed",
                           status=502)
        if step.get("output"):
            data, metadata = output_patch({step["output"]: "json"}, text="", output_json=result["result"])
            workflow_services.token_update_data(ex.tenant, token_id=ex.token_id, data=data, metadata=metadata,
                                                actor=f"agent:{ex.agent.name}"[:200])
    return done


def token_variables(token: Token, *, workflow: str) -> dict:
    """What a template sees for a token: its data's top-level keys (`{topic}`), the original's names, and
    `data` / `metadata` for dotted paths. Plain JSON values only."""
    data, metadata = token.data or {}, token.metadata or {}
    return {**data, "data": data, "metadata": metadata, "token_metadata": metadata, "input_data": data,
            "id": str(token.id), "token_id": str(token.id), "place": token.place, "current_place": token.place,
            "workflow_id": workflow, "instance_id": str(token.instance_id),
            "history_count": TokenHistory.objects.filter(token_id=token.id).count()}


def variables_for(ex: AgentExecution) -> dict:
    """The execution's template variables: its input outside workflows; for a token, the token's variables
    with the binding's input mapping applied (stored as the execution's input)."""
    if not ex.token_id:
        data = ex.input if isinstance(ex.input, dict) else {"input": ex.input}
        return {**data, "input": data, "input_data": data, "data": data.get("data", data)}
    token = Token.objects.filter(pk=ex.token_id).first()
    if token is None:
        raise InvalidRequest("The token this agent was started for no longer exists.", code="token_missing")
    variables = token_variables(token, workflow=ex.workflow)
    mapped = {}
    for name, path in ((ex.place_agent.input_mapping if ex.place_agent else None) or {}).items():
        value = templates.lookup(variables, path)
        if templates.missing(value):
            raise templates.TemplateVariableMissing(
                f"Input mapping {name!r}: the token has no {path!r}.", param=f"input_mapping.{name}")
        mapped[name] = value
    variables.update(mapped)
    AgentExecution.objects.filter(pk=ex.pk).update(input={"data": token.data, "metadata": token.metadata,
                                                          "mapped": mapped})
    return variables


def _nested(path: list[str], value) -> dict:
    for part in reversed(path):
        value = {part: value}
    return value


def output_patch(mapping: dict, *, text: str, output_json) -> tuple[dict, dict]:
    output = output_json if output_json is not None else text
    data, metadata = {}, {}
    for target, source in mapping.items():
        if source == "text":
            value = text
        elif source == "json":
            value = output_json
        elif source == "output":
            value = output
        else:
            value = templates.lookup(output_json if isinstance(output_json, dict | list) else {}, source[7:])
            if templates.missing(value):
                raise InvalidRequest(f"Output mapping {target!r}: the output has no {source[7:]!r}.",
                                     code="output_mapping_missing")
        root, *rest = target.split(".")
        patch = _nested(rest, value)
        bucket = data if root == "data" else metadata
        bucket.update(deep_merge(bucket, patch))
    return data, metadata


def default_output_mapping(agent_name: str) -> dict:
    slug = "".join(ch if ch.isalnum() else "_" for ch in agent_name.lower()).strip("_") or "agent"
    return {f"data.{slug}_output": "output"}


def write_output(ex: AgentExecution, *, text: str, output_json) -> dict:
    """Merge the output into the token (history actor `agent:<name>`). Returns the targets written."""
    mapping = ex.place_agent.output_mapping or default_output_mapping(ex.agent.name)
    data, metadata = output_patch(mapping, text=text, output_json=output_json)
    if data or metadata:
        workflow_services.token_update_data(ex.tenant, token_id=ex.token_id, data=data, metadata=metadata,
                                            actor=f"agent:{ex.agent.name}"[:200])
    return mapping


def after_success(ex: AgentExecution) -> None:
    """The binding's automatic transition (a refusal is recorded, never raised), then its schedule."""
    binding = ex.place_agent
    if binding is None:
        return
    if binding.auto_transition:
        outcome = {"transition": binding.auto_transition, "fired": False}
        try:
            workflow_services.transition_fire(ex.tenant, transition_id=binding.auto_transition, token_id=ex.token_id,
                                              actor=f"agent:{ex.agent.name}"[:200])
            outcome["fired"] = True
        except ApiError as error:
            outcome.update(error=error.message[:500], code=error.code)
        AgentExecution.objects.filter(pk=ex.pk).update(transition=outcome)
        if outcome["fired"]:
            return
    _schedule_next(ex)


def _schedule_next(ex: AgentExecution) -> None:
    """A binding with `interval_seconds` runs again on the same token while it stays in the place, up to
    `max_executions` runs per arrival."""
    schedule = ex.place_agent.schedule or {}
    interval = schedule.get("interval_seconds")
    if not interval:
        return
    arrival = ex.trigger_key.split("#")[0]
    done = AgentExecution.objects.filter(place_agent=ex.place_agent, trigger_key__startswith=arrival).count()
    if schedule.get("max_executions") and done >= int(schedule["max_executions"]):
        return
    token = Token.objects.filter(pk=ex.token_id, status="active", place=ex.place_agent.place).first()
    if token is None:
        return
    dispatch.execution_start(ex.tenant, agent=ex.agent, place_agent=ex.place_agent, token=token, workflow=ex.workflow,
                    trigger_key=f"{arrival}#{done + 1}", countdown=float(interval))


__all__ = ["ExecutionStatus", "output_patch", "token_variables", "variables_for", "write_output"]
