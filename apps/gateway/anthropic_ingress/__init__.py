"""Anthropic's Messages API as a gateway ingress (`POST /v1/messages`, `/v1/messages/count_tokens`).

A Messages request is validated in Anthropic's terms (`requests.py`), translated into the OpenAI chat body the
pipeline runs on, and answered in Anthropic's shapes (`responses.py` for whole messages and errors,
`events.py` for streams). When every planned candidate is an Anthropic provider, `passthrough.py` sends the
client's body nearly as received and relays Anthropic's events without translating them. Pure modules except
`passthrough.py`, which calls upstream through the runtime's pool.
"""
