"""Writes: agents (with the original's inline `llm_provider`), place-agent bindings, executions and their
cancellation. Keyword-only, tenant first. Validation errors are Django ValidationErrors keyed by field (the API
renders them as field errors)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import jsonschema
import yaml
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.errors import ApiError, Conflict, NotFound
from apps.functions import selectors as function_selectors
from apps.functions import services as function_services
from apps.providers import services as provider_services
from apps.providers.models import Provider
from apps.providers.route_options import parse_route_options
from apps.rules.engine import RuleError, compile_condition
from apps.rules.selectors import named_rules_for
from apps.workflows import services as workflow_services
from apps.workflows.access import workflow_access_by_id
from apps.workflows.models import TokenStatus
from apps.workflows.netcache import net_for_version

from . import dispatch, mapping, templates, tools, triggers
from .models import FINISHED, RETRY_KINDS, Agent, AgentExecution, ExecutionStatus, PlaceAgent
from .runner import cancel_flag_set, cancel_if_pending
from .selectors import BINDINGS_VERSION_KEY

WAIT_POLL_SECONDS = 0.05
LLM_RANGES = {"temperature": (0, 2), "top_p": (0, 1), "frequency_penalty": (-2, 2), "presence_penalty": (-2, 2)}
LLM_KEYS = (*LLM_RANGES, "max_tokens", "stop")
AGENT_FIELDS = ("name", "description", "model", "routing", "llm", "system_prompt", "user_template",
                "context_instructions", "capabilities", "json_mode", "output_schema", "tools", "max_tool_steps",
                "timeout_seconds", "retry", "enabled")
PLACE_AGENT_FIELDS = ("agent", "workflow", "place", "trigger_conditions", "input_mapping", "output_mapping",
                      "functions", "auto_transition", "schedule", "retry", "enabled")


# ---- agents ------------------------------------------------------------------------------------------------
def _llm_problems(llm) -> list[str]:
    if not isinstance(llm, dict):
        return ["Must be an object."]
    problems = [f"Unknown setting {k!r} (known: {', '.join(LLM_KEYS)})." for k in llm if k not in LLM_KEYS]
    for name, (low, high) in LLM_RANGES.items():
        value = llm.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not low <= value <= high):
            problems.append(f"{name} must be a number from {low} to {high}.")
    tokens = llm.get("max_tokens")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1):
        problems.append("max_tokens must be a positive integer.")
    stop = llm.get("stop")
    if stop is not None and not (isinstance(stop, str) or (isinstance(stop, list) and len(stop) <= 4
                                                           and all(isinstance(s, str) for s in stop))):
        problems.append("stop must be a string or a list of at most 4 strings.")
    return problems


def _retry_problems(retry) -> list[str]:
    if not isinstance(retry, dict):
        return ["Must be an object."]
    problems = [f"Unknown setting {k!r}." for k in retry if k not in ("max_attempts", "backoff_seconds",
                                                                        "retry_on_errors")]
    attempts = retry.get("max_attempts")
    if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int)
                                 or not 1 <= attempts <= 10):
        problems.append("max_attempts must be an integer from 1 to 10.")
    backoff = retry.get("backoff_seconds")
    if backoff is not None and (isinstance(backoff, bool) or not isinstance(backoff, int | float)
                                or not 0 <= backoff <= 3600):
        problems.append("backoff_seconds must be a number from 0 to 3600.")
    kinds = retry.get("retry_on_errors")
    if kinds is not None and (not isinstance(kinds, list) or any(k not in RETRY_KINDS for k in kinds)):
        problems.append(f"retry_on_errors is a list of: {', '.join(RETRY_KINDS)}.")
    return problems


def agent_clean(agent: Agent) -> None:
    """Every problem of the agent at once, by field."""
    errors: dict[str, list[str]] = {}
    try:
        parse_route_options({"model": agent.model or "auto", "circuit_breaker": agent.routing or {}},
                            default_strategy="failover_chain")
    except ApiError as error:
        errors.setdefault("model" if error.param == "model" else "routing", []).append(error.message)
    if problems := _llm_problems(agent.llm):
        errors["llm"] = problems
    if problems := _retry_problems(agent.retry):
        errors["retry"] = problems
    for name in ("system_prompt", "user_template", "context_instructions"):
        try:
            templates.compile_template(getattr(agent, name) or "")
        except ApiError as error:
            errors[name] = [error.message]
    if agent.output_schema is not None:
        try:
            jsonschema.validators.validator_for(agent.output_schema).check_schema(agent.output_schema)
        except (jsonschema.SchemaError, TypeError, AttributeError) as exc:
            errors["output_schema"] = [f"Not a JSON schema: {getattr(exc, 'message', exc)}"]
    if not isinstance(agent.capabilities, list) or not all(isinstance(c, str) for c in agent.capabilities):
        errors["capabilities"] = ["Must be a list of strings."]
    if not isinstance(agent.tools, list):
        errors["tools"] = ["Must be a list of function ids."]
    else:
        try:
            agent.tools = tools.check(agent.tenant, agent.tools)
        except ApiError as error:
            errors["tools"] = [error.message]
    if not agent.timeout_seconds or not 0 < agent.timeout_seconds <= 3600:
        errors["timeout_seconds"] = ["Must be more than 0 and at most 3600 seconds."]
    if errors:
        raise ValidationError(errors)


def _inline_provider(tenant, spec: dict) -> tuple[Provider, str]:
    """The original's `llm_provider {provider_type, model, api_key, base_url}`: the tenant's provider of that
    type and base URL (created when missing), holding the key as an encrypted credential (added unless one
    already holds it). Returns the provider and the model name to route (`<provider slug>/<model>`)."""
    if not isinstance(spec, dict):
        raise ValidationError({"llm_provider": ["Must be an object."]})
    unknown = set(spec) - {"provider_type", "model", "api_key", "base_url"}
    if unknown:
        raise ValidationError({"llm_provider": [f"Unknown field {name!r}." for name in sorted(unknown)]})
    kind, model = spec.get("provider_type"), spec.get("model")
    if not isinstance(kind, str) or not kind or not isinstance(model, str) or not model:
        raise ValidationError({"llm_provider": ["provider_type and model are required."]})
    base_url = spec.get("base_url") or ""
    api_key = spec.get("api_key")
    provider = Provider.objects.filter(tenant=tenant, type=kind, base_url=base_url).order_by("id").first()
    try:
        if provider is None:
            slug = f"{kind.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
            provider = provider_services.provider_create(tenant=tenant, slug=slug, name=f"{kind} (from an agent)",
                                                         type=kind, base_url=base_url)
        if api_key and not any(c.secret() == api_key for c in provider.credentials.all()):
            provider_services.credential_create(tenant=tenant, provider=provider, api_key=api_key,
                                                name="from an agent")
    except ValidationError as exc:
        raise ValidationError({"llm_provider": [f"{k}: {m}" for k, ms in exc.message_dict.items() for m in ms]
                               if hasattr(exc, "error_dict") else exc.messages}) from None
    return provider, f"{provider.slug}/{model}"


@transaction.atomic
def agent_create(tenant, *, llm_provider: dict | None = None, **fields) -> Agent:
    unknown = set(fields) - set(AGENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown agent fields: {sorted(unknown)}")
    agent = Agent(tenant=tenant, **fields)
    if llm_provider is not None:
        agent.provider, agent.model = _inline_provider(tenant, llm_provider)
    return _save(agent)


@transaction.atomic
def agent_update(tenant, *, agent: Agent, llm_provider: dict | None = None, **fields) -> Agent:
    for name, value in fields.items():
        if name not in AGENT_FIELDS:
            raise TypeError(f"unknown agent field: {name}")
        setattr(agent, name, value)
    if llm_provider is not None:
        agent.provider, agent.model = _inline_provider(tenant, llm_provider)
    return _save(agent)


def _save(agent: Agent) -> Agent:
    agent_clean(agent)
    if Agent.objects.filter(tenant=agent.tenant, name=agent.name).exclude(pk=agent.pk).exists():
        raise Conflict(f"An agent named {agent.name!r} exists.", code="agent_exists")
    agent.save()
    bindings_changed()
    return agent


def agent_delete(tenant, *, agent: Agent) -> None:
    if agent.executions.filter(status__in=(ExecutionStatus.PENDING, ExecutionStatus.RUNNING)).exists():
        raise Conflict(f"Agent {agent.name!r} is running; cancel its executions first.", code="agent_in_use")
    agent.delete()
    bindings_changed()


# ---- place agents -------------------------------------------------------------------------------------------
def place_agent_clean(binding: PlaceAgent) -> None:
    errors: dict[str, list[str]] = {}
    tenant = binding.tenant
    if binding.agent.tenant_id != tenant.id:
        errors["agent"] = ["No such agent."]
    try:
        workflow = workflow_access_by_id(tenant, binding.workflow)
    except ApiError as error:
        errors["workflow"] = [error.message]
        workflow = None
    if workflow is not None and workflow.current_version_id:
        net, _ = net_for_version(workflow.current_version_id)
        if not net.has_place(binding.place):
            errors["place"] = [f"Workflow {workflow.slug!r} has no place {binding.place!r}."]
        if binding.auto_transition and not net.transitions_named(binding.auto_transition):
            errors["auto_transition"] = [f"Workflow {workflow.slug!r} has no transition {binding.auto_transition!r}."]
    try:
        compile_condition(binding.trigger_conditions, named=named_rules_for(tenant=tenant))
    except RuleError as error:
        errors["trigger_conditions"] = error.problems
    if not isinstance(binding.input_mapping, dict):
        errors["input_mapping"] = ["Must be an object {variable: path}."]
    elif problems := [p for p in map(mapping.input_problems, binding.input_mapping.values()) if p]:
        errors["input_mapping"] = problems
    if not isinstance(binding.output_mapping, dict):
        errors["output_mapping"] = ["Must be an object {target: source}."]
    elif problems := [p for target, source in binding.output_mapping.items()
                      for p in (mapping.target_problems(target), mapping.source_problems(source)) if p]:
        errors["output_mapping"] = problems
    if problems := mapping.function_step_problems(tenant, binding.functions):
        errors["functions"] = problems
    if problems := _schedule_problems(binding.schedule):
        errors["schedule"] = problems
    if problems := _retry_problems(binding.retry):
        errors["retry"] = problems
    if errors:
        raise ValidationError(errors)


def _schedule_problems(schedule) -> list[str]:
    if not isinstance(schedule, dict):
        return ["Must be an object."]
    problems = [f"Unknown setting {k!r}." for k in schedule
                if k not in ("initial_delay_seconds", "interval_seconds", "max_executions")]
    for name in ("initial_delay_seconds", "interval_seconds"):
        value = schedule.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not 0 <= value <= 86400 * 30):
            problems.append(f"{name} must be a number of seconds from 0 to 30 days.")
    count = schedule.get("max_executions")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        problems.append("max_executions must be a positive integer.")
    return problems


@transaction.atomic
def place_agent_create(tenant, **fields) -> PlaceAgent:
    unknown = set(fields) - set(PLACE_AGENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown place-agent fields: {sorted(unknown)}")
    binding = PlaceAgent(tenant=tenant, **fields)
    place_agent_clean(binding)
    binding.save()
    bindings_changed()
    return binding


@transaction.atomic
def place_agent_update(tenant, *, binding: PlaceAgent, **fields) -> PlaceAgent:
    for name, value in fields.items():
        if name not in PLACE_AGENT_FIELDS:
            raise TypeError(f"unknown place-agent field: {name}")
        setattr(binding, name, value)
    place_agent_clean(binding)
    binding.save()
    bindings_changed()
    return binding


def place_agent_delete(tenant, *, binding: PlaceAgent) -> None:
    binding.delete()
    bindings_changed()


def bindings_changed() -> None:
    """Every process's cache of bindings (see selectors.bindings_for) reloads once this commits."""
    transaction.on_commit(lambda: cache.set(BINDINGS_VERSION_KEY, uuid.uuid4().hex, timeout=None))


