"""Limits on what the portal sends or issues on a user's behalf (issue 11): team and customer
invitations and their resends, card-consent links and transfer tokens, per reseller (or
customer) and per person, in one sliding window on Redis (core/ratelimit.py). A refused send
answers 429 with Retry-After and saves nothing; bad input uses up nothing."""

import secrets
from datetime import timedelta
from typing import cast

import pytest
import time_machine
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from django.urls import reverse
from django.utils import timezone

from billing.models import CustomerCardConsent
from core.models import OutboundEmail
from core.ratelimit import Limit, limit_check, limits_take
from customers.models import Customer, CustomerMember, TransferToken
from resellers.models import AuditEvent, TeamInvitation
from resellers.roles import Role
from tests.factories import SubscriptionFactory, Tenant, UserFactory, member_of

NEW_CUSTOMER = {
    "contact_name": "Marta Ruiz",
    "customer_type": "domain",
    "organisation": "Acme Iberia",
    "language": "en",
    "time_zone": "Europe/Madrid",
    "country": "ES",
}


def new_customer(n: int) -> dict[str, str]:
    return {**NEW_CUSTOMER, "domain": f"c{n}.example", "contact_email": f"a@c{n}.example"}


def team_invite(client, n: int):
    return client.post("/team/", {"email": f"person{n}@example.com", "role": "sales"})


def assert_429(response) -> None:
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert "Try again in" in response.content.decode()


@pytest.mark.redis
def test_team_invitations_are_limited_per_reseller(tenant, other_tenant, client_for, settings):
    settings.INVITATIONS_PER_HOUR = 3
    owner = client_for(tenant.owner)
    co_owner = client_for(member_of(tenant.reseller, Role.OWNER).user)
    for n in range(2):
        assert team_invite(owner, n).status_code == 302
    assert team_invite(co_owner, 2).status_code == 302
    response = team_invite(co_owner, 3)
    assert_429(response)
    assert "Your company can send at most 3 invitations an hour" in response.content.decode()
    assert not TeamInvitation.objects.filter(email="person3@example.com").exists()
    assert AuditEvent.objects.filter(action="team_invitation.sent").count() == 3
    # Another reseller has its own quota.
    assert team_invite(client_for(other_tenant.owner), 4).status_code == 302


@pytest.mark.redis
def test_team_invitations_are_limited_per_person_and_resends_count(
    tenant, other_tenant, client_for, settings
):
    settings.INVITATIONS_PER_HOUR_PER_USER = 2
    owner = client_for(tenant.owner)
    assert team_invite(owner, 0).status_code == 302
    invitation = TeamInvitation.objects.get(email="person0@example.com")
    resend = f"/team/invitations/{invitation.public_id}/resend/"
    assert owner.post(resend).status_code == 302
    before = TeamInvitation.objects.values_list("token_hash", flat=True).get(pk=invitation.pk)
    response = owner.post(resend)
    assert_429(response)
    assert "You can send at most 2 invitations an hour" in response.content.decode()
    assert TeamInvitation.objects.values_list("token_hash", flat=True).get(pk=invitation.pk) == (
        before
    )
    assert_429(team_invite(owner, 1))
    # A co-owner still has room, and what the owner was refused did not use up the company's.
    co_owner = client_for(member_of(tenant.reseller, Role.OWNER).user)
    assert team_invite(co_owner, 1).status_code == 302


@pytest.mark.redis
def test_resends_have_a_lower_limit_of_their_own(tenant, other_tenant, client_for, settings):
    settings.INVITATION_RESENDS_PER_HOUR_PER_USER = 1
    owner = client_for(tenant.owner)
    assert team_invite(owner, 0).status_code == 302
    assert team_invite(owner, 1).status_code == 302
    invitation = TeamInvitation.objects.get(email="person0@example.com")
    assert owner.post(f"/team/invitations/{invitation.public_id}/resend/").status_code == 302
    response = owner.post(f"/team/invitations/{invitation.public_id}/resend/")
    assert_429(response)
    assert "You can resend at most 1 invitation an hour" in response.content.decode()
    assert team_invite(owner, 2).status_code == 302  # new invitations still go out


@pytest.mark.redis
def test_bad_team_invitations_do_not_use_up_the_quota(tenant, other_tenant, client_for, settings):
    settings.INVITATIONS_PER_HOUR = 1
    owner = client_for(tenant.owner)
    assert owner.post("/team/", {"email": "not-an-email", "role": "admin"}).status_code == 400
    assert owner.post("/team/", {"email": tenant.owner.email, "role": "admin"}).status_code == 400
    assert team_invite(owner, 0).status_code == 302


