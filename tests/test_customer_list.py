from customers.models import Customer
from tests.factories import CustomerFactory


def test_customer_list_shows_only_this_resellers_visible_customers(
    owner_client, tenant, other_tenant
):
    CustomerFactory(
        reseller=tenant.reseller, organisation="Gone Away", status=Customer.Status.ACCESS_REVOKED
    )
    body = owner_client.get("/customers/").content.decode()
    assert tenant.customer.organisation in body
    assert other_tenant.customer.organisation not in body
    assert "Gone Away" not in body  # a customer that revoked access leaves the list


def test_status_filter_and_htmx_fragment(owner_client, tenant):
    CustomerFactory(
        reseller=tenant.reseller, organisation="Waiting Co", status=Customer.Status.INVITED
    )
    page = owner_client.get("/customers/?status=invited")
    body = page.content.decode()
    assert "Waiting Co" in body and tenant.customer.organisation not in body
    assert "<header" in body

    fragment = owner_client.get("/customers/?status=invited", headers={"HX-Request": "true"})
    text = fragment.content.decode()
    assert "Waiting Co" in text
    assert "<header" not in text and text.lstrip().startswith('<div id="results">')


def test_unknown_status_filter_is_ignored(owner_client, tenant):
    assert (
        tenant.customer.organisation
        in owner_client.get("/customers/?status=bogus").content.decode()
    )


def test_pagination_keeps_the_filter(owner_client, tenant):
    for n in range(30):
        CustomerFactory(
            reseller=tenant.reseller, organisation=f"Bulk {n:02d}", status=Customer.Status.INVITED
        )
    first = owner_client.get("/customers/?status=invited").content.decode()
    assert "Page 1 of 2" in first and "?status=invited&amp;page=2" in first
    second = owner_client.get("/customers/?status=invited&page=2").content.decode()
    assert "Bulk 00" in second and "Bulk 29" not in second


def test_empty_state_says_what_to_do(client_for, other_tenant):
    from tests.conftest import make_tenant

    empty = make_tenant("Empty Reseller")
    empty.customer.delete()
    body = client_for(empty.owner).get("/customers/").content.decode()
    assert "No customers yet" in body


def test_dashboard_counts_are_real(owner_client, tenant):
    def figure(label: str) -> int:
        counts = dict(owner_client.get("/dashboard/").context["customer_counts"])
        return counts[label]

    before = figure("Invited")
    CustomerFactory(reseller=tenant.reseller, status=Customer.Status.INVITED)
    assert figure("Invited") == before + 1
    assert figure("Active") == 1


def test_customer_page_has_the_managing_banner(owner_client, tenant):
    body = owner_client.get(f"/customers/{tenant.customer.public_id}/").content.decode()
    assert "You are managing <strong>" in body and tenant.customer.domain in body
