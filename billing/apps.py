from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self) -> None:
        # pages: the invoices sections of the reseller's Manage page and the customer's own
        # organisation page.
        from billing import views
        from customers import extensions

        extensions.section_register(
            side="reseller", slot="invoices", renderer=views.customer_section
        )
        extensions.section_register(
            side="customer", slot="invoices", renderer=views.customer_side_section
        )

        # PDF and payments: billing.services calls them by name (render the PDF and charge the
        # card of an issued invoice, lift suspensions when it is paid). Importing the task
        # modules registers their tasks with Celery; the customer side's payment card section.
        from billing import rendering_tasks  # noqa: F401
        from billing.payments import tasks as payment_tasks
        from billing.payments import views as payment_views

        extensions.section_register(
            side="customer", slot="payment_card", renderer=payment_views.customer_side_section
        )

        # The sweeper (core.sweeper) queues again the documents without their PDF and the
        # payment work whose task was lost.
        from billing import tasks as billing_tasks
        from core import sweeper

        sweeper.sweep_register("invoices", billing_tasks.billing_run_sweep)
        sweeper.sweep_register("pdfs", billing_tasks.invoice_pdfs_sweep)
        sweeper.sweep_register("payments", payment_tasks.payments_sweep)

        # The admin's "Background work" box: the same work, counted, each line linked to the
        # admin's list of its rows (billing.admin, loaded by the admin before this runs).
        from billing import admin as billing_admin

        sweeper.backlog_register(
            "invoices",
            billing_admin.invoices_backlog,
            queued_text=billing_admin.invoices_queued_text,
        )
        sweeper.backlog_register(
            "pdfs", billing_admin.pdfs_backlog, queued_text=billing_admin.pdfs_queued_text
        )
        sweeper.backlog_register(
            "payments",
            billing_admin.payments_backlog,
            queued_text=billing_admin.payments_queued_text,
        )
