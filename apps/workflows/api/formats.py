"""YAML in and out of the management API (definitions are written in YAML as often as in JSON), and the error
handler that adds what a definition or firing error carries: every problem, the guard explanation."""

from __future__ import annotations

import yaml
from rest_framework import exceptions, parsers, renderers

from apps.core.api import exception_handler
from apps.workflows.engine import DefinitionInvalid, TransitionNotEnabled


class YAMLParser(parsers.BaseParser):
    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return yaml.safe_load(stream.read().decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(f"YAML parse error: {exc}") from None


class TextYAMLParser(YAMLParser):
    media_type = "text/yaml"


class YAMLRenderer(renderers.BaseRenderer):
    media_type = "application/yaml"
    format = "yaml"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode("utf-8")


def workflow_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, DefinitionInvalid):
        response.data["problems"] = exc.problems
        if exc.analysis is not None:
            response.data["analysis"] = exc.analysis
    if response is not None and isinstance(exc, TransitionNotEnabled):
        response.data["explanation"] = exc.explanation
    return response
