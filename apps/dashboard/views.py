from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.providers.selectors import model_list, provider_list
from apps.tenants.selectors import api_key_list, tenants_for_user


@login_required
def overview(request):
    """Per tenant: providers it can route to, its keys and the size of the catalogue it sees."""
    rows = []
    for tenant in tenants_for_user(user=request.user)[:50]:
        providers = list(provider_list(tenant=tenant).filter(enabled=True))
        keys = api_key_list(tenant=tenant)
        rows.append({
            "tenant": tenant,
            "providers": providers,
            "active_keys": keys.filter(revoked_at__isnull=True).count(),
            "models": model_list(tenant=tenant).filter(enabled=True).count(),
        })
    return render(request, "dashboard/overview.html", {"rows": rows})
