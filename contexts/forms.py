from django import forms
from django.core.exceptions import ValidationError

from .models import Template
from .validators import normalise_hostname


class HostnameField(forms.CharField):
    """A server's hostname, lower-cased and checked like the engine checks it."""

    def __init__(self, **kwargs):
        super().__init__(max_length=253, help_text="For example www.example.com", **kwargs)

    def clean(self, value):
        try:
            return normalise_hostname(super().clean(value))
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc


class HostnameForm(forms.Form):
    hostname = HostnameField()


class SSHKeysForm(forms.Form):
    ssh_keys = forms.CharField(
        label="SSH public keys",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="One per line, as in ~/.ssh/id_ed25519.pub. They replace root's authorized keys.",
    )


class ReinstallForm(forms.Form):
    # Plain choices read once: a ModelChoiceField queries again for each look at its choices.
    template = forms.ChoiceField()
    confirm = forms.BooleanField(
        label="I understand that every file on this server is erased.",
        error_messages={"required": "Tick the box to confirm: a reinstall erases the server's data."},
    )

    def __init__(self, *args, server, **kwargs):
        super().__init__(*args, **kwargs)
        self.templates = {str(t.pk): t for t in Template.objects.filter(is_active=True, hosts=server.host_id)}
        self.fields["template"].choices = [(pk, str(t)) for pk, t in self.templates.items()]
        self.fields["template"].initial = str(server.template_id)

    def clean_template(self) -> Template:
        return self.templates[self.cleaned_data["template"]]
