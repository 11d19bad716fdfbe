from django import forms
from django.core.exceptions import ValidationError

from contexts.models import Template
from contexts.validators import normalise_hostname

from .models import Plan


class ProvisionForm(forms.Form):
    name = forms.CharField(label="Customer name", max_length=200)
    email = forms.EmailField(label="Contact email", help_text="Also the customer's login.")
    plan = forms.ModelChoiceField(queryset=Plan.objects.filter(is_active=True), empty_label=None)
    template = forms.ModelChoiceField(queryset=Template.objects.filter(is_active=True), empty_label=None)
    hostname = forms.CharField(max_length=253, help_text="For example www.example.com")

    def clean_hostname(self):
        try:
            return normalise_hostname(self.cleaned_data["hostname"])
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc


class SearchForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
