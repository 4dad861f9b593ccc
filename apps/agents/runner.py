"""Running one attempt of an agent execution: claim it, render the prompts, converse with the model through the
gateway (streaming events, calling functions as tools), then map the output into the token and fire the
automatic transition. Called by the Celery task (or the embedded default's thread) with ids only."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from decimal import Decimal

import jsonschema
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.errors import ApiError, RateLimited, UpstreamTimeout
from apps.workflows import outbox

from . import dispatch, mapping, templates, tools
from .models import FINISHED, AgentExecution, ExecutionStatus
from .streaming import RunCancelled, RunTimedOut, stream_step

log = logging.getLogger(__name__)
CANCEL_KEY = "agents:cancel:{}"
LOST_GRACE_SECONDS = 120.0  # past an attempt's timeout (tool calls run between the deadline checks)


def cancel_flag_set(execution_id) -> None:
    cache.set(CANCEL_KEY.format(execution_id), 1, timeout=24 * 3600)


def _cancel_requested(execution_id) -> bool:
    return bool(cache.get(CANCEL_KEY.format(execution_id)))


def error_kind(error: ApiError) -> str | None:
    """The retry_config kind of a retryable error (None: never retried)."""
    if not error.retryable:
        return None
    if isinstance(error, UpstreamTimeout) or error.status in (408, 504):
        return "timeout"
    if isinstance(error, RateLimited) or error.status == 429:
        return "rate_limit"
    return "upstream_unavailable"


class AgentRun:
    """One attempt. `events` go to the outbox, tagged with the workflow, instance and token it runs for."""

    def __init__(self, execution: AgentExecution):
        self.execution = execution
        self.agent = execution.agent
        self.deadline = time.monotonic() + max(0.1, execution.timeout_seconds)
        self.content_index = 0
        self.totals = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cost": Decimal(0)}

    def usage(self) -> dict:
        """Every attempt's usage so far (earlier attempts' from the row as it was claimed, this one's counted)."""
        ex, totals = self.execution, self.totals
        return {"prompt_tokens": ex.prompt_tokens + totals["prompt_tokens"],
                "completion_tokens": ex.completion_tokens + totals["completion_tokens"],
                "total_tokens": ex.total_tokens + totals["total_tokens"], "cost": str(ex.cost + totals["cost"])}

    # ---- events ----------------------------------------------------------------------------------------
    def event(self, type_: str, **data) -> None:
        ex = self.execution
        outbox.event_record(ex.tenant_id, workflow=ex.workflow, type=type_, instance_id=ex.instance_id,
                            token_id=ex.token_id, data={"execution_id": str(ex.id), "agent_id": str(ex.agent_id),
                                                        "agent": self.agent.name, **data})

    def _content(self, text: str) -> None:
        self.event("agent_content", content=text, index=self.content_index)
        self.content_index += 1

    def _thinking(self, text: str) -> None:
        self.event("agent_thinking", status="reasoning", content=text)

    # ---- the conversation -----------------------------------------------------------------------------
    def messages(self) -> list[dict]:
        ex, agent = self.execution, self.agent
        if ex.messages:
            return list(ex.messages)  # rendered on the first attempt; a retry sends the same conversation
        variables = mapping.variables_for(ex)
        system = templates.render(agent.system_prompt, variables) if agent.system_prompt else ""
        if agent.context_instructions:
            context = templates.render(agent.context_instructions, variables)
            system = f"{system}\n\n{context}" if system else context
        user = templates.render(agent.user_template or "{input_data}", variables)
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        ex.messages = messages  # stored with the usage when the conversation ends (a retry resends it)
        return list(messages)

    def request(self, messages: list[dict], specs: list[dict], *, last_step: bool) -> dict:
        agent = self.agent
        body = {"model": agent.model, "messages": messages, "stream": True,
                "stream_options": {"include_usage": True}}
        for name, value in agent.llm_settings.items():
            if value is not None:
                body[name] = value
        if specs:
            body["tools"] = specs
            if last_step:
                body["tool_choice"] = "none"
        if agent.output_schema:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "output", "schema": agent.output_schema}}
        elif agent.json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    def converse(self) -> dict:
        ex, agent = self.execution, self.agent
        messages = self.messages()
        specs, names = tools.specs_for(ex.tenant, agent.tools)
        totals = self.totals
        calls_made: list[dict] = []
        request_ids: list[str] = list(ex.request_ids or [])
        step, tool_rounds = 0, 0
        outcome = None
        try:
            while True:
                step += 1
                self.event("agent_thinking", status="thinking", step=step, model=agent.model)
                request_id = f"agentx_{ex.id.hex}_{ex.attempts}_{step}"
                request_ids.append(request_id)
                outcome = stream_step(
                    ex.tenant_id, self.request(messages, specs, last_step=tool_rounds >= agent.max_tool_steps),
                    {"workflow_id": ex.workflow or None, "agent_id": str(agent.id), "routing": agent.routing or None,
                     "request_id": request_id},
                    deadline=self.deadline, cancelled=lambda: _cancel_requested(ex.id),
                    on_content=self._content, on_thinking=self._thinking)
                usage = outcome.usage or {}
                for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
                    totals[name] += int(usage.get(name) or 0)
                totals["cost"] += outcome.cost
                if not outcome.tool_calls or tool_rounds >= agent.max_tool_steps:
                    break
                tool_rounds += 1
                messages.append({"role": "assistant", "content": outcome.text or None,
                                 "tool_calls": outcome.tool_calls})
                for call in outcome.tool_calls:
                    record = self.tool_call(call, names)
                    calls_made.append(record)
                    messages.append({"role": "tool", "tool_call_id": call["id"],
                                     "content": json.dumps(record["result"] if "result" in record
                                                           else {"error": record.get("error")}, default=str)})
        finally:
            AgentExecution.objects.filter(pk=ex.pk).update(
                messages=ex.messages, request_ids=request_ids, tool_calls=list(ex.tool_calls or []) + calls_made,
                prompt_tokens=F("prompt_tokens") + totals["prompt_tokens"],
                completion_tokens=F("completion_tokens") + totals["completion_tokens"],
                total_tokens=F("total_tokens") + totals["total_tokens"], cost=F("cost") + totals["cost"],
                model=outcome.model if outcome else ex.model, provider=outcome.provider if outcome else ex.provider)
        return {"text": outcome.text, "messages": messages, "model": outcome.model, "provider": outcome.provider}

    def tool_call(self, call: dict, names: dict) -> dict:
        name = call["function"]["name"]
        raw = call["function"]["arguments"] or "{}"
        try:
            arguments = json.loads(raw)
        except ValueError:
            arguments = {"_raw": raw}
        self.event("agent_tool_call", tool_call_id=call["id"], name=name, arguments=arguments)
        ex = self.execution
        result = tools.call(ex.tenant, names, name, arguments, context={
            "agent_id": str(ex.agent_id), "agent_execution_id": str(ex.id), "workflow": ex.workflow,
            "instance_id": str(ex.instance_id) if ex.instance_id else None,
            "token_id": str(ex.token_id) if ex.token_id else None})
        self.event("agent_tool_result", tool_call_id=call["id"], name=name, **result)
        return {"id": call["id"], "name": name, "arguments": arguments, **result}

    # ---- output -----------------------------------------------------------------------------------------
    def parse_output(self, text: str):
        agent = self.agent
        if not (agent.json_mode or agent.output_schema):
            return None
        try:
            value = json.loads(_unfenced(text))
        except ValueError:
            raise ApiError("The model's output is not JSON, though the agent asks for JSON.",
                           code="output_not_json", status=502) from None
        if agent.output_schema:
            try:
                jsonschema.validate(value, agent.output_schema)
            except jsonschema.ValidationError as exc:
                raise ApiError(f"The model's output does not match the output schema: {exc.message}",
                               code="output_schema_mismatch", status=502) from None
        return value


