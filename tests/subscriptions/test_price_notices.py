"""Price increases are announced 30 days ahead (issue 16, stage 2). A renewal keeps the current
price unless the customer was told of the increase at least 30 days before the period starts
(PriceNotice.applies_from); then it charges the lower of the day's price and the announced one.
The daily notice job records one notice per increase and emails the customer's contacts in the
customer's language, however often it runs; the pages show the upcoming price."""

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils import formats, translation

from core.models import OutboundEmail
from core.money import money_format
from subscriptions import services, tasks
from subscriptions.models import Charge, Plan, PriceNotice, PriceSource, Subscription
from tests.factories import (
    Tenant,
    admin_of,
    buy,
    owner_of,
    price_rule_for,
    special_price_for,
    tier_for,
)

D = Decimal
TODAY = date(2026, 3, 10)
DAY = timedelta(days=1)
TEMPLATE = "price_increase_notice"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _today() -> Iterator[None]:
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def sub(tenant: Tenant, other_tenant: Tenant, plans: dict[str, Plan]) -> Subscription:
    """5 flexible licences bought on 10 March at the list price, 4.00 EUR (periods start on
    the 10th); the reseller is 20 % off (cost 3.20)."""
    tier_for(tenant.reseller, D("20"))
    tier_for(other_tenant.reseller, D("20"), name="Other")
    # The other reseller's customer has no increase: it is never told of one.
    buy(owner_of(other_tenant), plans[Plan.Kind.FLEXIBLE], licences=2)
    return buy(owner_of(tenant), plans[Plan.Kind.FLEXIBLE], licences=5)


def notice_job(day: date) -> int:
    """Beat's daily run of the notice job on `day`; returns how many notices it recorded."""
    before = PriceNotice.objects.count()
    with time_machine.travel(day, tick=False):
        tasks.subscriptions_send_price_notices()
    return PriceNotice.objects.count() - before


def renew(sub: Subscription, day: date) -> Charge:
    services.subscription_renew_due(subscription_id=sub.pk, today=day)
    return Charge.objects.get(subscription=sub, kind=Charge.Kind.PERIOD, period_start=day)


def test_the_beat_schedule_runs_the_notice_job_daily():
    tasks_run = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "subscriptions.tasks.subscriptions_send_price_notices" in tasks_run


def test_without_notice_a_renewal_keeps_the_price(tenant, plans, sub):
    price_rule_for(
        tenant.reseller, plans[Plan.Kind.FLEXIBLE], kind="fixed", price=D("4.80"), valid_from=TODAY
    )
    for day in (date(2026, 4, 10), date(2026, 5, 10)):
        charge = renew(sub, day)
        # The old price, at the day's cost: the margin is what is left of it.
        assert (charge.monthly_price, charge.amount, charge.margin_amount) == (
            D("4.00"),
            D("20.00"),
            D("4.00"),
        )
        assert (charge.price_source, charge.price_rule) == (PriceSource.PERIOD_PRICE, None)
    sub.refresh_from_db()
    assert sub.monthly_price == D("4.00")


def test_a_far_increase_is_announced_once_its_period_is_within_40_days(tenant, plans, sub):
    price_rule_for(
        tenant.reseller,
        plans[Plan.Kind.FLEXIBLE],
        kind="fixed",
        price=D("4.80"),
        valid_from=date(2026, 4, 15),
    )
    # 10 April is not dearer; 10 May is more than 40 days away until 31 March.
    assert notice_job(TODAY + DAY) == 0
    assert notice_job(date(2026, 3, 30)) == 0
    assert notice_job(date(2026, 3, 31)) == 1
    assert PriceNotice.objects.get().applies_from == date(2026, 5, 10)
    assert renew(sub, date(2026, 4, 10)).price_source == PriceSource.LIST_PRICE
    assert renew(sub, date(2026, 5, 10)).monthly_price == D("4.80")


def test_an_increase_applies_from_the_first_period_30_days_after_the_notice(tenant, plans, sub):
    rule = price_rule_for(
        tenant.reseller,
        plans[Plan.Kind.FLEXIBLE],
        kind="fixed",
        price=D("4.80"),
        valid_from=TODAY + 2 * DAY,
    )
    assert notice_job(TODAY + 2 * DAY) == 1
    notice = PriceNotice.objects.get()
    assert (notice.subscription, notice.old_monthly_price, notice.new_monthly_price) == (
        sub,
        D("4.00"),
        D("4.80"),
    )
    # 10 April is 29 days after 12 March: too soon. The first period 30 days later: 10 May.
    assert (notice.applies_from, notice.currency) == (date(2026, 5, 10), "EUR")
    assert notice.sent_at.date() == TODAY + 2 * DAY

    april = renew(sub, date(2026, 4, 10))
    assert (april.monthly_price, april.price_source) == (D("4.00"), PriceSource.PERIOD_PRICE)
    may = renew(sub, date(2026, 5, 10))
    assert (may.monthly_price, may.amount, may.cost_amount, may.margin_amount) == (
        D("4.80"),
        D("24.00"),
        D("16.00"),
        D("8.00"),
    )
    assert (may.price_source, may.price_rule) == (PriceSource.PRICE_RULE, rule)
    # Applied: nothing more to announce.
    assert notice_job(date(2026, 5, 11)) == 0


