"""Postgres statements for the firing hot path: the lock, the token read, and every write of a firing in one
statement (data-modifying CTEs), with no ORM query compilation per firing. `firing.py` decides when to use them
and keeps the ORM equivalent for other databases."""

from __future__ import annotations

import uuid

import orjson
from django.db import connection

from .models import WorkflowDefinition, WorkflowInstance

_LOCK = ("SELECT i.id, i.tenant_id, i.definition_id, i.version_id, i.status, i.marking, i.enabled_since, "
         "i.next_due_at, i.fire_count, i.created_by, i.created_at, i.updated_at, i.finished_at, d.slug "
         "FROM workflows_workflowinstance i JOIN workflows_workflowdefinition d ON d.id = i.definition_id "
         "WHERE i.tenant_id = %s AND i.id = ")
_LOCK_BY_INSTANCE = _LOCK + "%s FOR UPDATE OF i"
_LOCK_BY_TOKEN = _LOCK + "(SELECT instance_id FROM workflows_token WHERE id = %s) FOR UPDATE OF i"  # noqa: S608
_ACTIVE = ("SELECT id, place, data, metadata, arrived_at FROM workflows_token "
           "WHERE instance_id = %s AND status = 'active'")
_ACTIVE_OF_ITS_INSTANCE = ("SELECT id, place, data, metadata, arrived_at FROM workflows_token WHERE status = 'active' "
                    "AND instance_id = (SELECT instance_id FROM workflows_token WHERE id = %s)")


def _json(value) -> str:
    return orjson.dumps(value).decode()


def _loaded(value):
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def lock_instance(tenant_id: int, *, instance_id=None, token_id=None) -> WorkflowInstance | None:
    try:
        key = uuid.UUID(str(token_id if token_id is not None else instance_id))
    except ValueError:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_BY_TOKEN if token_id is not None else _LOCK_BY_INSTANCE, [tenant_id, key])
        row = cursor.fetchone()
    return None if row is None else _instance(row)


def _instance(row) -> WorkflowInstance:
    (pk, tenant, definition, version, status, marking, enabled_since, next_due_at, fire_count, created_by,
     created_at, updated_at, finished_at, slug) = row
    instance = WorkflowInstance(id=pk, tenant_id=tenant, definition_id=definition, version_id=version, status=status,
                                marking=_loaded(marking), enabled_since=_loaded(enabled_since),
                                next_due_at=next_due_at, fire_count=fire_count, created_by=created_by,
                                created_at=created_at, updated_at=updated_at, finished_at=finished_at)
    instance._state.adding = False
    instance.definition = WorkflowDefinition(id=definition, tenant_id=tenant, slug=slug)
    return instance


def lock_and_read(tenant_id: int, *, instance_id=None, token_id=None) -> tuple[WorkflowInstance, list] | None:
    """The lock and the token read in one round trip: two statements in one query string. Each statement of a
    multi-statement query takes its own snapshot, so the read sees every firing committed before the lock was
    granted (a join inside the locking statement would not)."""
    try:
        key = uuid.UUID(str(token_id if token_id is not None else instance_id))
    except ValueError:
        return None
    lock = _LOCK_BY_TOKEN if token_id is not None else _LOCK_BY_INSTANCE
    read = _ACTIVE_OF_ITS_INSTANCE if token_id is not None else _ACTIVE
    with connection.cursor() as cursor:
        cursor.execute(f"{lock}; {read}", [tenant_id, key, key])
        row = cursor.fetchone()
        cursor.nextset()
        tokens = cursor.fetchall()
    if row is None:
        return None
    return _instance(row), [(pk, place, _loaded(data), _loaded(metadata), arrived)
                            for pk, place, data, metadata, arrived in tokens]


def active_tokens(instance_id) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE, [instance_id])
        return [(pk, place, _loaded(data), _loaded(metadata), arrived)
                for pk, place, data, metadata, arrived in cursor.fetchall()]


