"""Staff pages for API tokens: list, make (the token shown once), revoke."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from panel.models import ApiToken, ApiTokenScope
from panel.permissions import staff_required

from . import tokens


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. 'WHMCS module'.")
    scope = forms.ChoiceField(choices=ApiTokenScope.choices, initial=ApiTokenScope.PROVISIONING)
    user = forms.ModelChoiceField(
        label="Acts as",
        queryset=get_user_model().objects.none(),
        required=False,
        help_text="Leave empty to act as you (a staff account sees every customer). A customer's login "
        "limits the token to that customer.",
    )
    allowed_networks = forms.CharField(
        label="Allowed source addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "placeholder": "203.0.113.10\n2001:db8::/48"}),
        help_text="One address or network per line. Empty: any address.",
    )

    def __init__(self, *args, maker, **kwargs):
        super().__init__(*args, **kwargs)
        # Staff make tokens for themselves or for customers' logins; only a superuser may make one
        # that acts as another staff account (the audit log would name that person).
        logins = get_user_model().objects.filter(is_active=True)
        if not maker.is_superuser:
            logins = logins.filter(Q(customer__isnull=False) | Q(pk=maker.pk))
        self.fields["user"].queryset = logins.order_by("-is_staff", "username")

    def clean_allowed_networks(self):
        text = self.cleaned_data["allowed_networks"]
        try:
            tokens.parse_networks(text)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc
        return text


@staff_required
@never_cache  # the answer carries the token, once
def token_list(request):
    form = TokenForm(request.POST or None, maker=request.user)
    if request.method == "POST" and form.is_valid():
        values = form.cleaned_data
        token, text = tokens.issue(
            name=values["name"],
            user=values["user"] or request.user,
            scope=values["scope"],
            allowed_networks=values["allowed_networks"],
            created_by=request.user,
        )
        return render(request, "panel/api_token_made.html", {"token": token, "text": text})
    listed = ApiToken.objects.select_related("user", "created_by")
    return render(request, "panel/api_tokens.html", {"form": form, "tokens": listed})


@staff_required
@require_POST
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk)
    tokens.revoke(token, request.user)
    messages.success(request, f"The API token {token} is revoked: it is refused from now on.")
    return redirect("api-tokens")
