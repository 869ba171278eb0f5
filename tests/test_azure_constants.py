"""Azure constants the program relies on, each held against a literal copied from Microsoft's own page.

Never compare a constant with itself: the expected values below are typed from the page named in the
comment above each block, so a wrong GUID or zone name in the code fails here.
"""

from __future__ import annotations

import pytest

from components.common import BuiltInRole
from components.private_endpoint import zones_for

# ---- role definition ids -------------------------------------------------------------------------
# Microsoft Learn, "Azure built-in roles" (MicrosoftDocs/azure-docs,
# articles/role-based-access-control/built-in-roles.md), column "ID" of each role's row.


@pytest.mark.parametrize(
    ("constant", "role_name", "page_id"),
    [
        ("CONTRIBUTOR", "Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
        ("READER", "Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
        (
            "ROLE_BASED_ACCESS_CONTROL_ADMINISTRATOR",
            "Role Based Access Control Administrator",
            "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        ),
        (
            "STORAGE_BLOB_DATA_CONTRIBUTOR",
            "Storage Blob Data Contributor",
            "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        ),
        (
            "STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR",
            "Storage File Data Privileged Contributor",
            "69566ab7-960f-475b-8e7c-b3118f30c6bd",
        ),
        (
            "STORAGE_QUEUE_DATA_CONTRIBUTOR",
            "Storage Queue Data Contributor",
            "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        ),
        (
            "STORAGE_TABLE_DATA_CONTRIBUTOR",
            "Storage Table Data Contributor",
            "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        ),
        ("KEY_VAULT_SECRETS_USER", "Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6"),
        ("ACR_PULL", "AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d"),
        ("AZUREML_DATA_SCIENTIST", "AzureML Data Scientist", "f6c7c914-8db3-469d-8ca1-694a8f32e121"),
        ("NETWORK_CONTRIBUTOR", "Network Contributor", "4d97b98b-1d4f-4787-a291-c67834d212e7"),
        ("AKS_RBAC_ADMIN", "Azure Kubernetes Service RBAC Admin", "3498e952-d568-435e-9b2c-8d77e338d7f7"),
    ],
)
def test_built_in_role_ids_match_the_built_in_roles_page(constant: str, role_name: str, page_id: str) -> None:
    assert getattr(BuiltInRole, constant) == page_id, f"{role_name}: the built-in roles page says {page_id}"


def test_every_role_the_program_names_is_checked_against_the_page() -> None:
    checked = {
        "CONTRIBUTOR",
        "READER",
        "ROLE_BASED_ACCESS_CONTROL_ADMINISTRATOR",
        "STORAGE_BLOB_DATA_CONTRIBUTOR",
        "STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR",
        "STORAGE_QUEUE_DATA_CONTRIBUTOR",
        "STORAGE_TABLE_DATA_CONTRIBUTOR",
        "KEY_VAULT_SECRETS_USER",
        "ACR_PULL",
        "AZUREML_DATA_SCIENTIST",
        "NETWORK_CONTRIBUTOR",
        "AKS_RBAC_ADMIN",
    }
    named = {name for name in vars(BuiltInRole) if name.isupper()}
    assert named == checked, "a new BuiltInRole constant needs its row in the table above"


# ---- private DNS zones of private endpoint sub-resources -------------------------------------------
# Microsoft Learn, "Azure Private Endpoint DNS configuration" / "private DNS zone values" (MicrosoftDocs/azure-docs,
# articles/private-link/private-endpoint-dns.md), table "Azure services DNS zone configuration", columns
# "Subresource" and "Private DNS zone name" for Storage (blob, file), Key Vault (vault), Container Registry (registry) and
# Azure Machine Learning (amlworkspace: both zones).


@pytest.mark.parametrize(
    ("group_id", "page_zones"),
    [
        ("blob", ("privatelink.blob.core.windows.net",)),
        ("file", ("privatelink.file.core.windows.net",)),
        ("vault", ("privatelink.vaultcore.azure.net",)),
        ("registry", ("privatelink.azurecr.io",)),
        ("amlworkspace", ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net")),
    ],
)
def test_private_dns_zones_match_the_dns_zone_values_page(group_id: str, page_zones: tuple[str, ...]) -> None:
    assert zones_for(group_id) == page_zones