def test_a_renewal_charges_no_more_than_was_announced(tenant, plans, sub):
    flexible = plans[Plan.Kind.FLEXIBLE]
    price_rule_for(tenant.reseller, flexible, kind="fixed", price=D("4.80"), valid_from=TODAY)
    assert notice_job(TODAY) == 1  # 10 April is 31 days away: at least 30 days ahead
    notice = PriceNotice.objects.get()
    assert notice.applies_from == date(2026, 4, 10)
    # The reseller raises it again later, and the customer is told of that in turn.
    price_rule_for(
        tenant.reseller, flexible, kind="fixed", price=D("5.20"), valid_from=TODAY + 5 * DAY
    )
    april = renew(sub, date(2026, 4, 10))
    assert april.monthly_price == D("4.80")  # min(5.20 quoted, 4.80 announced)
    assert april.price_source == PriceSource.PERIOD_PRICE
    assert notice_job(date(2026, 4, 10)) == 1
    second = PriceNotice.objects.latest("sent_at", "id")
    assert (second.old_monthly_price, second.new_monthly_price, second.applies_from) == (
        D("4.80"),
        D("5.20"),
        date(2026, 5, 10),
    )
    assert renew(sub, date(2026, 5, 10)).monthly_price == D("5.20")


def test_an_increase_after_the_notice_is_announced_again(tenant, plans, sub):
    flexible = plans[Plan.Kind.FLEXIBLE]
    price_rule_for(tenant.reseller, flexible, kind="fixed", price=D("4.80"), valid_from=TODAY)
    assert notice_job(TODAY) == 1
    # A lower price than announced needs no other notice; a higher one does.
    price_rule_for(tenant.reseller, flexible, kind="fixed", price=D("4.60"), valid_from=TODAY)
    assert notice_job(TODAY + DAY) == 0
    price_rule_for(tenant.reseller, flexible, kind="fixed", price=D("5.00"), valid_from=TODAY)
    assert notice_job(TODAY + 2 * DAY) == 1
    assert renew(sub, date(2026, 4, 10)).monthly_price == D("4.80")


def test_the_job_is_idempotent_one_notice_one_email(tenant, plans, sub):
    tenant.customer.language = "de"
    tenant.customer.save()
    special_price_for(
        tenant.customer, plans[Plan.Kind.FLEXIBLE], D("4.40"), valid_from=TODAY + 20 * DAY
    )
    assert notice_job(TODAY) == 1
    assert notice_job(TODAY) == 0
    assert notice_job(TODAY + DAY) == 0
    assert PriceNotice.objects.count() == 1
    email = OutboundEmail.objects.get(template=TEMPLATE)
    assert (email.to, email.language) == (tenant.customer.contact_email, "de")


def test_the_notice_goes_to_the_contact_and_the_administrators_in_the_customers_language(
    tenant, plans, sub
):
    tenant.customer.language = "fr"
    tenant.customer.save()
    admin = admin_of(tenant.customer, language="de")
    price_rule_for(
        tenant.reseller,
        plans[Plan.Kind.FLEXIBLE],
        kind="markup",
        markup_percent=D("50"),
        valid_from=TODAY,
    )
    assert notice_job(TODAY) == 1
    emails = OutboundEmail.objects.filter(template=TEMPLATE)
    assert sorted(emails.values_list("to", "language")) == sorted(
        [(tenant.customer.contact_email, "fr"), (admin.email, "fr")]
    )
    body = emails.first().body_text  # type: ignore[union-attr]
    with translation.override("fr"):
        assert money_format(D("4.80"), "EUR") in body  # 3.20 + 50 %
        assert money_format(D("4.00"), "EUR") in body
        assert formats.date_format(date(2026, 4, 10), "DATE_FORMAT") in body
    assert tenant.customer.organisation in body
    assert f"/subscriptions/{sub.public_id}/" in body
    # The customer is never told the reseller's cost.
    assert money_format(D("3.20"), "EUR") not in body


