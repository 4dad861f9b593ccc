"""One module per upstream wire protocol, behind `base.Adapter`; `registry.get(type)` finds one."""
