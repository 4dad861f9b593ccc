"""A fake of Azure OpenAI: the OpenAI fake's behaviour behind Azure's addressing, auth and filter annotations.

Paths are /openai/deployments/{deployment}/chat/completions (also /embeddings, /completions) and need
`?api-version=`; the key goes in an `api-key` header; only the deployments the fake was built with exist.
Refusals use Azure's own bodies. Streams open with the prompt-filter annotation event Azure sends
(empty id, no choices) before the first chat chunk. `normalize` is the OpenAI fake's: the JSON is the same.
"""

from __future__ import annotations

import re

import orjson
from aiohttp import web

from .openai import FakeOpenAI, normalize

__all__ = ["FakeAzure", "azure_error", "normalize"]

API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
SAFE = {"filtered": False, "severity": "safe"}
PROMPT_FILTER_EVENT = {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                       "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {
                           "hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE,
                           "jailbreak": {"filtered": False, "detected": False}}}]}


def azure_error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


class FakeAzure(FakeOpenAI):
    tag = "azure"
    api_key = "azure-fake-key"

    def __init__(self, deployments=("gpt-4o-prod", "embed-prod")):
        super().__init__()
        self.deployments = set(deployments)

    def routes(self, app: web.Application) -> None:
        base = "/openai/deployments/{deployment}"
        app.router.add_post(f"{base}/chat/completions", self.chat)
        app.router.add_post(f"{base}/embeddings", self.embeddings)
        app.router.add_post(f"{base}/completions", self.completions)

    def authorized(self, request: web.Request) -> bool:
        return not self.bad_key(request.headers.get("api-key"))

    def refusal(self, request: web.Request) -> web.Response | None:
        """Azure's checks before the OpenAI part runs: api-version, key, deployment."""
        version = request.query.get("api-version")
        if not version:
            return web.json_response(azure_error(
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests."), status=400)
        if not API_VERSION.match(version):
            return web.json_response(azure_error("404", "Resource not found"), status=404)
        if not self.authorized(request):
            return web.json_response(azure_error(
                "401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                "valid key for an active subscription and use a correct regional API endpoint for your resource."),
                status=401)
        if request.match_info["deployment"] not in self.deployments:
            return web.json_response(azure_error(
                "DeploymentNotFound", "The API deployment for this resource does not exist. If you created the "
                "deployment within the last 5 minutes, please wait a moment and try again."), status=404)
        return None

    async def record(self, request: web.Request) -> dict | None:
        body = await super().record(request)
        # Azure takes the model from the deployment; a body without `model` is fine there.
        if isinstance(body, dict) and not body.get("model"):
            body = {**body, "model": request.match_info["deployment"]}
        return body

    async def _guarded(self, request: web.Request, handler) -> web.StreamResponse:
        refused = self.refusal(request)
        if refused is not None:
            await self.record(request)
            return refused
        return await handler(request)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(request, super().chat)

    async def embeddings(self, request: web.Request) -> web.Response:
        return await self._guarded(request, super().embeddings)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(request, super().completions)

    async def start_stream(self, request: web.Request, content_type: str) -> web.StreamResponse:
        response = await super().start_stream(request, content_type)
        await response.write(b"data: " + orjson.dumps(PROMPT_FILTER_EVENT) + b"\n\n")
        return response
