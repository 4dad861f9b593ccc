"""`python -m bench` (`make bench`): the gateway's overhead measured against a plain ASGI proxy.

Three targets answer the same POST /v1/chat/completions: the fake upstream itself ("direct"), a
minimal pass-through proxy ("baseline", what the architecture's hot-path figures compare against)
and the real gateway (`manage.py serve` with production settings). A fourth, "routed", is the same
gateway serving `auto` over three deployments, one failing half the time, compared with the gateway's
one-deployment figures (the direct-model case). Everything is reported as differences and ratios
against targets measured in the same run, because the machine is small and shared. See
docs/performance.md.
"""
