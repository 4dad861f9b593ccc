"""The publish sequence of the workflow event outbox.

Event ids are allocated when a transaction inserts its row, before it commits, so ids do not commit in order:
a reader that remembers "everything up to id N" can miss a smaller id that commits after it read. The relay
therefore gives every event it publishes a `seq` from its own sequence, in one transaction per batch, holding a
lock that serialises batches (a Postgres advisory lock; in-process a mutex). Batches commit in `seq` order and a
batch's rows commit together, so a reader that sees `seq` S has seen every smaller `seq`: resuming, replaying
and forwarding to NATS all read by `seq`, never by event id."""

from django.db import models


class PublishedEvent(models.Model):
    seq = models.BigAutoField(primary_key=True)
    event = models.OneToOneField("workflows.WorkflowEvent", on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["seq"]

    def __str__(self):
        return f"#{self.seq} = event {self.event_id}"


class RelayCursor(models.Model):
    """How far a downstream forwarder (NATS) has acknowledged the publish sequence."""

    name = models.CharField(max_length=64, primary_key=True)
    seq = models.BigIntegerField(default=0)

    def __str__(self):
        return f"{self.name} at {self.seq}"
