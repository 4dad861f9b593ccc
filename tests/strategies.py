"""Hypothesis strategies: random *valid* OpenAI chat requests, and the projection every protocol must keep.

Round-trip property (one per adapter): translate a random request with the adapter, parse what would be
sent with that protocol's fake (`normalize`), and compare `canonical(...)` of both sides. `canonical`
keeps what every protocol can carry: the system text, the sequence of roles with their text, image
counts, tool calls as (name, arguments) and tool results as text. It merges consecutive turns of the same
role (Anthropic and Gemini require alternation) and drops tool-call ids (Gemini has none).
"""

from __future__ import annotations

from hypothesis import strategies as st

from tests.fakes.base import Conversation, ToolCall, Turn

PNG_DATA_URL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789äéßø漢字", min_size=1, max_size=8)
texts = st.lists(words, min_size=1, max_size=6).map(" ".join)
names = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True)
json_values = st.one_of(st.integers(-1000, 1000), texts, st.booleans())
arguments = st.dictionaries(names, json_values, max_size=3)


@st.composite
def user_message(draw):
    text = draw(texts)
    if draw(st.booleans()):
        parts = [{"type": "text", "text": text}]
        if draw(st.booleans()):
            parts.append({"type": "image_url", "image_url": {"url": PNG_DATA_URL}})
        return {"role": "user", "content": parts}
    return {"role": "user", "content": text}


@st.composite
def openai_requests(draw):
    """A valid conversation: optional system, user/assistant turns, tool calls answered by tool messages,
    ending on a user or tool message."""
    import orjson

    tools = draw(st.lists(names, min_size=0, max_size=3, unique=True))
    messages = []
    if draw(st.booleans()):
        messages.append({"role": draw(st.sampled_from(["system", "developer"])), "content": draw(texts)})
    call_counter = 0
    for _ in range(draw(st.integers(1, 4))):
        messages.append(draw(user_message()))
        if draw(st.booleans()):
            if tools and draw(st.booleans()):
                calls = []
                for name in draw(st.lists(st.sampled_from(tools), min_size=1, max_size=2)):
                    call_counter += 1
                    calls.append({"id": f"call_{call_counter}", "type": "function",
                                  "function": {"name": name, "arguments": orjson.dumps(draw(arguments)).decode()}})
                messages.append({"role": "assistant", "content": None, "tool_calls": calls})
                for call in calls:
                    messages.append({"role": "tool", "tool_call_id": call["id"], "content": draw(texts)})
                if draw(st.booleans()):
                    break  # end on tool results
            else:
                messages.append({"role": "assistant", "content": draw(texts)})
    body = {"model": "m", "messages": messages}
    if tools:
        body["tools"] = [{"type": "function", "function": {"name": n, "description": f"tool {n}",
                                                           "parameters": {"type": "object", "properties": {}}}}
                         for n in tools]
    if draw(st.booleans()):
        body["temperature"] = draw(st.floats(0, 2).map(lambda x: round(x, 2)))
    if draw(st.booleans()):
        body["max_tokens"] = draw(st.integers(1, 4096))
    return body


def expected_conversation(body: dict) -> Conversation:
    """What a faithful translation of `body` must carry (in the fakes' normalized form)."""
    import orjson

    conv = Conversation(model=body.get("model", ""))
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            text = "".join(p["text"] for p in content if p["type"] == "text")
            images = sum(1 for p in content if p["type"] == "image_url")
        else:
            text, images = content or "", 0
        role = message["role"]
        if role in ("system", "developer"):
            conv.system = f"{conv.system}\n\n{text}" if conv.system else text
        elif role == "tool":
            conv.turns.append(Turn("tool", text, tool_call_id=message.get("tool_call_id")))
        else:
            calls = [ToolCall(c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
                     for c in message.get("tool_calls") or []]
            conv.turns.append(Turn(role, text, images, calls))
    conv.tools = [t["function"]["name"] for t in body.get("tools") or []]
    return conv


def canonical(conv: Conversation) -> tuple:
    turns: list[list] = []
    for turn in conv.turns:
        calls = [(c.name, c.arguments) for c in turn.tool_calls]
        if turns and turns[-1][0] == turn.role and turn.role in ("user", "assistant"):
            previous = turns[-1]
            previous[1] = "\n".join(x for x in (previous[1], turn.text) if x)
            previous[2] += turn.images
            previous[3] += calls
        else:
            turns.append([turn.role, turn.text, turn.images, calls])
    return conv.system.strip(), [tuple(t[:3]) + (tuple(map(repr, t[3])),) for t in turns], tuple(conv.tools)
