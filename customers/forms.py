from django import forms

from contexts.forms import HostnameField
from contexts.models import Template

from .models import Plan


class ProvisionForm(forms.Form):
    name = forms.CharField(label="Customer name", max_length=200)
    email = forms.EmailField(label="Contact email", help_text="Also the customer's login.")
    plan = forms.ModelChoiceField(queryset=Plan.objects.filter(is_active=True), empty_label=None)
    template = forms.ModelChoiceField(queryset=Template.objects.filter(is_active=True), empty_label=None)
    hostname = HostnameField()


class SearchForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
