"""Links built once per page for each row agree with reverse()."""

import pytest
from django.urls import NoReverseMatch, reverse

from panel import links


@pytest.mark.parametrize("name", ["server-detail", "server-action", "customer-detail"])
def test_each_object_gets_the_url_reverse_gives(name):
    url = links.per_object(name)
    for pk in (1, 42, 7301948265, 10**12):
        assert url(pk) == reverse(name, args=[pk])


def test_a_name_that_takes_no_key_fails_as_reverse_does():
    with pytest.raises(NoReverseMatch):
        links.per_object("server-list")
