"""The dashboard's history (issue 18): one row per reseller, currency and day, so that its
charts read 365 rows instead of aggregating the ledgers on every request.

A row is what insights.snapshots computes for the end of its day: recurring revenue and
licences as they stood, and the money invoiced and collected that day. Today's row is written
again each hour until the day is over; a finished day's row is final (insights.services).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from resellers.models import Currency, Reseller


class DailySnapshot(models.Model):
    reseller = models.ForeignKey(
        Reseller, on_delete=models.CASCADE, related_name="+", verbose_name=_("reseller")
    )
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    day = models.DateField(_("day"))
    # At the end of the day (subscriptions.metrics): monthly recurring revenue at the
    # customers' prices, the reseller's margin in it, the licences and subscriptions it comes
    # from, and the trials running.
    mrr = models.DecimalField(_("monthly recurring revenue"), max_digits=14, decimal_places=2)
    margin = models.DecimalField(_("monthly recurring margin"), max_digits=14, decimal_places=2)
    licences = models.PositiveIntegerField(_("active licences"))
    subscriptions = models.PositiveIntegerField(_("active subscriptions"))
    trials = models.PositiveIntegerField(_("trials"))
    # During the day (billing.selectors.invoice_flows), VAT included: invoices issued less the
    # credit notes issued, and invoices paid less their credit notes.
    invoiced = models.DecimalField(_("invoiced"), max_digits=14, decimal_places=2)
    paid = models.DecimalField(_("paid"), max_digits=14, decimal_places=2)
    # False while the day is still running (its row is written again until it ends).
    final = models.BooleanField(_("final"), default=False)
    computed_at = models.DateTimeField(_("computed"), auto_now=True)

    class Meta:
        verbose_name = _("daily snapshot")
        verbose_name_plural = _("daily snapshots")
        ordering = ["reseller", "currency", "day"]
        constraints = [
            models.UniqueConstraint(
                fields=["reseller", "currency", "day"], name="dailysnapshot_one_per_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reseller} {self.currency} {self.day}"
