"""The Customers page's cached totals follow every write path that changes a customer: each
service of customers.services that does is run here, and after it every total the page had
cached (each status filter, with and without a search) equals a fresh count. A new service must
be named below, so a path that changes customers without moving the list's version on
(customers.list_version; e.g. a bulk `.update()`, which sends no signal) fails here."""

import inspect
from collections.abc import Callable
from typing import Any

from customers import selectors, services
from customers.models import Customer, TransferToken
from resellers.models import Membership, Reseller
from tests.factories import CustomerFactory, Tenant, UserFactory

# Services that change no customer row (what they write is elsewhere).
LEAVE_CUSTOMERS_AS_THEY_ARE = {
    "customer_contact_check": "reads only",
    "customer_invitation_opened": "the invitation's opened_at",
    "transfer_token_create": "a transfer token",
    "transfer_token_withdraw": "a transfer token",
}
SEARCHES = ["", "renamed"]


def _totals_current(*resellers: Reseller) -> None:
    """Every total the page shows is right (and is now cached, for the next check)."""
    for reseller in resellers:
        for status in ["", *selectors.VISIBLE_STATUSES, *selectors.FORMER_STATUSES]:
            for query in SEARCHES:
                shown = selectors.customer_page(reseller=reseller, query=query, status=status)
                fresh = selectors.customer_list(reseller=reseller, query=query, status=status)
                assert shown.count == fresh.count(), (reseller.name, status, query)


def _owner(tenant: Tenant) -> Membership:
    return Membership.objects.get(user=tenant.owner, reseller=tenant.reseller)


def test_every_service_that_changes_a_customer_moves_the_lists_totals_on(
    tenant, other_tenant, django_capture_on_commit_callbacks
):
    staff = UserFactory(is_staff=True)
    contact = UserFactory(email="kim@fresh.example")
    state: dict[str, Any] = {}

    def invite() -> None:
        state["fresh"] = services.customer_invite(
            membership=_owner(tenant),
            contact_name="Kim",
            contact_email="kim@fresh.example",
            customer_type=Customer.Type.DOMAIN,
            domain="fresh.example",
            organisation="Fresh Org",
            country="GB",
        )

    def withdraw() -> None:
        services.customer_invitation_withdraw(membership=_owner(tenant), customer=state["fresh"])

    def resend() -> None:
        services.customer_invitation_resend(
            membership=_owner(tenant), customer=Customer.objects.get(pk=state["fresh"].pk)
        )

    def accept() -> None:
        invitation = state["fresh"].invitations.order_by("-created_at").first()
        services.customer_invitation_accept(
            invitation=invitation, user=contact, terms_accepted=True
        )

    def update_contact() -> None:
        services.customer_update_contact(
            membership=_owner(tenant),
            customer=Customer.objects.get(pk=state["fresh"].pk),
            organisation="Renamed Org",
        )

    def update_contact_by_staff() -> None:
        services.customer_update_contact_by_staff(
            customer=Customer.objects.get(pk=tenant.customer.pk),
            by=staff,
            organisation="Renamed By Staff",
        )

    def transfer() -> None:
        services.customer_transfer(
            customer=Customer.objects.get(pk=tenant.customer.pk),
            to_reseller=other_tenant.reseller,
            actor=staff,
            via="staff",
        )

    def import_() -> None:
        customer = CustomerFactory(reseller=other_tenant.reseller, organisation="Renamed Too")
        token = TransferToken(customer=customer, to_reseller=tenant.reseller)
        raw = token.renew_token()
        token.save()
        services.customer_import(membership=_owner(tenant), domain=customer.domain, token=raw)

    def access_revoke() -> None:
        services.customer_access_revoke(
            customer=Customer.objects.get(pk=state["fresh"].pk), user=contact
        )

    steps: dict[str, Callable[[], None]] = {
        "customer_invite": invite,
        "customer_invitation_withdraw": withdraw,
        "customer_invitation_resend": resend,
        "customer_invitation_accept": accept,
        "customer_update_contact": update_contact,
        "customer_update_contact_by_staff": update_contact_by_staff,
        "customer_transfer": transfer,
        "customer_import": import_,
        "customer_access_revoke": access_revoke,
    }
    public = {name for name in services.__all__ if inspect.isfunction(getattr(services, name))}
    assert public == set(steps) | set(LEAVE_CUSTOMERS_AS_THEY_ARE), (
        "name each service of customers.services in `steps` (it changes customers: run it) "
        "or in LEAVE_CUSTOMERS_AS_THEY_ARE"
    )

    resellers = (tenant.reseller, other_tenant.reseller)
    for name, step in steps.items():
        _totals_current(*resellers)  # counted and cached
        with django_capture_on_commit_callbacks(execute=True):
            step()
        try:
            _totals_current(*resellers)
        except AssertionError as error:
            raise AssertionError(f"{name} left the Customers page's totals stale") from error
