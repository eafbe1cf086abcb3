"""Payment pages: the reseller's card (Settings), the customer's card (customer side), who pays a
subscription and the customer's consent link, and Stripe's webhook endpoint.

Saving a card needs JavaScript: Stripe Elements collects the card in Stripe's own frame, so the
card number never reaches the portal. Every other page works without it.
"""

from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from billing.models import PaymentCard
from billing.payments import selectors, services, stripe_api
from billing.payments.demo_gateway import TEST_CARDS, DemoCardDeclined, DemoGateway
from billing.payments.forms import (
    CardSavedForm,
    DemoAuthenticationForm,
    DemoCardForm,
    PayerForm,
)
from billing.payments.gateways import CardSetup, CardSetupFailed, GatewayUnavailable, gateway
from billing.payments.tasks import stripe_event_process
from core.forms import add_service_errors
from core.http import ResellerRequest
from core.models import User
from core.queue import task_enqueue
from core.ratelimit import RateLimited, rate_limited_response
from core.tokens import TokenState
from customers.models import Customer
from customers.selectors import customer_for_member
from resellers.access import reseller_required
from resellers.roles import Action
from subscriptions import selectors as subscription_selectors
from subscriptions.models import Payer

# Cards


def _safe_next(request: HttpRequest, url: str) -> str | None:
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return None


def _card_saved(
    request: HttpRequest,
    form: forms.Form,
    *,
    save: Callable[[str], PaymentCard | None],
    setup_id: str,
    done_url: str,
) -> HttpResponse | None:
    """Save the card of a confirmed setup and go on (to a safe `next`, else `done_url`); None
    with the reason added to the form when it was not saved."""
    try:
        save(setup_id)
    except ValidationError as error:
        add_service_errors(form, error)
    except GatewayUnavailable:
        form.add_error(None, _("Stripe could not be reached. Try again in a moment."))
    else:
        messages.success(request, _("The card was saved. It pays from now on."))
        return redirect(_safe_next(request, form.cleaned_data["next"]) or done_url)
    return None


def _card_change(
    request: HttpRequest,
    *,
    context: dict[str, Any],
    start: Callable[[], CardSetup],
    save: Callable[[str], PaymentCard | None],
    done_url: str,
) -> HttpResponse:
    """Collect a card: GET shows Stripe Elements for a new SetupIntent; once Stripe confirmed
    it, the page posts its id (or Stripe's redirect brings it back as ?setup_intent=). The
    demo gateway collects Stripe's test cards in the portal's own form instead."""
    payment_gateway = gateway()
    context = {**context, "uses_cards": payment_gateway.uses_cards}
    if not context["uses_cards"]:
        return render(request, "payments/card_change.html", context)
    if isinstance(payment_gateway, DemoGateway):
        return _demo_card_change(
            request, payment_gateway, context=context, start=start, save=save, done_url=done_url
        )
    data = request.POST if request.method == "POST" else request.GET
    form = CardSavedForm(
        data if "setup_intent" in data else None, initial={"next": data.get("next", "")}
    )
    status = 200
    if form.is_bound:
        if form.is_valid():
            saved = _card_saved(
                request,
                form,
                save=save,
                setup_id=form.cleaned_data["setup_intent"],
                done_url=done_url,
            )
            if saved is not None:
                return saved
        status = 400
    try:
        setup = start()
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(done_url)
    except GatewayUnavailable:
        context["unavailable"] = True
        return render(request, "payments/card_change.html", context, status=503)
    query = urlencode({"next": form["next"].value() or ""})
    context.update(
        {
            "form": CardSavedForm(initial={"next": form["next"].value() or ""}),
            "errors": form.non_field_errors() or form.errors.get("setup_intent"),
            "setup": setup,
            "return_url": request.build_absolute_uri(f"{request.path}?{query}"),
        }
    )
    return render(request, "payments/card_change.html", context, status=status)


