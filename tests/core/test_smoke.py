def test_dashboard_renders_for_owner(owner_client, tenant):
    response = owner_client.get("/dashboard/")
    assert response.status_code == 200
    assert tenant.reseller.name in response.content.decode()