class LeanTransaction:
    """A firing in two round trips, for callers outside any transaction: `BEGIN; lock; read` in the first,
    `write; COMMIT` in the second (Django's atomic() would add a BEGIN and a COMMIT round trip of their own).
    Anything raised before the commit rolls back. Callbacks for after the commit are kept in `after_commit`."""

    def __init__(self):
        self.after_commit: list = []
        self.committed = False

    def __enter__(self):
        self.cursor = connection.cursor()
        return self

    def lock_and_read(self, tenant_id: int, *, instance_id=None, token_id=None):
        try:
            key = uuid.UUID(str(token_id if token_id is not None else instance_id))
        except ValueError:
            return None
        lock = _LOCK_BY_TOKEN if token_id is not None else _LOCK_BY_INSTANCE
        read = _ACTIVE_OF_ITS_INSTANCE if token_id is not None else _ACTIVE
        self.cursor.execute(f"BEGIN; {lock}; {read}", [tenant_id, key, key])
        self.cursor.nextset()  # past BEGIN's empty result
        row = self.cursor.fetchone()
        self.cursor.nextset()
        tokens = self.cursor.fetchall()
        if row is None:
            return None
        return _instance(row), [(pk, place, _loaded(data), _loaded(metadata), arrived)
                                for pk, place, data, metadata, arrived in tokens]

    def write_and_commit(self, w) -> None:
        sql, params = write_statement(w)
        self.cursor.execute(f"{sql}; COMMIT", params)
        self.committed = True

    def __exit__(self, exc_type, exc, tb):
        try:
            if not self.committed:
                self.cursor.execute("ROLLBACK")
        finally:
            self.cursor.close()
        return False


def write(w) -> None:
    """Every row of a firing (`firing.Writes`) in one statement."""
    sql, params = write_statement(w)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def write_statement(w) -> tuple[str, list]:
    ctes: list[str] = []
    params: list = []
    if w.moved is not None:
        token_id, place, data, metadata = w.moved
        ctes.append("UPDATE workflows_token SET place = %s, data = %s::jsonb, metadata = %s::jsonb, arrived_at = %s, "
                    "updated_at = %s WHERE id = %s")
        params += [place, _json(data), _json(metadata), w.now, w.now, uuid.UUID(token_id)]
    if w.consumed:
        ctes.append("UPDATE workflows_token SET status = 'consumed', merged_into = %s, updated_at = %s "
                    "WHERE id = ANY(%s::uuid[])")
        params += [w.merged_into and uuid.UUID(w.merged_into), w.now, [uuid.UUID(i) for i in w.consumed]]
    if w.children:
        ctes.append("INSERT INTO workflows_token (id, tenant_id, instance_id, place, status, data, metadata, parents, "  # noqa: S608 - placeholders only
                    "merged_into, arrived_at, created_at, updated_at) VALUES "
                    + ", ".join(["(%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, NULL, %s, %s, %s)"]
                                * len(w.children)))
        for c in w.children:
            params += [c.id, c.tenant_id, c.instance_id, c.place, c.status, _json(c.data), _json(c.metadata),
                       _json(c.parents), c.arrived_at, c.created_at, c.updated_at]
    if w.history:
        ctes.append("INSERT INTO workflows_tokenhistory (token_id, instance_id, at, kind, transition, from_place, "  # noqa: S608 - placeholders only
                    "to_place, actor, data_change) VALUES "
                    + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)"] * len(w.history)))
        for h in w.history:
            params += [uuid.UUID(str(h.token_id)), h.instance_id, h.at, h.kind, h.transition, h.from_place,
                       h.to_place, h.actor, _json(h.data_change)]
    if w.events:
        ctes.append("INSERT INTO workflows_workflowevent (tenant_id, workflow, instance_id, token_id, type, data, "  # noqa: S608 - placeholders only
                    "created_at, published_at) VALUES "
                    + ", ".join(["(%s, %s, %s, %s, %s, %s::jsonb, %s, NULL)"] * len(w.events)))
        for e in w.events:
            params += [e.tenant_id, e.workflow, e.instance_id, e.token_id and uuid.UUID(str(e.token_id)), e.type,
                       _json(e.data), e.created_at]
    i = w.instance
    final = ("UPDATE workflows_workflowinstance SET marking = %s::jsonb, status = %s, enabled_since = %s::jsonb, "
             "next_due_at = %s, fire_count = %s, updated_at = %s, finished_at = %s WHERE id = %s")
    params += [_json(i.marking), i.status, _json(i.enabled_since), i.next_due_at, i.fire_count, w.now,
               i.finished_at, i.id]
    sql = ("WITH " + ", ".join(f"w{n} AS ({cte})" for n, cte in enumerate(ctes)) + " " + final) if ctes else final
    return sql, params