def _demo_card_change(
    request: HttpRequest,
    payment_gateway: DemoGateway,
    *,
    context: dict[str, Any],
    start: Callable[[], CardSetup],
    save: Callable[[str], PaymentCard | None],
    done_url: str,
) -> HttpResponse:
    """The demo's card page: a test card typed in the portal's form, then (for the cards that
    ask for it) the stand-in for the bank's authentication page; saved as Stripe's are."""
    next_url = (request.POST if request.method == "POST" else request.GET).get("next", "")
    context["demo_cards"] = TEST_CARDS
    if request.method == "POST" and "authenticate" in request.POST:
        authentication = DemoAuthenticationForm(request.POST)
        if not authentication.is_valid():
            return HttpResponseBadRequest("Invalid authentication answer")
        try:
            setup_id = payment_gateway.card_setup_authenticate(
                setup_id=authentication.cleaned_data["setup"],
                complete=authentication.cleaned_data["authenticate"] == "complete",
            )
        except DemoCardDeclined as declined:
            authentication.add_error(None, _(str(declined)))
        except CardSetupFailed:
            authentication.add_error(None, _("The card was not saved. Enter it again."))
        else:
            saved = _card_saved(
                request, authentication, save=save, setup_id=setup_id, done_url=done_url
            )
            if saved is not None:
                return saved
        # Not saved: the card form again, with the reason above it.
        context["errors"] = authentication.non_field_errors()
        form = DemoCardForm(initial={"next": authentication.cleaned_data["next"]})
        return _demo_card_form(request, context, form, start=start, done_url=done_url, status=400)
    if request.method != "POST":
        form = DemoCardForm(initial={"next": next_url})
        return _demo_card_form(request, context, form, start=start, done_url=done_url)
    form = DemoCardForm(request.POST)
    if form.is_valid():
        month, year = form.cleaned_data["expiry"]
        try:
            setup = payment_gateway.card_setup_confirm(
                client_secret=form.cleaned_data["setup"],
                number=form.cleaned_data["number"],
                exp_month=month,
                exp_year=year,
            )
        except DemoCardDeclined as declined:
            form.add_error("number", _(str(declined)))
        except CardSetupFailed:
            form.add_error(None, _("The card was not saved. Enter it again."))
        else:
            if setup.needs_authentication:
                context["authentication"] = DemoAuthenticationForm(
                    initial={"setup": setup.setup_id, "next": form.cleaned_data["next"]}
                )
                return render(request, "payments/card_change.html", context)
            saved = _card_saved(
                request, form, save=save, setup_id=setup.setup_id, done_url=done_url
            )
            if saved is not None:
                return saved
    return _demo_card_form(request, context, form, start=start, done_url=done_url, status=400)


def _demo_card_form(
    request: HttpRequest,
    context: dict[str, Any],
    form: DemoCardForm,
    *,
    start: Callable[[], CardSetup],
    done_url: str,
    status: int = 200,
) -> HttpResponse:
    """The demo's card form, on a new setup each time it is shown (what was typed is kept)."""
    try:
        setup = start()
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(done_url)
    if form.is_bound:
        form.data = {**form.data.dict(), "setup": setup.client_secret}  # type: ignore[attr-defined]
    else:
        form.initial["setup"] = setup.client_secret
    context.update({"demo_form": form, "setup": setup})
    return render(request, "payments/card_change.html", context, status=status)


@reseller_required(Action.PAYMENT_CARD_MANAGE)
@require_GET
def reseller_card(request: ResellerRequest) -> HttpResponse:
    """The reseller card: it pays the subscriptions of customers paid with the reseller card."""
    reseller = request.reseller
    return render(
        request,
        "payments/card.html",
        {
            "side": "reseller",
            "card": selectors.card_default(owner=reseller),
            "failed_payments": selectors.invoices_payment_failed(owner=reseller),
            "uses_cards": gateway().uses_cards,
            "change_url": reverse("payments:card_change"),
        },
    )


@reseller_required(Action.PAYMENT_CARD_MANAGE)
def reseller_card_change(request: ResellerRequest) -> HttpResponse:
    membership = request.membership
    return _card_change(
        request,
        context={"side": "reseller", "back_url": reverse("payments:card")},
        start=lambda: services.reseller_card_setup_start(membership=membership),
        save=lambda setup_id: services.reseller_card_save(membership=membership, setup_id=setup_id),
        done_url=reverse("payments:card"),
    )


@login_required
@require_GET
def my_card(request: HttpRequest, customer_id: str) -> HttpResponse:
    """The customer's own card: it pays the subscriptions the customer agreed to pay."""
    customer = customer_for_member(user=request.user, public_id=customer_id)
    return render(
        request,
        "payments/card.html",
        {
            "side": "customer",
            "customer": customer,
            "card": selectors.card_default(owner=customer),
            "failed_payments": selectors.invoices_payment_failed(owner=customer),
            "uses_cards": gateway().uses_cards,
            "change_url": reverse("my_payments:card_change", args=[customer.public_id]),
        },
    )


@login_required
def my_card_change(request: HttpRequest, customer_id: str) -> HttpResponse:
    customer = customer_for_member(user=request.user, public_id=customer_id)
    user = cast(User, request.user)
    back_url = reverse("my_payments:card", args=[customer.public_id])
    return _card_change(
        request,
        context={"side": "customer", "customer": customer, "back_url": back_url},
        start=lambda: services.customer_card_setup_start(customer=customer, user=user),
        save=lambda setup_id: services.customer_card_save(
            customer=customer, user=user, setup_id=setup_id
        ),
        done_url=back_url,
    )


def customer_side_section(request: HttpRequest, customer: Customer) -> SafeString:
    """The payment card section of the customer's organisation page (Stripe gateway only)."""
    if not gateway().uses_cards:
        return mark_safe("")
    return mark_safe(  # noqa: S308 - rendered by the template engine, which escapes
        render_to_string(
            "payments/_customer_section.html",
            {
                "customer": customer,
                "card": selectors.card_default(owner=customer),
                "failed_payments": selectors.invoices_payment_failed(owner=customer),
            },
            request=request,
        )
    )


