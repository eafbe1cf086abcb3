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

        # PDF: render each document once, when it is issued; it never changes afterwards (a
        # payment shows on the pages and in the payment receipt, not in the issued PDF). Staff
        # may ask again, which only writes back identical bytes. Importing the task module
        # also registers the task with Celery.
        from billing import rendering_tasks, services

        services.on_invoice_issued.append(rendering_tasks.invoice_pdf_enqueue)
        services.on_credit_note_issued.append(rendering_tasks.invoice_pdf_enqueue)
        services.on_pdf_requested.append(rendering_tasks.invoice_pdf_regenerate)

        # payments: charge each issued invoice's card (Stripe gateway); a paid invoice lifts
        # the suspensions its failed payment caused; the customer side's payment card section.
        # Importing the task module registers its tasks with Celery.
        from billing.payments import services as payments
        from billing.payments import tasks as payment_tasks
        from billing.payments import views as payment_views

        services.on_invoice_issued.append(payments.invoice_issued)
        services.on_invoice_paid.append(payments.invoice_paid)
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
