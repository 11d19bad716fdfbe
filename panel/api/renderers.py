"""CSV for billing systems' imports: one row per object, a header naming the fields."""

import csv
import io

from django.http import Http404
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer


def text(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and "results" in data:
            data = data["results"]
        if isinstance(data, dict):  # one object (an OPTIONS answer, say): its fields as rows
            data = [{"field": k, "value": text(v)} for k, v in data.items()]
        rows = list(data or [])
        view = (renderer_context or {}).get("view")
        if rows:
            fields = list(rows[0])
        else:  # no rows: the header still says what would come
            fields = list(view.get_serializer().fields) if view is not None else []
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().encode(self.charset)


class Negotiation(DefaultContentNegotiation):
    """An unknown ?format= is a bad parameter (400), not a missing page (404)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Http404 as exc:
            raise ValidationError({"format": f"Use one of: {', '.join(r.format for r in renderers)}."}) from exc