# Who pays a subscription


@reseller_required(Action.PAYMENT_CARD_MANAGE)
def subscription_payer(request: ResellerRequest, subscription_id: str) -> HttpResponse:
    """Seed 003's "Change card": pay with the reseller card, or ask the customer to agree to
    pay with its own card ("Use a customer card?")."""
    membership = request.membership
    subscription = subscription_selectors.subscription_get(
        reseller=request.reseller,
        public_id=subscription_id,
    )
    consent = selectors.card_consent_open(subscription=subscription)
    wants_customer_card = subscription.payer == Payer.CUSTOMER_CARD or (
        consent is not None and consent.state == TokenState.VALID
    )
    form = PayerForm(
        request.POST if request.method == "POST" else None,
        initial={"use_customer_card": wants_customer_card},
    )
    if form.is_bound and form.is_valid():
        try:
            if not form.cleaned_data["use_customer_card"]:
                services.subscription_payer_reseller_card(
                    membership=membership, subscription=subscription
                )
                messages.success(request, _("Your card pays this subscription."))
            elif subscription.payer != Payer.CUSTOMER_CARD:
                consent = services.card_consent_request(
                    membership=membership, subscription=subscription
                )
                messages.success(
                    request,
                    _(
                        "We emailed %(email)s a link to agree to pay with the customer's card. "
                        "Until the customer agrees, your card pays."
                    )
                    % {"email": consent.email},
                )
        except ValidationError as error:
            add_service_errors(form, error)
        except RateLimited as error:
            return rate_limited_response(
                request,
                error,
                back_url=reverse("subscriptions:detail", args=[subscription.public_id]),
                back_label=_("Back to the subscription"),
            )
        else:
            return redirect("payments:subscription_payer", subscription_id=subscription.public_id)
    customer = subscription.customer
    return render(
        request,
        "payments/payer.html",
        {
            "subscription": subscription,
            "customer": customer,
            "form": form,
            "consent": consent,
            "uses_cards": gateway().uses_cards,
            "reseller_card": selectors.card_default(owner=customer.reseller),
            "customer_card": selectors.card_default(owner=customer),
        },
        status=400 if form.errors else 200,
    )


def card_consent(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the consent email: the customer's administrator agrees that the
    organisation's card pays the subscription (after adding a card if it has none)."""
    consent = selectors.card_consent_by_token(raw_token=token)
    if consent is None:
        return render(request, "payments/consent_invalid.html", {"reason": "unknown"}, status=404)
    subscription = consent.subscription
    customer = subscription.customer
    context: dict[str, Any] = {
        "consent": consent,
        "subscription": subscription,
        "customer": customer,
        "reseller": customer.reseller,
        "token": token,
    }
    if consent.state != TokenState.VALID:
        context["reason"] = str(consent.state)
        return render(request, "payments/consent_invalid.html", context, status=410)
    if not request.user.is_authenticated:
        return render(request, "payments/consent.html", context)
    user = cast(User, request.user)
    if not customer.members.filter(user=user).exists():
        return render(request, "payments/consent_wrong_account.html", context, status=403)
    context["card"] = selectors.card_default(owner=customer)
    context["add_card_url"] = "{}?{}".format(
        reverse("my_payments:card_change", args=[customer.public_id]),
        urlencode({"next": request.path}),
    )
    if request.method == "POST":
        try:
            services.card_consent_accept(consent=consent, user=user)
        except ValidationError as error:
            context["error"] = " ".join(error.messages)
            return render(request, "payments/consent.html", context, status=400)
        messages.success(
            request,
            _("Your organisation's card pays %(product)s from now on.")
            % {"product": subscription.product.name},
        )
        return redirect("customer_side:organisation", customer_id=customer.public_id)
    return render(request, "payments/consent.html", context)


# Stripe webhooks


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Verify the signature, store the event once by its id, process it in a task. A repeated
    delivery is acknowledged (200) and not stored again; a validly signed body that is not a
    well-formed event is a 400, and nothing is stored."""
    try:
        event = stripe_api.event_construct(
            payload=request.body, signature=request.headers.get("Stripe-Signature")
        )
    except stripe_api.InvalidWebhook:
        return HttpResponseBadRequest("Invalid signature or event")
    try:
        stored, _created = services.stripe_event_store(event=event)
    except ValidationError:
        return HttpResponseBadRequest("Invalid event")
    if stored.processed_at is None:
        # Also for a repeat of an event not processed yet (its task may have been lost);
        # processing takes the event's row lock and acts once. Queued or not (Redis down),
        # the stored event is processed: the sweeper queues it again (core.sweeper).
        task_enqueue(stripe_event_process, stored.pk)
    return HttpResponse("OK")