def test_nothing_is_announced_for_a_decrease_or_a_trial(tenant, plans, sub):
    flexible = plans[Plan.Kind.FLEXIBLE]
    special_price_for(tenant.customer, flexible, D("3.50"), valid_from=TODAY)
    other = tenant.customer.__class__.objects.create(
        reseller=tenant.reseller,
        organisation="Trialling",
        domain="trialling.example",
        contact_name="T",
        contact_email="t@trialling.example",
        status="active",
    )
    buy(owner_of(tenant), plans[Plan.Kind.TRIAL], licences=2, customer=other)
    assert notice_job(TODAY) == 0
    assert renew(sub, date(2026, 4, 10)).monthly_price == D("3.50")
    assert not OutboundEmail.objects.filter(template=TEMPLATE).exists()


def test_the_pages_show_the_upcoming_price_and_its_date(tenant, plans, sub, client_for):
    price_rule_for(
        tenant.reseller, plans[Plan.Kind.FLEXIBLE], kind="fixed", price=D("4.80"), valid_from=TODAY
    )
    assert notice_job(TODAY) == 1
    on = formats.date_format(date(2026, 4, 10), "DATE_FORMAT")
    reseller_page = client_for(tenant.owner).get(
        reverse("subscriptions:detail", kwargs={"subscription_id": sub.public_id})
    )
    body = reseller_page.content.decode()
    assert 'id="upcoming-price"' in body
    assert money_format(D("4.80"), "EUR") in body and on in body
    customer_page = client_for(admin_of(tenant.customer)).get(
        reverse(
            "my_subscriptions:detail",
            kwargs={"customer_id": tenant.customer.public_id, "subscription_id": sub.public_id},
        )
    )
    body = customer_page.content.decode()
    assert 'id="upcoming-price"' in body
    assert money_format(D("4.80"), "EUR") in body and on in body
    assert money_format(D("3.20"), "EUR") not in body and "margin" not in body.lower()


def test_a_plan_change_at_the_end_of_the_term_starts_at_no_more_than_was_confirmed(tenant, plans):
    """Annual -> flexible, scheduled for the end of the term at the flexible price the page
    showed (4.00); the reseller then raises its flexible price to 9.00. The new plan starts at
    4.00 (no notice could reach the customer 30 days ahead: the job looks at the current plan's
    renewals), and the increase follows as any other: announced, then applied 30 days on."""
    flexible = plans[Plan.Kind.FLEXIBLE]
    annual = buy(owner_of(tenant), plans[Plan.Kind.ANNUAL_MONTHLY], licences=5)
    term_end = date(2027, 3, 10)
    assert annual.term_end == term_end
    scheduled_on = date(2027, 2, 20)
    with time_machine.travel(scheduled_on, tick=False):
        services.subscription_renew_due(subscription_id=annual.pk, today=scheduled_on)
        annual.refresh_from_db()
        services.subscription_change_plan(
            membership=owner_of(tenant), subscription=annual, plan=flexible
        )
        price_rule_for(
            tenant.reseller, flexible, kind="fixed", price=D("9.00"), valid_from=date(2027, 3, 1)
        )
    day = scheduled_on
    while day < term_end:
        assert notice_job(day) == 0
        day += DAY
    with time_machine.travel(term_end, tick=False):
        assert renew(annual, term_end).monthly_price == D("4.00")
        annual.refresh_from_db()
        assert (annual.plan, annual.monthly_price) == (flexible, D("4.00"))
    # From now on a flexible subscription at 4.00 whose quote is 9.00: announced today, the
    # increase applies from the first period starting at least 30 days on (10 April).
    assert notice_job(term_end) == 1
    with time_machine.travel(date(2027, 4, 10), tick=False):
        assert renew(annual, date(2027, 4, 10)).monthly_price == D("9.00")


def test_a_plan_change_at_the_end_of_the_term_takes_a_lower_price_at_once(tenant, plans):
    flexible = plans[Plan.Kind.FLEXIBLE]
    annual = buy(owner_of(tenant), plans[Plan.Kind.ANNUAL_MONTHLY], licences=5)
    services.subscription_change_plan(
        membership=owner_of(tenant), subscription=annual, plan=flexible
    )
    price_rule_for(
        tenant.reseller, flexible, kind="fixed", price=D("3.50"), valid_from=date(2026, 6, 1)
    )
    for day in (date(2026, 4, 10), date(2027, 3, 10)):
        with time_machine.travel(day, tick=False):
            services.subscription_renew_due(subscription_id=annual.pk, today=day)
    charge = Charge.objects.get(subscription=annual, period_start=date(2027, 3, 10))
    assert charge.monthly_price == D("3.50")
