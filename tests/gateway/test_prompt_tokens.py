"""Prompt token counts: exact for OpenAI-family models (OpenAI's BPE tables), calibrated for the others."""

from __future__ import annotations

import dataclasses
import math
import time
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.gateway import prompt_tokens as tokens
from apps.gateway.prompt_tokens import (
    LazyPromptTokens,
    PromptTokenCounter,
    count_request,
    count_text,
    estimate_prompt_tokens,
)
from tests.gateway.routing_factories import (
    TOOL,
    mod,
)


def reference(name: str):
    """OpenAI's BPE table itself (the bpe-openai library), to check our counts against."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # bpe-openai 0.1.4 imports through a deprecated API
        import bpe_openai

        return bpe_openai.get_encoding(name)


# ---- tokens ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "cl100k", "o200k"), [
    # Token ids as published in OpenAI's cookbook / tiktoken README for these encodings.
    ("hello world", [15339, 1917], [24912, 2375]),
    ("tiktoken is great!", [83, 1609, 5963, 374, 2294, 0], [83, 8251, 2488, 382, 2212, 0]),
    ("antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191],
     [493, 129901, 376, 160388, 21203, 2367]),
    ("お誕生日おめでとう", [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699],
     [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]),
])
def test_exact_token_counts(text, cl100k, o200k):
    assert reference("cl100k_base").encode_ordinary(text) == cl100k
    assert reference("o200k_base").encode_ordinary(text) == o200k
    assert count_text(text, "cl100k_base") == len(cl100k)
    assert count_text(text, "o200k_base") == len(o200k)


COOKBOOK_MESSAGES = [  # OpenAI cookbook "How to count tokens with tiktoken": 129 tokens on gpt-4, 124 on gpt-4o
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
                                  "into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch "
                                                          "base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to "
                                                               "do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client "
                                "deliverable."},
]


def test_chat_overhead_matches_openai():
    body = {"messages": COOKBOOK_MESSAGES}
    assert estimate_prompt_tokens(body, mod("gpt-4")) == 129
    assert estimate_prompt_tokens(body, mod("gpt-3.5-turbo")) == 129
    assert estimate_prompt_tokens(body, mod("gpt-4o")) == 124
    assert estimate_prompt_tokens(body, mod("gpt-4o-mini", "azure", upstream="my-deployment")) == 124
    # One message: 3 + role (1) + content (2) = 6, + 3 reply priming = 9; a name adds 1 + its tokens.
    assert count_request({"messages": [{"role": "user", "content": "hello world"}]}) == 9
    assert count_request({"messages": [{"role": "user", "name": "bob", "content": "hello world"}]}) == 9 + 1 + 1


def test_images_count_a_fixed_85_tokens():
    text_only = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}]}
    with_image = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "hello world"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}
    assert count_request(with_image) - count_request(text_only) == tokens.IMAGE_TOKENS == 85


@pytest.mark.parametrize(("model", "encoding"), [
    (mod("gpt-4o"), "o200k_base"), (mod("gpt-4.1-mini"), "o200k_base"), (mod("gpt-5"), "o200k_base"),
    (mod("o1"), "o200k_base"), (mod("o3-mini"), "o200k_base"), (mod("o4-mini"), "o200k_base"),
    (mod("chatgpt-4o-latest"), "o200k_base"), (mod("gpt-4"), "cl100k_base"), (mod("gpt-4-turbo"), "cl100k_base"),
    (mod("gpt-3.5-turbo"), "cl100k_base"), (mod("gpt-35-turbo", "azure"), "cl100k_base"),
    (mod("gpt-4o", "openai_compatible"), "o200k_base"),
    (mod("claude-3-haiku", "anthropic"), None), (mod("llama3.2", "ollama"), None),
    (mod("gpt-4o", "simulated"), None), (mod("omni-moderation", "openai"), None),
])
def test_which_models_are_counted_exactly(model, encoding):
    assert tokens.exact_encoding(model) == encoding


@pytest.mark.parametrize(("model", "factor"), [
    (mod("claude-sonnet-4-5", "anthropic"), tokens.ANTHROPIC_FACTOR),
    (mod("gemini-2.5-pro", "gemini"), tokens.GEMINI_FACTOR),
    (mod("llama3.3", "ollama"), tokens.LLAMA_FACTOR),
    (mod("mixtral", "ollama"), tokens.MISTRAL_FACTOR),
    (mod("qwen2.5-coder", "ollama"), tokens.QWEN_FACTOR),
    (mod("claude-3-5-sonnet", "openai_compatible"), tokens.ANTHROPIC_FACTOR),
    (mod("something-else", "ollama"), tokens.DEFAULT_FACTOR),
    (mod("custom-model", "anthropic"), tokens.ANTHROPIC_FACTOR),
])
def test_calibrated_estimate_for_other_models(model, factor):
    body = {"messages": COOKBOOK_MESSAGES}
    assert tokens.family_factor(model) == factor
    assert estimate_prompt_tokens(body, model) == math.ceil(124 * factor)


def test_counter_encodes_once_per_table():
    counter = PromptTokenCounter({"messages": COOKBOOK_MESSAGES})
    results = [counter(m) for m in (mod("gpt-4o"), mod("gpt-4o-mini"), mod("claude-3-haiku", "anthropic"),
                                    mod("gemini-2.5-flash", "gemini"), mod("gpt-4"))]
    assert results == [124, 124, math.ceil(124 * 1.15), 124, 129]
    # Each table's count is remembered: a body changed afterwards is not encoded again with either table.
    counter_body = {"messages": list(COOKBOOK_MESSAGES)}
    remembered = PromptTokenCounter(counter_body)
    assert remembered(mod("gpt-4o")) == 124 and remembered(mod("gpt-4")) == 129
    counter_body["messages"].append({"role": "user", "content": "one more question"})
    assert remembered(mod("gpt-4o-mini")) == 124 and remembered(mod("gpt-3.5-turbo")) == 129
    assert remembered.encoded("o200k_base") == 124 and count_request(counter_body) > 124


def test_tools_and_legacy_prompts_count():
    base = {"messages": [{"role": "user", "content": "hello world"}]}
    assert count_request({**base, "tools": [TOOL]}) > count_request(base)
    assert count_request({"prompt": "hello world"}) == 2
    assert count_request({"prompt": [1, 2, 3]}) == 3
    assert count_request({"prompt": ["hello world", "hello world"]}) == 4


def test_long_texts_are_counted_in_pieces_without_drift():
    text = "routing decisions need token counts " * 5000  # 180k characters: several pieces
    assert len(text) > 150_000  # over three of the 50,000-character pieces
    assert count_text(text) == len(reference("o200k_base").encode_ordinary(text))
    special = "<|endoftext|> is plain text here"
    assert count_text(special) > 1


def test_counting_a_2kb_prompt_is_fast(capsys):
    tokens.warm_up()
    body = {"messages": [{"role": "system", "content": "You are terse."},
                         {"role": "user", "content": ("Summarise the trade-offs of the routing strategies, "
                                                      "with code where useful. ") * 26}]}
    assert 1900 < len(body["messages"][1]["content"]) < 2200
    rounds = 500
    start = time.perf_counter()
    for _ in range(rounds):
        estimate_prompt_tokens(body, mod("gpt-4o"))
    micros = (time.perf_counter() - start) / rounds * 1e6
    with capsys.disabled():
        print(f"\n2 KB prompt, exact o200k count: {micros:.0f} µs")
    assert micros < 2000


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
_part = st.one_of(st.fixed_dictionaries({"type": st.just("text"), "text": _text}),
                  st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries(
                      {"url": st.just("https://example.com/a.png")})}))
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.one_of(_text, st.lists(_part))},
    optional={"name": _text})
_body = st.one_of(
    st.fixed_dictionaries({"messages": st.lists(_message, max_size=4)}, optional={"tools": st.just([TOOL])}),
    st.fixed_dictionaries({"prompt": st.one_of(_text, st.lists(st.integers(0, 9)))}))


@settings(max_examples=300, deadline=None)
@given(body=_body, window=st.integers(0, 2000), max_output=st.integers(0, 500))
def test_the_lazy_counter_skips_the_byte_bound_only_where_it_could_not_matter(body, window, max_output):
    """16 x the quick count bounds the UTF-8 byte count, so skipping that walk when the bound fits the window never
    changes a count: the lazy counter answers what counting bytes first would have."""
    quick, utf8 = count_request(body, tokens.QUICK), count_request(body, tokens.UTF8_BYTES)
    assert utf8 <= 16 * quick
    for listed in (mod("gpt-4o"), mod("claude-3-haiku", "anthropic")):
        model = dataclasses.replace(listed, context_window=window)
        encoding, factor = tokens.exact_encoding(model), tokens.family_factor(model)
        if window and utf8 * max(factor, 1.0) + max_output > window:
            expected = PromptTokenCounter(body)(model)
        else:
            expected = quick if encoding is not None else math.ceil(quick * factor)
        assert LazyPromptTokens(body, max_output=max_output)(model) == expected
