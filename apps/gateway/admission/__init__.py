"""Admission steps, one module each: what a request must pass before it is sent upstream (`admit`) and what
is squared up once it has ended (`settle`). The pipeline runs them at their points (authentication first,
rate limits on arrival, cost rules once routing options are known, budgets once candidates are planned) and
settles them in one place when the request ends, however it ends."""