# ---- executions ------------------------------------------------------------------------------------------
def agent_execute(tenant, *, agent: Agent, input) -> AgentExecution:
    """The API's execute: an agent outside workflows, its input rendered into the prompts."""
    if not agent.enabled:
        raise Conflict(f"Agent {agent.name!r} is disabled.", code="agent_disabled")
    if not isinstance(input, dict):
        input = {"input": input}
    for name in ("system_prompt", "user_template", "context_instructions"):
        source = getattr(agent, name)
        if source:
            templates.render(source, {**input, "input": input, "input_data": input,
                                      "data": input.get("data", input)})  # a missing variable: 400 now, not a run
    return dispatch.execution_start(tenant, agent=agent, input=input)


def execution_wait(execution: AgentExecution, seconds: float) -> AgentExecution:
    """The execution once it finished, or as it is after `seconds` (call it outside the transaction that
    started it: the run begins only once that commits)."""
    deadline = time.monotonic() + max(0.0, seconds)
    while execution.status not in FINISHED and time.monotonic() < deadline:
        time.sleep(WAIT_POLL_SECONDS)
        execution.refresh_from_db()
    return execution


def place_agents_trigger(tenant, *, token) -> list[AgentExecution]:
    """The original's triggerPlaceAgents: start now the enabled agents bound to the token's current place whose
    trigger conditions hold on it (again, if they ran on its arrival). The pending executions started."""
    if token.status != TokenStatus.ACTIVE:
        raise Conflict(f"The token is {token.status}; only an active token's place agents run.",
                       code="token_not_active")
    started = triggers.token_start(token, tenant_id=tenant.id, workflow=token.instance.definition.slug)
    return list(AgentExecution.objects.filter(pk__in=started)
                .select_related("agent", "agent__provider", "place_agent").order_by("place_agent_id"))


