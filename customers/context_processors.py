"""The layout's link to the customer side, computed here rather than in base.html."""

from functools import lru_cache
from typing import Any

from django.http import HttpRequest
from django.urls import get_script_prefix, reverse
from django.utils.functional import SimpleLazyObject

from customers.selectors import customers_of_user


def customer_side(request: HttpRequest) -> dict[str, Any]:
    """base.html's "My organisations" link: shown to a signed-in person who is no reseller's
    member and administers a customer, marked current on the customer side's pages (/my/...).

    Whether the person administers a customer is asked of the database only when the layout
    reads it (not by fragments and sections rendered with this context), so once per page, and
    never for a reseller's member.
    """
    url = _my_organisations_url(get_script_prefix())
    return {
        "my_organisations_url": url,
        "my_organisations_link": SimpleLazyObject(lambda: _administers_only_customers(request)),
        "my_organisations_current": request.path.startswith(url),
    }


def _administers_only_customers(request: HttpRequest) -> bool:
    if not request.user.is_authenticated or getattr(request, "membership", None) is not None:
        return False
    return customers_of_user(user=request.user).exists()


@lru_cache(maxsize=8)
def _my_organisations_url(script_prefix: str) -> str:
    return reverse("customer_side:home")
