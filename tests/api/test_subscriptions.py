"""The API's subscriptions (issue 17): the pages' forms, selectors and services behind keys and
scopes; the order preview equal to what the order charges; Idempotency-Key on every change;
expected counts and If-Match on licence changes (a stale one is a 409); tenancy."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.core.cache import cache

from api.models import ApiKey, Scope
from api.routes import subscriptions as routes
from customers.models import Customer
from resellers.models import AuditEvent, Membership
from resellers.roles import Role
from subscriptions.models import Charge, LicenceChange, Order, Plan, Subscription
from tests.factories import (
    CustomerFactory,
    SubscriptionFactory,
    Tenant,
    buy,
    catalogue,
    member_of,
    owner_of,
)
from tests.support.api import ApiClient, api_key
from tests.support.concurrency import in_parallel

LIST = "/api/v1/subscriptions/"
BOUGHT_ON = date(2026, 3, 10)  # periods run from the 10th to the 10th
ADDED_ON = date(2026, 3, 20)  # 21 of the 31 days of March 10 - April 9 remain


def url(subscription: Subscription, action: str = "") -> str:
    return f"{LIST}{subscription.public_id}" + (f"/{action}" if action else "")


def change(key: str, **headers: str) -> dict[str, str]:
    return {"Idempotency-Key": key, **headers}


@pytest.fixture
def key(tenant: Tenant, other_tenant: Tenant) -> str:
    return api_key(owner_of(tenant), name="PSA")[1]


@pytest.fixture
def client(key: str) -> ApiClient:
    return ApiClient(key)


@pytest.fixture
def flexible(tenant: Tenant, plans: dict[str, Plan]) -> Subscription:
    """Five licences on the flexible plan, bought on BOUGHT_ON."""
    with time_machine.travel(BOUGHT_ON, tick=False):
        return buy(owner_of(tenant), plans[Plan.Kind.FLEXIBLE], licences=5)


def sales_key(tenant: Tenant, *scopes: str) -> str:
    """A key acting with the sales role. Only owners and admins make keys, so a key made by an
    admin and then written down to sales (the member too, so that it stays usable) stands for
    one: what sales may not do, the services refuse, whatever the key."""
    member = member_of(tenant.reseller, Role.ADMIN)
    made, raw = api_key(member, *scopes)
    Membership.objects.filter(pk=member.pk).update(role=Role.SALES)
    ApiKey.objects.filter(pk=made.pk).update(role=Role.SALES)
    return raw


# Buy, with the preview's amount


def test_buy_charges_what_the_preview_said(tenant, other_tenant, plans, client):
    plan = plans[Plan.Kind.FLEXIBLE]
    with time_machine.travel(BOUGHT_ON, tick=False):
        preview = client.get(
            f"{LIST}preview",
            {"customer": tenant.customer.public_id, "plan": plan.public_id, "licences": 7},
        )
        assert preview.status_code == 200, preview.content
        quote = preview.json()
        response = client.post_json(
            LIST,
            {"customer": tenant.customer.public_id, "plan": plan.public_id, "licences": 7},
            headers=change("buy-1"),
        )
    assert response.status_code == 201, response.content
    order = response.json()
    # The first period in full: 7 x 4.00.
    assert quote["due_now"] == order["amount"] == {"amount": "28.00", "currency": "EUR"}
    assert quote["recurring_amount"] == {"amount": "28.00", "currency": "EUR"}
    assert quote["cost_now"] is not None  # the owner sees margins
    subscription = Subscription.objects.get(public_id=order["subscription"]["id"])
    assert subscription.customer == tenant.customer and subscription.licences == 7
    assert response["Location"] == url(subscription)
    charged = Charge.objects.get(subscription=subscription)
    assert charged.amount == Decimal(order["amount"]["amount"])
    assert order["subscription"]["status"] == "active"
    assert order["subscription"]["payer"] == "reseller_card"
    event = AuditEvent.objects.get(action="subscription.bought")
    assert event.via == "PSA" and event.actor == tenant.owner


def test_plans_on_sale_are_listed_with_their_ids(tenant, other_tenant, plans, client):
    response = client.get(f"{LIST}plans")
    assert response.status_code == 200
    listed = {plan["id"]: plan for plan in response.json()}
    assert set(listed) == {plan.public_id for plan in plans.values()}
    flexible_plan = listed[plans[Plan.Kind.FLEXIBLE].public_id]
    assert flexible_plan["list_price"] == {"amount": "4.00", "currency": "EUR"}
    assert listed[plans[Plan.Kind.TRIAL].public_id]["list_price"] is None


def test_the_same_idempotency_key_twice_is_one_purchase(tenant, other_tenant, plans, client):
    body = {
        "customer": tenant.customer.public_id,
        "plan": plans[Plan.Kind.FLEXIBLE].public_id,
        "licences": 3,
    }
    first = client.post_json(LIST, body, headers=change("once"))
    again = client.post_json(LIST, body, headers=change("once"))
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert Order.objects.filter(customer=tenant.customer).count() == 1
    # The same header for another customer's purchase is refused, not taken as that one.
    other_customer = CustomerFactory(reseller=tenant.reseller)
    reused = client.post_json(
        LIST, {**body, "customer": other_customer.public_id}, headers=change("once")
    )
    assert reused.status_code == 422
    assert [e["field"] for e in reused.json()["errors"]] == ["Idempotency-Key"]


def test_two_resellers_may_send_the_same_idempotency_key(tenant, other_tenant, plans, client):
    theirs = ApiClient(api_key(owner_of(other_tenant))[1])
    for customer, api in ((tenant.customer, client), (other_tenant.customer, theirs)):
        body = {
            "customer": customer.public_id,
            "plan": plans[Plan.Kind.FLEXIBLE].public_id,
            "licences": 2,
        }
        assert api.post_json(LIST, body, headers=change("same")).status_code == 201
    assert Order.objects.count() == 2


# Licence changes: the expected count or If-Match


def test_licence_change_with_the_expected_count_charges_the_preview(
    tenant, other_tenant, flexible, client
):
    with time_machine.travel(ADDED_ON, tick=False):
        preview = client.get(url(flexible, "licences/preview"), {"licences": 8})
        assert preview.status_code == 200, preview.content
        response = client.post_json(
            url(flexible, "licences"),
            {"licences": 8, "expected_licences": 5},
            headers=change("add-3"),
        )
    assert response.status_code == 200, response.content
    order = response.json()
    quote = preview.json()
    assert (quote["current_licences"], quote["new_licences"]) == (5, 8)
    # 3 licences at 4.00 for 21 of 31 days.
    assert quote["due_now"] == order["amount"] == {"amount": "8.13", "currency": "EUR"}
    assert (order["kind"], order["licences_before"], order["licences_after"]) == ("add", 5, 8)
    assert order["subscription"]["licences"] == 8
    flexible.refresh_from_db()
    assert flexible.licences == 8
    proration = Charge.objects.get(subscription=flexible, kind="proration")
    assert proration.amount == Decimal("8.13")


def test_a_stale_change_is_a_409_with_the_current_count(tenant, other_tenant, flexible, client):
    response = client.post_json(
        url(flexible, "licences"),
        {"licences": 9, "expected_licences": 4},
        headers=change("stale"),
    )
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["licences"] == 5 and "5" in problem["detail"]
    assert response["ETag"] == client.get(url(flexible))["ETag"]
    flexible.refresh_from_db()
    assert flexible.licences == 5
    assert not Order.objects.filter(kind="add").exists()


def test_if_match_on_the_etag(tenant, other_tenant, flexible, client):
    tag = client.get(url(flexible))["ETag"]
    first = client.post_json(
        url(flexible, "licences"), {"licences": 6}, headers=change("m-1", **{"If-Match": tag})
    )
    assert first.status_code == 200, first.content
    new_tag = first["ETag"]
    assert new_tag != tag and client.get(url(flexible))["ETag"] == new_tag
    # The old ETag is stale: 409, nothing ordered.
    stale = client.post_json(
        url(flexible, "licences"), {"licences": 7}, headers=change("m-2", **{"If-Match": tag})
    )
    assert stale.status_code == 409 and stale.json()["licences"] == 6
    # A repeat of the first order still answers with it, though its ETag is old now.
    repeat = client.post_json(
        url(flexible, "licences"), {"licences": 6}, headers=change("m-1", **{"If-Match": tag})
    )
    assert repeat.status_code == 200 and repeat.json()["id"] == first.json()["id"]
    # Back to 6 from 7 is a change too: the ETag names the ledger row, not only the count.
    client.post_json(
        url(flexible, "licences"), {"licences": 7, "expected_licences": 6}, headers=change("m-3")
    )
    client.post_json(
        url(flexible, "licences"), {"licences": 6, "expected_licences": 7}, headers=change("m-4")
    )
    again = client.post_json(
        url(flexible, "licences"), {"licences": 8}, headers=change("m-5", **{"If-Match": new_tag})
    )
    assert again.status_code == 409
    flexible.refresh_from_db()
    assert flexible.licences == 6
    assert Order.objects.filter(subscription=flexible).exclude(kind="purchase").count() == 3


def test_a_licence_change_needs_a_count_to_start_from(tenant, other_tenant, flexible, client):
    response = client.post_json(url(flexible, "licences"), {"licences": 6}, headers=change("x"))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["expected_licences"]


# Idempotency under concurrency (real PostgreSQL, one connection per thread)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("made_from", ["expected_licences", "If-Match"])
def test_twenty_parallel_licence_changes_with_one_key_are_one_order(
    made_from, tenant, other_tenant
):
    plans = catalogue()
    subscription = buy(owner_of(tenant), plans[Plan.Kind.FLEXIBLE], licences=10)
    key = api_key(owner_of(tenant))[1]
    body: dict[str, int] = {"licences": 12}
    headers = change("one-script-run")
    if made_from == "If-Match":
        # Those that read the count after the first order see a stale ETag: still its order.
        headers["If-Match"] = ApiClient(key).get(url(subscription))["ETag"]
    else:
        body["expected_licences"] = 10

    def order(n: int) -> tuple[int, dict]:
        response = ApiClient(key).post_json(url(subscription, "licences"), body, headers=headers)
        return response.status_code, response.json()

    results, errors = in_parallel(20, order)
    assert errors == []
    assert {status for status, _ in results} == {200}
    assert len({body["id"] for _, body in results}) == 1
    subscription.refresh_from_db()
    assert subscription.licences == 12
    assert Order.objects.filter(subscription=subscription, kind="add").count() == 1
    assert LicenceChange.objects.filter(subscription=subscription, kind="add").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_purchases_with_one_key_are_one_order(tenant, other_tenant):
    plans = catalogue()
    key = api_key(owner_of(tenant))[1]
    body = {
        "customer": tenant.customer.public_id,
        "plan": plans[Plan.Kind.FLEXIBLE].public_id,
        "licences": 4,
    }

    def order(n: int) -> tuple[int, str]:
        response = ApiClient(key).post_json(LIST, body, headers=change("one-purchase"))
        return response.status_code, response.json()["id"]

    results, errors = in_parallel(20, order)
    assert errors == []
    assert {status for status, _ in results} == {201}
    assert len({order_id for _, order_id in results}) == 1
    assert Order.objects.filter(customer=tenant.customer).count() == 1
    assert Subscription.objects.filter(customer=tenant.customer).count() == 1


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_suspensions_with_one_key_are_one_suspension(tenant, other_tenant):
    plans = catalogue()
    subscription = buy(owner_of(tenant), plans[Plan.Kind.FLEXIBLE], licences=3)
    key = api_key(owner_of(tenant))[1]

    def suspend(n: int) -> tuple[int, dict]:
        response = ApiClient(key).post(url(subscription, "suspend"), headers=change("pause"))
        return response.status_code, response.json()

    results, errors = in_parallel(20, suspend)
    assert errors == []
    assert [status for status, _ in results] == [200] * 20
    assert {body["status"] for _, body in results} == {"suspended"}
    assert AuditEvent.objects.filter(action="subscription.suspended").count() == 1


# Plan, renewal, cancel, suspend, reactivate


@pytest.mark.redis
def test_suspend_reactivate_and_cancel_each_once_per_key(tenant, other_tenant, flexible, client):
    suspended = client.post(url(flexible, "suspend"), headers=change("s-1"))
    assert suspended.status_code == 200, suspended.content
    assert suspended.json()["status"] == "suspended"
    assert suspended.json()["suspension_reason"] == "reseller_initiated"
    # The same key again: the first answer, nothing done twice.
    repeat = client.post(url(flexible, "suspend"), headers=change("s-1"))
    assert repeat.status_code == 200 and repeat.json() == suspended.json()
    assert repeat["Idempotent-Replayed"] == "true"
    # A new key asks again, and the service says why not.
    refused = client.post(url(flexible, "suspend"), headers=change("s-2"))
    assert refused.status_code == 422
    # The key of the suspension for another change is refused.
    reused = client.post(url(flexible, "reactivate"), headers=change("s-1"))
    assert reused.status_code == 422
    assert [e["field"] for e in reused.json()["errors"]] == ["Idempotency-Key"]
    reactivated = client.post(url(flexible, "reactivate"), headers=change("r-1"))
    assert reactivated.status_code == 200 and reactivated.json()["status"] == "active"
    cancelled = client.post(url(flexible, "cancel"), headers=change("c-1"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    actions = list(
        AuditEvent.objects.filter(object_id=flexible.public_id)
        .exclude(action="subscription.period_started")  # months since BOUGHT_ON, caught up
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "subscription.bought",
        "subscription.suspended",
        "subscription.reactivated",
        "subscription.cancelled",
    ]


@pytest.mark.redis
def test_a_request_while_one_with_its_key_runs_waits_then_is_a_409(
    tenant, other_tenant, flexible, client, monkeypatch
):
    monkeypatch.setattr(routes, "IDEMPOTENCY_WAIT_SECONDS", 0.3)
    running = routes.idempotency_record(tenant.reseller, "busy") + ":running"
    assert cache.add(running, 1, 60)
    try:
        response = client.post(url(flexible, "suspend"), headers=change("busy"))
    finally:
        cache.delete(running)
    assert response.status_code == 409 and response["Retry-After"] == "1"
    assert "licences" not in response.json()
    flexible.refresh_from_db()
    assert flexible.status == "active"
    # Once the other is done (here: never was), the key is free.
    done = client.post(url(flexible, "suspend"), headers=change("busy"))
    assert done.status_code == 200 and done.json()["status"] == "suspended"


def test_a_change_without_an_idempotency_key_is_refused(tenant, other_tenant, flexible, client):
    response = client.post(url(flexible, "cancel"))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["Idempotency-Key"]
    flexible.refresh_from_db()
    assert flexible.status == "active"


@pytest.mark.redis
def test_change_plan_and_renewal_settings(tenant, other_tenant, plans, flexible, client):
    annual = plans[Plan.Kind.ANNUAL_MONTHLY]
    changed = client.post_json(
        url(flexible, "plan"), {"plan": annual.public_id}, headers=change("p-1")
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["plan"]["id"] == annual.public_id and body["term"] is not None
    renewal = client.put_json(
        url(flexible, "renewal"),
        {"setting": "renew_with_count", "renewal_licences": 9},
        headers=change("r-1"),
    )
    assert renewal.status_code == 200, renewal.content
    assert renewal.json()["renewal"] == {"setting": "renew_with_count", "licences": 9}
    missing = client.put_json(
        url(flexible, "renewal"), {"setting": "renew_with_count"}, headers=change("r-2")
    )
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["renewal_licences"]
    # Annual to flexible waits for the end of the term.
    back = client.post_json(
        url(flexible, "plan"),
        {"plan": plans[Plan.Kind.FLEXIBLE].public_id},
        headers=change("p-2"),
    )
    assert back.status_code == 200
    assert back.json()["scheduled_plan"]["id"] == plans[Plan.Kind.FLEXIBLE].public_id


# Scopes and roles


def test_a_key_without_the_scope_is_refused_with_403(tenant, other_tenant, plans, flexible):
    reader = ApiClient(api_key(owner_of(tenant), Scope.READ)[1])
    assert reader.get(url(flexible)).status_code == 200
    refused = reader.post(url(flexible, "cancel"), headers=change("c"))
    assert refused.status_code == 403
    assert "subscriptions:write" in refused.json()["detail"]
    writer = ApiClient(api_key(owner_of(tenant), Scope.SUBSCRIPTIONS_WRITE)[1])
    assert writer.get(url(flexible)).status_code == 403
    flexible.refresh_from_db()
    assert flexible.status == "active"


def test_sales_may_add_licences_but_not_cancel_nor_see_margins(tenant, other_tenant, flexible):
    sales = ApiClient(sales_key(tenant))
    refused = sales.post(url(flexible, "cancel"), headers=change("c"))
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
    flexible.refresh_from_db()
    assert flexible.status == "active"
    assert sales.post(url(flexible, "suspend"), headers=change("s")).status_code == 403
    added = sales.post_json(
        url(flexible, "licences"), {"licences": 6, "expected_licences": 5}, headers=change("a")
    )
    assert added.status_code == 200
    removed = sales.post_json(
        url(flexible, "licences"), {"licences": 5, "expected_licences": 6}, headers=change("r")
    )
    assert removed.status_code == 403
    detail = sales.get(url(flexible)).json()
    assert detail["cost"] is None and detail["margin"] is None
    owner_view = ApiClient(api_key(owner_of(tenant))[1]).get(url(flexible)).json()
    assert owner_view["cost"] is not None and owner_view["margin"] is not None
    assert Decimal(owner_view["margin"]["amount"]) == Decimal(
        owner_view["monthly_price"]["amount"]
    ) - Decimal(owner_view["cost"]["amount"])


# Tenancy


def test_another_resellers_subscription_is_a_404_exactly_like_a_missing_one(
    tenant, other_tenant, plans, client
):
    theirs = buy(owner_of(other_tenant), plans[Plan.Kind.FLEXIBLE], licences=2)
    missing = f"{LIST}AAAAAAAAAAAAAAAA"
    answers = [
        (client.get(url(theirs)), client.get(missing)),
        (
            client.get(url(theirs, "licences/preview"), {"licences": 3}),
            client.get(f"{missing}/licences/preview", {"licences": 3}),
        ),
        (
            client.post_json(
                url(theirs, "licences"),
                {"licences": 3, "expected_licences": 2},
                headers=change("t-1"),
            ),
            client.post_json(
                f"{missing}/licences",
                {"licences": 3, "expected_licences": 2},
                headers=change("t-2"),
            ),
        ),
        (
            client.post(url(theirs, "cancel"), headers=change("t-3")),
            client.post(f"{missing}/cancel", headers=change("t-4")),
        ),
    ]
    for their_answer, missing_answer in answers:
        assert their_answer.status_code == missing_answer.status_code == 404
        assert their_answer.content == missing_answer.content
    # Their customer, to buy for or to preview.
    body = {
        "customer": other_tenant.customer.public_id,
        "plan": plans[Plan.Kind.FLEXIBLE].public_id,
        "licences": 1,
    }
    assert client.post_json(LIST, body, headers=change("t-5")).status_code == 404
    assert client.get(f"{LIST}preview", body).status_code == 404
    theirs.refresh_from_db()
    assert theirs.licences == 2 and theirs.status == "active"
    assert not Order.objects.filter(customer=tenant.customer).exists()


def test_the_list_is_the_resellers_own_filtered_and_walked_by_cursor(tenant, other_tenant, client):
    mine = [
        SubscriptionFactory(customer=CustomerFactory(reseller=tenant.reseller)) for _ in range(5)
    ]
    SubscriptionFactory(customer=other_tenant.customer)
    suspended = mine[0]
    Subscription.objects.filter(pk=suspended.pk).update(
        status="suspended", suspension_reason="reseller_initiated"
    )
    seen, cursor = [], ""
    while True:
        body = client.get(LIST, {"limit": 2, "cursor": cursor}).json()
        assert body["count"] == 5
        seen += [item["id"] for item in body["items"]]
        if not body["next_cursor"]:
            break
        cursor = body["next_cursor"]
    assert sorted(seen) == sorted(s.public_id for s in mine) and len(seen) == len(set(seen))
    by_status = client.get(LIST, {"status": "suspended"}).json()["items"]
    assert [item["id"] for item in by_status] == [suspended.public_id]
    by_customer = client.get(LIST, {"customer": mine[1].customer.public_id}).json()["items"]
    assert [item["id"] for item in by_customer] == [mine[1].public_id]
    by_product = client.get(LIST, {"product": mine[2].product.public_id}).json()["items"]
    assert [item["id"] for item in by_product] == [mine[2].public_id]
    theirs = client.get(LIST, {"customer": other_tenant.customer.public_id}).json()
    assert theirs["items"] == [] and theirs["count"] == 0


# Bad input


def test_bad_input_names_each_field(tenant, other_tenant, plans, flexible, client):
    buying = client.post_json(
        LIST,
        {"customer": tenant.customer.public_id, "plan": "nope", "licences": "many"},
        headers=change("b-1"),
    )
    assert buying.status_code == 422
    assert buying["Content-Type"] == "application/problem+json"
    assert {e["field"] for e in buying.json()["errors"]} == {"licences"}
    unknown_plan = client.post_json(
        LIST,
        {"customer": tenant.customer.public_id, "plan": "nope", "licences": 2},
        headers=change("b-2"),
    )
    assert unknown_plan.status_code == 422
    assert [e["field"] for e in unknown_plan.json()["errors"]] == ["plan"]
    too_few = client.post_json(
        url(flexible, "licences"), {"licences": 0, "expected_licences": 5}, headers=change("b-3")
    )
    assert too_few.status_code == 422
    assert [e["field"] for e in too_few.json()["errors"]] == ["licences"]
    wrong_status = client.get(LIST, {"status": "sleeping"})
    assert wrong_status.status_code == 422
    assert [e["field"] for e in wrong_status.json()["errors"]] == ["status"]
    missing = client.post_json(LIST, {"plan": plans[Plan.Kind.FLEXIBLE].public_id})
    assert missing.status_code == 422
    assert {e["field"] for e in missing.json()["errors"]} >= {
        "customer",
        "licences",
        "Idempotency-Key",
    }
    assert Order.objects.filter(customer=tenant.customer).count() == 1  # the fixture's


def test_the_preview_for_a_customer_not_yet_active_says_why(tenant, other_tenant, plans, client):
    invited = CustomerFactory(reseller=tenant.reseller, status=Customer.Status.INVITED)
    response = client.get(
        f"{LIST}preview",
        {
            "customer": invited.public_id,
            "plan": plans[Plan.Kind.FLEXIBLE].public_id,
            "licences": 1,
        },
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["customer"]
