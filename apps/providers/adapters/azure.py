"""Azure OpenAI: OpenAI's JSON, addressed per deployment, with an `api-key` header and an `api-version` query.

`base_url` is the resource endpoint (https://<resource>.openai.azure.com). Provider options:
`deployments` maps a model name to the deployment serving it (else the model name is the deployment),
`api_version` picks the API version. Streams differ from OpenAI's in one way that matters: Azure adds
content-filter annotation events that are not chat chunks (empty `id`, no `delta`), which we drop.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from .base import ChunkFactory, StreamTranslator, Target, UpstreamRequest, json_body
from .openai import OpenAIAdapter, OpenAIStream, chat_body, extra_headers

DEFAULT_API_VERSION = "2024-10-21"  # the current GA data-plane version


def deployment_url(target: Target, operation: str) -> str:
    deployment = (target.options.get("deployments") or {}).get(target.model, target.model)
    version = target.options.get("api_version") or DEFAULT_API_VERSION
    base = target.base_url.removesuffix("/openai")  # accept the endpoint with or without Azure's /openai suffix
    query = urlencode({"api-version": version})
    return f"{base}/openai/deployments/{quote(str(deployment), safe='')}/{operation}?{query}"


def headers_for(target: Target) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if target.api_key:
        headers["api-key"] = target.api_key
    headers.update(extra_headers(target))
    return headers


def _is_chat_chunk(chunk: dict) -> bool:
    """False for Azure's filter annotations: prompt_filter_results with no choices, or choices without a delta."""
    if not chunk.get("choices"):
        return chunk.get("usage") is not None  # the final usage chunk
    return any("delta" in choice or choice.get("finish_reason") for choice in chunk["choices"])


class AzureStream(OpenAIStream):
    __slots__ = ()

    def _translate(self, events) -> list[dict]:
        chunks = [chunk for chunk in super()._translate(events) if type(chunk) is bytes or _is_chat_chunk(chunk)]
        for chunk in chunks:
            if type(chunk) is not bytes:  # relayed JSON has its delta (`relayable`)
                for choice in chunk["choices"]:
                    choice.setdefault("delta", {})  # a filter verdict can arrive without one; clients index it
        return chunks


class AzureAdapter(OpenAIAdapter):
    name = "azure"
    provider_type = "azure"
    label = "Azure OpenAI"
    default_base_url = ""
    base_url_required = True  # every Azure resource has its own endpoint
    prefixes = ("azure",)
    supports_embeddings = True
    supports_completions = True

    def chat_request(self, body: dict, target: Target, *, stream: bool) -> UpstreamRequest:
        # The body keeps `model` as OpenAI sends it; Azure routes by the deployment in the path.
        return UpstreamRequest("POST", deployment_url(target, "chat/completions"), headers_for(target),
                               json_body(chat_body(body, target, stream=stream)))

    def chat_stream(self, target: Target, chunks: ChunkFactory) -> StreamTranslator:
        return AzureStream()

    def embeddings_request(self, body: dict, target: Target) -> UpstreamRequest:
        return UpstreamRequest("POST", deployment_url(target, "embeddings"), headers_for(target),
                               json_body({**body, "model": target.model}))

    def completions_request(self, body: dict, target: Target, *, stream: bool) -> UpstreamRequest:
        return UpstreamRequest("POST", deployment_url(target, "completions"), headers_for(target),
                               json_body(chat_body(body, target, stream=stream)))