def execution_cancel(tenant, *, execution: AgentExecution) -> AgentExecution:
    """Pending: cancelled at once. Running: flagged; the run stops at its next chunk (within ~100 ms)."""
    if execution.status in FINISHED:
        raise Conflict(f"The execution is already {execution.status}.", code="execution_finished")
    AgentExecution.objects.filter(pk=execution.pk).update(cancel_requested=True)
    cancel_flag_set(execution.pk)
    cancel_if_pending(execution.pk)
    execution.refresh_from_db()
    return execution


# ---- examples ----------------------------------------------------------------------------------------------
EXAMPLES_DIR = Path(settings.BASE_DIR) / "examples" / "agents"
_EXAMPLE_AGENT_KEYS = ("name", "description", "model", "prompts", "llm", "routing", "tools", "json_mode",
                       "output_schema", "retry", "timeout_seconds")
_EXAMPLE_BINDING_KEYS = ("place", "trigger_conditions", "input_mapping", "output_mapping", "functions",
                         "auto_transition", "schedule")


def _prompt_fields(prompts: dict) -> dict:
    return {"system_prompt": prompts.get("system", ""), "user_template": prompts.get("user_template", ""),
            "context_instructions": prompts.get("context_instructions", "")}


@transaction.atomic
def example_load(tenant, *, name: str, model: str | None = None) -> list[PlaceAgent]:
    """Load examples/agents/<name>.yaml for `tenant`: its functions (kept when one of that name exists), agents
    (created or updated by name) and their place bindings (one per agent and place). The workflow comes from
    examples/workflows when the tenant lacks it. `model` overrides every agent's model."""
    path = EXAMPLES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise NotFound(f"No agents example {name!r} (see {EXAMPLES_DIR.name}/).")
    spec = yaml.safe_load(path.read_text())
    try:
        workflow_access_by_id(tenant, spec["workflow"])
    except NotFound:
        workflow_services.examples_load(tenant=tenant)
    for raw in spec.get("functions") or []:
        if not function_selectors.function_list(tenant=tenant).filter(name=raw["name"]).exists():
            function_services.function_create(tenant, fields=raw, actor="examples")
    bindings = []
    for raw in spec["agents"]:
        fields = {k: raw[k] for k in _EXAMPLE_AGENT_KEYS if k in raw and k != "prompts"}
        fields.update(_prompt_fields(raw.get("prompts") or {}))
        if model:
            fields["model"] = model
        agent = Agent.objects.filter(tenant=tenant, name=raw["name"]).first()
        agent = agent_update(tenant, agent=agent, **fields) if agent else agent_create(tenant, **fields)
        binding_fields = {k: raw[k] for k in _EXAMPLE_BINDING_KEYS if k in raw}
        binding = PlaceAgent.objects.filter(tenant=tenant, agent=agent, workflow=spec["workflow"],
                                            place=raw["place"]).first()
        if binding:
            bindings.append(place_agent_update(tenant, binding=binding, **binding_fields))
        else:
            bindings.append(place_agent_create(tenant, agent=agent, workflow=spec["workflow"], **binding_fields))
    return bindings


def examples_load(*, tenant) -> list[str]:
    """Every example in examples/agents/ for `tenant` (the bootstrap's demo tenant)."""
    names = sorted(p.stem for p in EXAMPLES_DIR.glob("*.yaml"))
    for name in names:
        example_load(tenant, name=name)
    return names
