"""Links to each row of a long list.

reverse() costs some 20 µs a call; a page of 50 servers with three links a row spent a fifth of
its time there. `per_object` reverses a URL name once per page and fills in each object's key.
"""

from collections.abc import Callable

from django.urls import reverse

# Any key an <int:pk> pattern accepts; it must come out of reverse() exactly once, unchanged.
_MARKER = "7301948265"


def per_object(viewname: str) -> Callable[[int], str]:
    """A function of an object's integer key giving what reverse(viewname, args=[key]) gives."""
    url = reverse(viewname, args=[int(_MARKER)])
    if url.count(_MARKER) != 1:
        raise ValueError(f"{viewname} does not take one integer key: {url}")
    head, _, tail = url.partition(_MARKER)
    return lambda pk: f"{head}{int(pk)}{tail}"
