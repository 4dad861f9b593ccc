"""Place agents: a token entering a bound place starts the agent (after the commit), whose output is mapped into
the token and whose automatic transition fires — or is refused and recorded."""

from __future__ import annotations

import pytest

from tests.celery_worker import wait_until

from .conftest import events_of, execution, finished

pytestmark = pytest.mark.django_db(transaction=True)

REVIEW = {"id": "review_flow", "places": ["draft", "review", "done", "held"], "initial_place": "draft",
          "final_places": ["done", "held"],
          "transitions": [{"id": "submit", "from_places": ["draft"], "to_place": "review"},
                          {"id": "approve", "from_places": ["review"], "to_place": "done",
                           "conditions": [{"FieldExists": "data.verdict"}]},
                          {"id": "hold", "from_places": ["review"], "to_place": "held",
                           "conditions": [{"FieldEquals": {"field": "data.never", "value": True}}]}]}


def setup_flow(world, **binding):
    from apps.workflows import services as workflow_services

    workflow_services.workflow_save(world["tenant"], definition=REVIEW)
    api = world["api"]
    agent = api.post("/api/agents/", {"name": "reviewer", "model": "gpt-4o", "json_mode": True, "prompts": {
        "system": "You review {data.kind} documents.",
        "user_template": "Review {title} ({data.meta.words} words) at {current_place} of {workflow_id}, "
                         "token {token_id}, {history_count} events, metadata {token_metadata}, by {who}"}},
        format="json").json()
    body = {"agent_id": agent["id"], "workflow_id": "review_flow", "place": "review",
            "input_mapping": {"who": "metadata.owner"},
            "output_mapping": {"data.verdict": "output.provider", "metadata.echo": "output.echo",
                               "data.raw": "text"},
            "auto_transition": "approve", **binding}
    response = api.post("/api/place-agents/", body, format="json")
    assert response.status_code == 201, response.content
    return agent, response.json()


def new_token(world, **data):
    response = world["api"].post("/api/tokens/", {
        "workflow_id": "review_flow", "place": "draft",
        "data": {"title": "Owls", "kind": "article", "meta": {"words": 12}, **data},
        "metadata": {"owner": "ana"}}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def fire(world, token_id, transition):
    response = world["api"].post(f"/api/tokens/{token_id}/fire/", {"transition_id": transition}, format="json")
    assert response.status_code == 200, response.content


def executions_for(world, token_id):
    response = world["api"].get(f"/api/agent-executions/?token_id={token_id}")
    assert response.status_code == 200
    return response.json()["results"]


def test_a_token_entering_the_place_runs_the_agent_maps_its_output_and_fires(world):
    from apps.workflows.models import Token, TokenHistory

    agent, binding = setup_flow(world, trigger_conditions={"FieldEquals": {"field": "data.kind",
                                                                           "value": "article"}})
    token_id = new_token(world)
    assert executions_for(world, token_id) == []  # draft has no agent
    fire(world, token_id, "submit")
    found = wait_until(lambda: executions_for(world, token_id), 15)
    run = finished(found[0]["id"])
    assert run.status == "completed", run.error
    assert run.place_agent_id == binding["id"] and run.workflow == "review_flow"
    user = run.messages[-1]["content"]
    assert user == (f"Review Owls (12 words) at review of review_flow, token {token_id}, 2 events, "
                    'metadata {"owner": "ana"}, by ana')
    assert run.messages[0]["content"] == "You review article documents."
    token = wait_until(lambda: Token.objects.filter(pk=token_id, place="done").first(), 10)
    assert token.data["verdict"] == "openai" and token.data["raw"] == run.output_text
    assert token.metadata["echo"] == user and token.metadata["owner"] == "ana"
    assert wait_until(lambda: execution(run.id).transition, 5) == {"transition": "approve", "fired": True}
    actors = {(h.kind, h.actor) for h in TokenHistory.objects.filter(token_id=token_id)}
    assert ("data_updated", "agent:reviewer") in actors and ("moved", "agent:reviewer") in actors
    types = [e.type for e in events_of(run.id)]
    assert types[0] == "agent_started" and types[-1] == "agent_completed"
    assert all(e.token_id is not None and str(e.token_id) == token_id and e.workflow == "review_flow"
               for e in events_of(run.id))


def test_trigger_conditions_decide_which_tokens_start_it(world):
    setup_flow(world, trigger_conditions={"FieldEquals": {"field": "data.kind", "value": "article"}})
    memo = new_token(world, kind="memo")
    fire(world, memo, "submit")
    article = new_token(world)
    fire(world, article, "submit")
    assert wait_until(lambda: executions_for(world, article), 15)
    assert executions_for(world, memo) == []


def test_a_refused_transition_is_recorded_not_raised(world):
    from apps.workflows.models import Token

    setup_flow(world, auto_transition="hold")
    token_id = new_token(world)
    fire(world, token_id, "submit")
    run = finished(wait_until(lambda: executions_for(world, token_id), 15)[0]["id"])
    assert run.status == "completed"
    run.transition = wait_until(lambda: execution(run.id).transition, 5)
    assert run.transition["fired"] is False and run.transition["code"] == "transition_not_enabled"
    assert Token.objects.get(pk=token_id).place == "review"


def test_a_missing_template_variable_fails_the_run_naming_it(world):
    setup_flow(world, input_mapping={"who": "metadata.nobody"})
    token_id = new_token(world)
    fire(world, token_id, "submit")
    run = finished(wait_until(lambda: executions_for(world, token_id), 15)[0]["id"])
    assert run.status == "failed" and run.attempts == 1
    assert run.error_code == "template_variable_missing" and "metadata.nobody" in run.error


def test_a_disabled_binding_starts_nothing(world):
    _, binding = setup_flow(world)
    response = world["api"].patch(f"/api/place-agents/{binding['id']}/", {"enabled": False}, format="json")
    assert response.status_code == 200 and response.json()["enabled"] is False
    token_id = new_token(world)
    fire(world, token_id, "submit")
    import time

    time.sleep(1.0)
    assert executions_for(world, token_id) == []


def test_a_schedule_delays_the_first_run_and_repeats_while_the_token_stays(world):
    setup_flow(world, auto_transition="", schedule={"initial_delay_seconds": 1, "interval_seconds": 0.5,
                                                    "max_executions": 2})
    token_id = new_token(world)
    fire(world, token_id, "submit")
    runs = wait_until(lambda: len(executions_for(world, token_id)) == 2
                      and all(r["status"] == "completed" for r in executions_for(world, token_id))
                      and executions_for(world, token_id), 30)
    assert runs, executions_for(world, token_id)
    first = execution(runs[-1]["id"])  # newest first
    assert (first.started_at - first.created_at).total_seconds() >= 0.9
    import time

    time.sleep(1.5)
    assert len(executions_for(world, token_id)) == 2  # max_executions
