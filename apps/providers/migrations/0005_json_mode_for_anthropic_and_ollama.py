"""JSON mode for Anthropic (the adapter asks for JSON in the system prompt) and Ollama (`format: json` works
for every model), so capability routing does not exclude them for response_format requests."""

from django.db import migrations


def enable(apps, schema_editor):
    ModelEntry = apps.get_model("providers", "ModelEntry")
    ModelEntry.objects.filter(provider_type__in=["anthropic", "ollama"], mode="chat").update(supports_json_mode=True)


class Migration(migrations.Migration):
    dependencies = [("providers", "0004_virtual_models_and_routes")]
    operations = [migrations.RunPython(enable, migrations.RunPython.noop)]
