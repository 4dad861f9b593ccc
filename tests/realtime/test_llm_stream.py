"""`llmStream(requestId)`: a /v1 request that asks publishes its chunks (openai SDK → gql subscriber), a
request that does not ask publishes nothing; background completions feed `completionStream`."""

from __future__ import annotations

import asyncio

import openai
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from .conftest import run, take, ws_url

pytestmark = pytest.mark.django_db

LLM = "subscription($r: String!) { llmStream(requestId: $r) { id content tokens cost done } }"


def subscriber(world):
    return Client(transport=WebsocketsTransport(
        url=ws_url(world["server"]), subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"Authorization": f"Bearer {world['secret']}"}))


@pytest.mark.parametrize("how", ["option", "header"])
def test_a_v1_stream_that_asks_is_published_to_llm_stream_subscribers(world, how):
    """The request id comes back in `x-cb-request-id` with the headers; a subscriber that joins then gets
    the whole stream (what was published before it joined from the backlog) and `done` with the exact cost."""
    client = openai.AsyncOpenAI(base_url=f"{world['server'].url}/v1", api_key=world["secret"])
    extra = {"extra_body": {"circuit_breaker": {"publish_stream": True}}} if how == "option" else {
        "extra_headers": {"x-cb-publish-stream": "1"}}

    async def scenario():
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o", stream=True, messages=[{"role": "user", "content": "publish this answer !slow 0.3"}],
            **extra)
        request_id = raw.headers["x-cb-request-id"]
        async with subscriber(world) as session:
            events = session.subscribe(GraphQLRequest(LLM, variable_values={"r": request_id}))
            first = asyncio.ensure_future(anext(events))
            await asyncio.sleep(0.3)
            text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
            got = [await asyncio.wait_for(first, 15)]
            while not got[-1]["llmStream"]["done"]:
                got += await take(events, 1)
            await events.aclose()
        await client.close()
        return request_id, text, got

    request_id, text, got = run(scenario())
    assert "".join(e["llmStream"]["content"] for e in got) == text
    assert got[-1]["llmStream"]["done"] and float(got[-1]["llmStream"]["cost"]) > 0
    assert {e["llmStream"]["id"] for e in got} == {request_id}


def test_the_option_is_validated_like_every_routing_option(world):
    client = openai.OpenAI(base_url=f"{world['server'].url}/v1", api_key=world["secret"])
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}],
                                       extra_body={"circuit_breaker": {"publish_stream": "yes"}})
    assert refused.value.body["param"] == "circuit_breaker.publish_stream"