def _unfenced(text: str) -> str:
    """Models asked for JSON sometimes wrap it in a ```json fence anyway."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped[3:-3]
        first, _, rest = stripped.partition("\n")
        return rest if first.strip().lower() in ("json", "") else stripped
    return stripped


def _claim(execution_id, attempt: int) -> bool:
    now = timezone.now()
    return AgentExecution.objects.filter(
        pk=execution_id, status=ExecutionStatus.PENDING, attempts=attempt - 1, cancel_requested=False,
    ).update(status=ExecutionStatus.RUNNING, attempts=attempt, started_at=Coalesce(F("started_at"), now),
             attempt_started_at=now, error="", error_code="") == 1


def _finish(run: AgentRun, status: str, **fields) -> float:
    ex = run.execution
    now = timezone.now()
    duration = ((now - ex.started_at).total_seconds() * 1000) if ex.started_at else 0.0
    AgentExecution.objects.filter(pk=ex.pk).update(status=status, finished_at=now, duration_ms=duration, **fields)
    return duration


def execution_run(execution_id, attempt: int = 1) -> float | None:
    """Run attempt `attempt` of the execution if it is still pending at attempt - 1 (a duplicate or retried
    task does nothing). Returns the delay before the next attempt when a retryable error leaves attempts."""
    if not _claim(execution_id, attempt):
        cancel_if_pending(execution_id)
        return None
    ex = AgentExecution.objects.select_related("agent", "tenant", "place_agent").get(pk=execution_id)
    run = AgentRun(ex)
    if attempt == 1:
        run.event("agent_started", model=ex.agent.model, attempt=attempt)
    try:
        result = run.converse()
        output_json = run.parse_output(result["text"])
    except RunCancelled:
        with transaction.atomic():
            _finish(run, ExecutionStatus.CANCELLED, error="Cancelled.", error_code="cancelled")
            run.event("agent_failed", status="cancelled", error="Cancelled.", code="cancelled")
        return None
    except RunTimedOut:
        return _failed(run, ApiError(f"The run took longer than its timeout ({ex.timeout_seconds:g} s).",
                                     code="agent_timeout", status=504, retryable=True), timeout=True)
    except ApiError as error:
        return _failed(run, error)
    except Exception:
        log.exception("agent execution %s failed", execution_id)
        return _failed(run, ApiError("The agent run failed unexpectedly.", code="internal_error", status=500))
    return _succeeded(run, result, output_json)


def _retry_settings(ex: AgentExecution) -> dict:
    settings = ex.agent.retry_settings
    if ex.place_agent_id and ex.place_agent and ex.place_agent.retry:
        settings = {**settings, **ex.place_agent.retry}
    return settings


def _failed(run: AgentRun, error: ApiError, *, timeout: bool = False) -> float | None:
    ex = run.execution
    kind = "timeout" if timeout else error_kind(error)
    retry = _retry_settings(ex)
    if kind and kind in (retry.get("retry_on_errors") or []) and ex.attempts < ex.max_attempts \
            and not _cancel_requested(ex.id):
        delay = float(retry.get("backoff_seconds", 10)) * (2 ** (ex.attempts - 1))
        AgentExecution.objects.filter(pk=ex.pk, status=ExecutionStatus.RUNNING).update(
            status=ExecutionStatus.PENDING, error=error.message[:2000], error_code=error.code or kind)
        run.event("agent_retrying", attempt=ex.attempts, next_attempt=ex.attempts + 1, delay_seconds=delay,
                  error=error.message[:500], code=error.code or kind)
        return delay
    status = ExecutionStatus.TIMEOUT if timeout or kind == "timeout" else ExecutionStatus.FAILED
    with transaction.atomic():  # the final event and the final status are seen together
        _finish(run, status, error=error.message[:2000], error_code=(error.code or error.type or "error")[:64])
        run.event("agent_failed", status=status, error=error.message[:500], code=error.code or error.type,
                  attempts=ex.attempts, usage=run.usage())
    return None


def _succeeded(run: AgentRun, result: dict, output_json) -> None:
    ex = run.execution
    text = result["text"]
    written = {}
    if ex.token_id and ex.place_agent_id:
        try:
            written = mapping.write_output(ex, text=text, output_json=output_json)
            steps = mapping.run_function_steps(ex, run.event)
            if steps:
                AgentExecution.objects.filter(pk=ex.pk).update(
                    tool_calls=list(AgentExecution.objects.get(pk=ex.pk).tool_calls or []) + steps)
        except ApiError as error:
            with transaction.atomic():
                _finish(run, ExecutionStatus.FAILED, output_text=text, output_json=output_json,
                        error=f"Output mapping failed: {error.message}"[:2000], error_code=error.code or "mapping")
                run.event("agent_failed", status="failed", error=f"Output mapping failed: {error.message}"[:500],
                          code=error.code, usage=run.usage())
            return
    with transaction.atomic():  # the final event and the final status are seen together
        duration = _finish(run, ExecutionStatus.COMPLETED, output_text=text, output_json=output_json)
        run.event("agent_completed", output=output_json if output_json is not None else text[:4000],
                  written=sorted(written), usage=run.usage(), model=result["model"], provider=result["provider"],
                  attempts=ex.attempts, duration_ms=round(duration, 3))
    if ex.place_agent_id:
        mapping.after_success(ex)


def sweep_lost(*, grace_seconds: float = LOST_GRACE_SECONDS, limit: int = 200) -> int:
    """Executions left running by a worker that died (its redelivered task cannot claim them): an attempt still
    running `grace_seconds` past its timeout is over. Retried like a timeout while attempts remain, else timed
    out. Each is taken by a conditional UPDATE, so two sweeps act once. Returns how many were handled."""
    now = timezone.now()
    handled = 0
    rows = AgentExecution.objects.filter(status=ExecutionStatus.RUNNING,
                                         attempt_started_at__lt=now - timedelta(seconds=grace_seconds))
    for ex in rows.select_related("agent", "place_agent").order_by("attempt_started_at")[:limit]:
        if ex.attempt_started_at + timedelta(seconds=ex.timeout_seconds + grace_seconds) > now:
            continue
        run = AgentRun(ex)
        error = ApiError("The worker running this attempt was lost.", code="worker_lost", status=504,
                         retryable=True)
        retry = _retry_settings(ex)
        again = "timeout" in (retry.get("retry_on_errors") or []) and ex.attempts < ex.max_attempts \
            and not ex.cancel_requested
        with transaction.atomic():
            taken = AgentExecution.objects.filter(pk=ex.pk, status=ExecutionStatus.RUNNING,
                                                  attempts=ex.attempts).update(
                status=ExecutionStatus.PENDING if again else ExecutionStatus.TIMEOUT, error=error.message,
                error_code=error.code, **({} if again else {"finished_at": now}))
            if not taken:
                continue
            if again:
                delay = float(retry.get("backoff_seconds", 10)) * (2 ** (ex.attempts - 1))
                run.event("agent_retrying", attempt=ex.attempts, next_attempt=ex.attempts + 1,
                          delay_seconds=delay, error=error.message, code=error.code)
                execution_id, attempt = str(ex.id), ex.attempts + 1
                transaction.on_commit(lambda e=execution_id, a=attempt, d=delay: dispatch.enqueue(e, a, countdown=d))
            else:
                run.event("agent_failed", status=ExecutionStatus.TIMEOUT, error=error.message, code=error.code,
                          attempts=ex.attempts, usage=run.usage())
        handled += 1
    return handled


def cancel_if_pending(execution_id) -> None:
    """A pending execution whose cancel was requested ends now, with its final event (as every end has one:
    a subscriber to the execution waits for it)."""
    with transaction.atomic():
        if AgentExecution.objects.filter(pk=execution_id, status=ExecutionStatus.PENDING,
                                         cancel_requested=True).update(
                status=ExecutionStatus.CANCELLED, finished_at=timezone.now(), error="Cancelled.",
                error_code="cancelled"):
            ex = AgentExecution.objects.select_related("agent").get(pk=execution_id)
            AgentRun(ex).event("agent_failed", status=ExecutionStatus.CANCELLED, error="Cancelled.",
                               code="cancelled", attempts=ex.attempts, usage=AgentRun(ex).usage())


__all__ = ["FINISHED", "cancel_flag_set", "cancel_if_pending", "execution_run"]
