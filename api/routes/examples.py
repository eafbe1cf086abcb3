"""What the API's docs show as examples, shared by the routes: one reseller's world, seen the
same way by every operation. Nimbus Cloud Partners (a Spanish reseller billed in euros) sells
Shared Contacts to Acme Iberia (acme-iberia.es).

The examples are put on the schemas (pydantic's `json_schema_extra`), so that they are in the
OpenAPI schema where the docs page and schemathesis read them; each must validate against its
own schema (tests/api/test_examples.py).
"""

from typing import Any

from pydantic import ConfigDict

CUSTOMER_ID = "q3VbH0x9LmT2aZ8c"
CUSTOMER_REF: dict[str, Any] = {"id": CUSTOMER_ID, "organisation": "Acme Iberia"}
SUBSCRIPTION_ID = "Xk7pR2mW9sLd4QvN"
# A keyset cursor as the lists answer it (core.pagination); an edited or stale one is the
# first page.
CURSOR = (
    "WyItY3JlYXRlZCIsImEiLFsiMjAyNi0xMS0zMFQwOTo0MTowNy41MTIzMzQrMDA6MDAiLDQ4MjEzXSw1MF0"
    ":1xaLCB:tPDQgW4V5iTdPyai6jvSz9PVfOX163nHIAZAyg-spHk"
)
CURSOR_DESCRIPTION = "`next_cursor` or `previous_cursor` of the page before."


def eur(amount: str) -> dict[str, Any]:
    """Money as the API writes it: an amount string with two decimals, and its currency."""
    return {"amount": amount, "currency": "EUR"}


def examples(*values: Any) -> ConfigDict:
    """A schema's model_config with `values` as its JSON Schema `examples`."""
    return ConfigDict(json_schema_extra={"examples": list(values)})


def example(value: Any) -> dict[str, Any]:
    """A query, path or header parameter's `json_schema_extra`: ninja copies `example` to the
    parameter, where OpenAPI wants one value (its `examples` there is a map, not a list)."""
    return {"example": value}