@pytest.mark.redis
def test_customer_invitations_are_limited_per_person(tenant, other_tenant, client_for, settings):
    settings.INVITATIONS_PER_HOUR_PER_USER = 1
    owner = client_for(tenant.owner)
    assert owner.post("/customers/new/", new_customer(0)).status_code == 302
    response = owner.post("/customers/new/", new_customer(1))
    assert_429(response)
    assert "You can send at most 1 invitation an hour" in response.content.decode()
    assert not Customer.objects.filter(domain="c1.example").exists()
    # Team and customer invitations share the person's quota.
    assert_429(team_invite(owner, 0))
    admin = client_for(member_of(tenant.reseller, Role.ADMIN).user)
    assert admin.post("/customers/new/", new_customer(1)).status_code == 302


def ask_customer_card(client, subscription):
    url = reverse("payments:subscription_payer", args=[subscription.public_id])
    return client.post(url, {"use_customer_card": "on"})


@pytest.mark.redis
def test_card_consent_links_are_limited(tenant, other_tenant, client_for, settings, fake_stripe):
    settings.CARD_CONSENTS_PER_HOUR_PER_USER = 2
    CustomerMember.objects.create(
        customer=tenant.customer, user=UserFactory(), terms_accepted_at=timezone.now()
    )
    subscription = SubscriptionFactory(customer=tenant.customer)
    owner = client_for(tenant.owner)
    for _ in range(2):
        assert ask_customer_card(owner, subscription).status_code == 302
    open_consent = CustomerCardConsent.objects.get(
        subscription=subscription, withdrawn_at__isnull=True
    )
    response = ask_customer_card(owner, subscription)
    assert_429(response)
    assert "You can send at most 2 card consent requests an hour" in response.content.decode()
    assert CustomerCardConsent.objects.get(
        subscription=subscription, withdrawn_at__isnull=True
    ) == (open_consent)
    assert OutboundEmail.objects.filter(template="customer_card_consent").count() == 2


def make_token(client, customer: Customer, reseller_id: str):
    url = reverse("customer_side:transfer_token_create", kwargs={"customer_id": customer.public_id})
    return client.post(url, {"reseller_id": reseller_id})


@pytest.mark.redis
def test_transfer_tokens_are_limited(tenant: Tenant, other_tenant: Tenant, client_for, settings):
    settings.TRANSFER_TOKENS_PER_HOUR = 2
    customer = tenant.customer
    admins = []
    for _ in range(2):
        admin = UserFactory()
        CustomerMember.objects.create(
            customer=customer, user=admin, terms_accepted_at=timezone.now()
        )
        admins.append(client_for(admin))
    to = other_tenant.reseller.public_id
    assert make_token(admins[0], customer, "unknown").status_code == 400  # uses up nothing
    assert make_token(admins[0], customer, to).status_code == 200
    assert make_token(admins[1], customer, to).status_code == 200
    open_token = TransferToken.objects.get(customer=customer, withdrawn_at__isnull=True)
    response = make_token(admins[1], customer, to)
    assert_429(response)
    assert "can make at most 2 transfer tokens an hour" in response.content.decode()
    assert TransferToken.objects.get(customer=customer, withdrawn_at__isnull=True) == open_token


@pytest.mark.redis
def test_the_window_slides():
    key = secrets.token_hex(8)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert limit_check(scope="test", key=key, limit=2, window=3600) is None
    with time_machine.travel(start + timedelta(minutes=30), tick=False):
        assert limit_check(scope="test", key=key, limit=2, window=3600) is None
        assert limit_check(scope="test", key=key, limit=2, window=3600) == 1800
    # The first send leaves the window after an hour, the second half an hour later.
    with time_machine.travel(start + timedelta(minutes=60, seconds=1), tick=False):
        assert limit_check(scope="test", key=key, limit=2, window=3600) is None
        assert limit_check(scope="test", key=key, limit=2, window=3600) == 1799


@pytest.mark.redis
def test_a_refused_send_counts_against_no_limit():
    company = Limit(scope="test-company", key=secrets.token_hex(8), limit=2)
    person = Limit(scope="test-person", key=secrets.token_hex(8), limit=1)
    teammate = Limit(scope="test-person", key=secrets.token_hex(8), limit=1)
    assert limits_take(company, person) is None
    assert limits_take(company, person) is not None  # the person's limit
    assert limits_take(company, teammate) is None  # the company had room left
    assert limits_take(company, Limit(scope="test-person", key="x", limit=1)) is not None
    cache_key = cache.make_and_validate_key(f"ratelimit:test-company:{company.key}")
    assert cast(RedisCache, cache)._cache.get_client(cache_key).zcard(cache_key) == 2


def test_the_limiter_works_on_the_fallback_cache(settings):
    """Without Redis (the embedded demo, SQLite test runs) the same window lives in the cache."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "x"}
    }
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert limit_check(scope="test", key="fallback", limit=1, window=60) is None
        assert limit_check(scope="test", key="fallback", limit=1, window=60) == 60
        assert limit_check(scope="test", key="other", limit=1, window=60) is None
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        assert limit_check(scope="test", key="fallback", limit=1, window=60) is None
    assert cache.get(cache.make_key("ratelimit:test:fallback"))  # kept in the local cache
