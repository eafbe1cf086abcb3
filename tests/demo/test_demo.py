"""The demo data `make demo` loads: every state a reseller and a customer can see, loaded twice
without growing."""

from io import StringIO

from django.core.management import call_command

from customers.models import Customer, CustomerMember
from resellers.models import AuditEvent, Reseller
from subscriptions.models import LicenceChange, Subscription


def counts() -> tuple[int, ...]:
    return (
        Reseller.objects.count(),
        Customer.objects.count(),
        Subscription.objects.count(),
        LicenceChange.objects.count(),
        AuditEvent.objects.count(),
    )


def test_demo_data_covers_every_state_and_loads_once(db):
    call_command("demo_seed", stdout=StringIO())
    first = counts()
    call_command("demo_seed", stdout=StringIO())
    assert counts() == first
    statuses = set(Customer.objects.values_list("status", flat=True))
    assert statuses == set(Customer.Status.values)
    # Every invoice can name its buyer's country (Factur-X BT-55): none is held by the run.
    assert not Customer.objects.filter(country="").exists()
    active = Customer.objects.filter(status=Customer.Status.ACTIVE)
    assert Subscription.objects.filter(customer__in=active).count() == active.count()
    assert LicenceChange.objects.count() > Subscription.objects.count()  # some grew
    member = CustomerMember.objects.select_related("customer").get()
    assert member.user.email == member.customer.contact_email
    assert AuditEvent.objects.filter(customer_public_id=member.customer.public_id).count() >= 3


def test_demo_invoices_show_balances_payments_and_refunds(db):
    from billing import selectors
    from billing.models import Invoice, Payment, Refund

    call_command("demo_seed", stdout=StringIO())
    assert Payment.objects.filter(status=Payment.Status.SUCCEEDED).exists()
    statuses = set(Refund.objects.values_list("status", flat=True))
    assert statuses == {Refund.Status.SUCCEEDED, Refund.Status.PENDING}
    partly = Invoice.objects.filter(
        kind=Invoice.Kind.INVOICE, status=Invoice.Status.OPEN, credit_notes__isnull=False
    ).first()
    assert partly is not None
    assert 0 < selectors.invoice_balance(partly) < partly.total
