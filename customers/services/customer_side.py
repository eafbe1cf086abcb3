"""The customer side: what a customer's own administrators do for their organisation (revoke
its reseller's access, make or withdraw a transfer token). Each checks that the person
administers the customer (customers.selectors.customer_admin_check)."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.emails import email_queue
from core.events import event_announce
from core.models import User
from core.ratelimit import Limit, limits_enforce
from core.tokens import token_new
from customers import extensions
from customers.models import (
    Customer,
    TransferToken,
)
from customers.selectors import customer_admin_check
from resellers.models import Reseller
from resellers.selectors import membership_managers
from resellers.services import (
    audit_record,
)

TRANSFER_TOKEN_STATUSES = [Customer.Status.ACTIVE, Customer.Status.ACCESS_REVOKED]


def _transfer_tokens_withdraw_open(customer: Customer) -> int:
    return TransferToken.objects.filter(
        customer=customer, consumed_at__isnull=True, withdrawn_at__isnull=True
    ).update(withdrawn_at=timezone.now())


@transaction.atomic
def customer_access_revoke(*, customer: Customer, user: User) -> Customer:
    """The customer ends its reseller's access: it leaves the reseller's list at once, its
    subscriptions keep running (billed to the customer's own card) and the reseller is emailed."""
    customer_admin_check(customer=customer, user=user)
    # Locked so that a revoke cannot cross an import or another revoke of the same customer.
    customer = Customer.objects.select_for_update().select_related("reseller").get(pk=customer.pk)
    if customer.status != Customer.Status.ACTIVE:
        raise ValidationError(
            _("Only an organisation with an active reseller can revoke its access.")
        )
    before = customer.status
    customer.status = Customer.Status.ACCESS_REVOKED
    customer.save(update_fields=["status"])
    # The subscriptions keep running, now paid by the customer (the billing apps hook in).
    extensions.access_revoked_hooks_run(customer)
    event_announce("customer.revoked", customer)
    # A token handed out before the revoke was meant for the old arrangement; the customer
    # makes a new one if it still wants to move.
    withdrawn = _transfer_tokens_withdraw_open(customer)
    after: dict[str, Any] = {"status": customer.status}
    if withdrawn:
        after["transfer_tokens_withdrawn"] = withdrawn
    reseller = customer.reseller
    audit_record(
        actor=user,
        reseller=reseller,
        action="customer.access_revoked",
        obj=customer,
        before={"status": before},
        after=after,
        customer_public_id=customer.public_id,
    )
    for member in membership_managers(reseller_id=reseller.pk):
        email_queue(
            to=member.user.email,
            template="customer_access_revoked",
            context={
                "reseller_name": reseller.name,
                "organisation": customer.organisation,
                "domain": customer.domain,
                "customer_id": customer.public_id,
                "revoked_by": user.email,
                "revoked_at": timezone.now(),
            },
            language=member.user.language,
        )
    return customer


@transaction.atomic
def transfer_token_create(*, customer: Customer, user: User, reseller_public_id: str) -> str:
    """A token that lets one named reseller import this customer (seed 004): 14 days, single
    use. Returns the raw token, which is shown once and never stored (only its digest is)."""
    customer_admin_check(customer=customer, user=user)
    # Locked so that two administrators generating at once leave exactly one open token.
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.status not in TRANSFER_TOKEN_STATUSES:
        raise ValidationError(
            _(
                "A transfer token can be made only for an active organisation or one that "
                "revoked its reseller's access."
            )
        )
    reseller_public_id = reseller_public_id.strip()
    to_reseller = (
        Reseller.objects.filter(public_id=reseller_public_id).first()
        if reseller_public_id
        else None
    )
    # Suspended and pending resellers get the same answer as unknown ids: nothing to learn here.
    if to_reseller is None or not to_reseller.is_active:
        raise ValidationError(
            {
                "reseller_id": _(
                    "No active reseller has this ID. Ask the reseller for the ID shown on its "
                    "Settings page."
                )
            }
        )
    if to_reseller.pk == customer.reseller_id:
        raise ValidationError(
            {
                "reseller_id": _(
                    "This is the ID of your current reseller. A transfer token is for moving to a "
                    "different reseller."
                )
            }
        )
    per_customer = settings.TRANSFER_TOKENS_PER_HOUR
    per_user = settings.TRANSFER_TOKENS_PER_HOUR_PER_USER
    limits_enforce(
        Limit(
            scope="transfer-tokens",
            key=customer.public_id,
            limit=per_customer,
            message=ngettext(
                "Your organisation can make at most %(limit)d transfer token an hour, and that "
                "limit has been reached.",
                "Your organisation can make at most %(limit)d transfer tokens an hour, and that "
                "limit has been reached.",
                per_customer,
            )
            % {"limit": per_customer},
            # Redis unreachable: refused, a transfer token hands the customer to another reseller.
            fail_open=False,
        ),
        Limit(
            scope="transfer-tokens-user",
            key=user.public_id,
            limit=per_user,
            message=ngettext(
                "You can make at most %(limit)d transfer token an hour, and that limit has been "
                "reached.",
                "You can make at most %(limit)d transfer tokens an hour, and that limit has been "
                "reached.",
                per_user,
            )
            % {"limit": per_user},
            fail_open=False,  # as above
        ),
    )
    withdrawn = _transfer_tokens_withdraw_open(customer)
    raw, digest = token_new()
    token = TransferToken(
        customer=customer,
        to_reseller=to_reseller,
        created_by=user,
        token_hash=digest,
        expires_at=timezone.now() + timedelta(days=settings.TRANSFER_TOKEN_VALID_DAYS),
    )
    token.full_clean()
    token.save()
    after: dict[str, Any] = {
        "to_reseller": to_reseller.name,
        "to_reseller_id": to_reseller.public_id,
        "expires_at": token.expires_at.isoformat(),
    }
    if withdrawn:
        after["transfer_tokens_withdrawn"] = withdrawn
    # No reseller on the row: neither the current reseller nor the named one (perhaps a typo)
    # should read of it in their audit log; the customer sees it in its activity.
    audit_record(
        actor=user,
        reseller=None,
        action="customer.transfer_token_created",
        obj=token,
        after=after,
        customer_public_id=customer.public_id,
    )
    return raw


@transaction.atomic
def transfer_token_withdraw(*, customer: Customer, user: User, token: TransferToken) -> None:
    """The token stops working at once; a used token cannot be withdrawn."""
    customer_admin_check(customer=customer, user=user)
    if token.customer_id != customer.pk:
        raise PermissionDenied(_("You do not administer this organisation."))
    updated = TransferToken.objects.filter(
        pk=token.pk, consumed_at__isnull=True, withdrawn_at__isnull=True
    ).update(withdrawn_at=timezone.now())
    if not updated:
        raise ValidationError(_("This transfer token was already used or withdrawn."))
    audit_record(
        actor=user,
        reseller=None,
        action="customer.transfer_token_withdrawn",
        obj=token,
        after={
            "to_reseller": token.to_reseller.name,
            "to_reseller_id": token.to_reseller.public_id,
        },
        customer_public_id=customer.public_id,
    )
