"""AKS and Azure ML extension rules on both sides (AZURE-FACTS 4, 11, 12, 13, 25, 26, 27, 28)."""

from __future__ import annotations

import base64

import pytest

from policy import rules as r
from policy.rules.aks import node_count
from tests._policy_cases import (
    DELETE,
    SCORING_HOST,
    ENVIRONMENTS,
    SUB,
    adding,
    assert_resource_case,
    assert_stack_case,
    breaking,
    build,
    chain,
    drop,
    edit,
    resource_findings,
    stack_findings,
)

SETTINGS = "configurationSettings"


def setting(key: str, value: object):
    """A break of one extension setting (setting names contain dots, so they are not paths)."""

    def apply(props: dict) -> None:
        if value is DELETE:
            props[SETTINGS].pop(key, None)
        else:
            props[SETTINGS][key] = value

    return apply


def settings(**changes: object):
    def apply(props: dict) -> None:
        for key, value in changes.items():
            setting(key.replace("__", "."), value)(props)

    return apply


RESOURCE_CASES = [
    ("aks-managed-identity", r.AKS, breaking(identity=DELETE)),
    ("aks-managed-identity", r.AKS, breaking(identity__type="None")),
    ("aks-azure-rbac", r.AKS, breaking(aadProfile__enableAzureRBAC=False)),
    ("aks-network-policy", r.AKS, breaking(networkProfile__networkPolicy="none")),
    ("aks-private-api-server", r.AKS, breaking(apiServerAccessProfile__enablePrivateCluster=False)),
    (
        "aks-private-cluster-no-public-fqdn",
        r.AKS,
        breaking(apiServerAccessProfile__enablePrivateClusterPublicFQDN=True),
    ),
    (
        "aks-private-cluster-no-public-fqdn",
        r.AKS,
        breaking(apiServerAccessProfile__enablePrivateClusterPublicFQDN=DELETE),
    ),
    (
        "aks-no-node-public-ip",
        r.AKS,
        breaking(agentPoolProfiles=[{"name": "system", "count": 3.0, "enableNodePublicIP": True}]),
    ),
    (
        "aks-inference-internal-load-balancer",
        r.K8S_EXTENSION,
        settings(internalLoadBalancerProvider=DELETE, scoringFe__serviceType__internalLoadBalancer=DELETE),
    ),
    (
        "aks-inference-internal-load-balancer",
        r.K8S_EXTENSION,
        setting("inferenceRouterServiceType", "nodePort"),
    ),
    ("aks-extension-cli-settings", r.K8S_EXTENSION, breaking(scope=DELETE)),
    ("aks-extension-cli-settings", r.K8S_EXTENSION, breaking(scope__cluster__releaseNamespace="default")),
    ("aks-extension-cli-settings", r.K8S_EXTENSION, setting("cluster_name", DELETE)),
    (
        "aks-extension-cli-settings",
        r.K8S_EXTENSION,
        setting(
            "clusterId",
            f"/subscriptions/{SUB}/resourceGroups/g/providers/Microsoft.ContainerService/managedClusters/other",
        ),
    ),
    ("aks-extension-cli-settings", r.K8S_EXTENSION, setting("location", "")),
    ("aks-extension-cli-settings", r.K8S_EXTENSION, setting("jobSchedulerLocation", DELETE)),
    ("aks-extension-cli-settings", r.K8S_EXTENSION, setting("relayserver.enabled", "true")),
    ("aks-extension-cli-settings", r.K8S_EXTENSION, setting("servicebus.enabled", DELETE)),
    ("aks-extension-cli-settings", r.K8S_EXTENSION, setting("nginxIngress.enabled", "false")),
    (
        "aks-extension-cli-settings",
        r.K8S_EXTENSION,
        setting("scoringFe.serviceType.internalLoadBalancer", "false"),
    ),
    ("aks-extension-tls", r.K8S_EXTENSION, setting("sslCname", DELETE)),
    ("aks-extension-tls", r.K8S_EXTENSION, breaking(configurationProtectedSettings=DELETE)),
    (
        "aks-extension-tls",
        r.K8S_EXTENSION,
        breaking(configurationProtectedSettings={"scoringFe.sslCert": "[secret]"}),
    ),
    (
        "aks-trusted-access-scoped",
        r.TRUSTED_ACCESS,
        breaking(roles=["Microsoft.ContainerService/managedClusters/x"]),
    ),
]

TRUSTED_ACCESS_BINDING = adding(
    r.TRUSTED_ACCESS,
    "aks-trusted-access",
    lambda b: {
        "resourceName": "aks-taxi",
        "trustedAccessRoleBindingName": "azureml",
        "roles": ["Microsoft.MachineLearningServices/workspaces/mlworkload"],
        "sourceResourceId": f"/subscriptions/{SUB}/resourceGroups/{b.group}/providers/Microsoft.MachineLearningServices/workspaces/mlw-taxi",
    },
)

STACK_CASES = [
    (
        "aks-extension-local-accounts",
        chain(edit("aks-cluster", "disableLocalAccounts", True), TRUSTED_ACCESS_BINDING),
    ),
    ("aks-outbound-type-matches-subnet", edit("aks-cluster", "networkProfile.outboundType", "loadBalancer")),
    (
        "aks-outbound-type-matches-subnet",
        edit("aks-cluster", "networkProfile.outboundType", "managedNATGateway"),
    ),
    (
        "aks-outbound-type-matches-subnet",
        edit("aks-cluster", "networkProfile.outboundType", "userDefinedRouting"),
    ),
    ("aks-trusted-access-where-needed", TRUSTED_ACCESS_BINDING),
    (
        "aks-trusted-access-where-needed",
        edit("aks-cluster", "apiServerAccessProfile.authorizedIPRanges", ["203.0.113.0/24"]),
    ),
    ("aks-inference-router-ha-nodes", edit("azureml-extension", f"{SETTINGS}.inferenceRouterHA", DELETE)),
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "resource_type", "breaks"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES]
)
def test_a_broken_cluster_or_extension_setting_is_reported(
    rule: str, resource_type: str, breaks, env: str
) -> None:
    assert_resource_case(rule, resource_type, breaks, env)


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("rule", "change"), STACK_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(STACK_CASES)]
)
def test_a_broken_inference_stack_is_reported(rule: str, change, env: str) -> None:
    if rule == "aks-inference-router-ha-nodes" and env == "prod":
        change = chain(change, _pool_count(2))  # prod runs three nodes
    assert_stack_case(rule, "customerVnet", env, change)


def _pool_count(count: float, *, autoscale_min: float | None = None):
    def apply(resources):
        cluster = next(res for res in resources if res.name == "aks-cluster")
        pool = {**cluster.props["agentPoolProfiles"][0], "count": count}
        if autoscale_min is not None:
            pool |= {"enableAutoScaling": True, "minCount": autoscale_min, "maxCount": 5.0}
        return edit("aks-cluster", "agentPoolProfiles", [pool])(resources)

    return apply


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_local_accounts_off_without_trusted_access_breaks_both_rules(env: str) -> None:
    assert_stack_case(
        "aks-extension-local-accounts",
        "customerVnet",
        env,
        edit("aks-cluster", "disableLocalAccounts", True),
        also=["aks-trusted-access-where-needed"],
    )


@pytest.mark.parametrize(
    ("ha", "count", "autoscale_min", "reported"),
    [
        ("True", 3.0, None, False),
        ("True", 2.0, None, True),
        (None, 2.0, None, True),
        ("true", 4.0, None, False),
        ("False", 1.0, None, False),
        ("True", 3.0, 2.0, True),
        ("True", 5.0, 3.0, False),
    ],
)
def test_the_ha_router_needs_three_nodes(
    ha: str | None, count: float, autoscale_min: float | None, reported: bool
) -> None:
    change = chain(
        edit("azureml-extension", f"{SETTINGS}.inferenceRouterHA", DELETE if ha is None else ha),
        _pool_count(count, autoscale_min=autoscale_min),
    )
    rules = {f.rule for f in stack_findings(change(build("customerVnet", "prod")), "prod")}
    assert ("aks-inference-router-ha-nodes" in rules) is reported


def test_separately_declared_agent_pools_count() -> None:
    pools = [{"name": "system", "count": 1.0}, {"name": "user", "count": 2.0}]
    assert node_count(pools) == 3 and node_count([{"name": "p"}]) == 1


@pytest.mark.parametrize(("env", "reported"), [("prod", True), ("dev", False)])
def test_insecure_inference_is_for_dev_only(env: str, reported: bool) -> None:
    breaks = settings(allowInsecureConnections="True", sslCname=DELETE)
    findings = resource_findings(r.K8S_EXTENSION, breaks, env)
    assert [f.rule for f in findings] == (["aks-extension-tls"] if reported else [])


PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("cert", "reported"),
    [
        (base64.b64encode(PEM.encode()).decode(), False),
        ("[secret]", False),
        (PEM, True),  # the PEM itself, not its base64: the extension cannot validate it (azurerm#24547)
        (base64.b64encode(b"not a certificate").decode(), True),
    ],
    ids=["base64-pem", "masked", "raw-pem", "base64-of-something-else"],
)
def test_the_certificate_goes_as_base64_pem(cert: str, reported: bool) -> None:
    def breaks(props: dict) -> None:
        props["configurationProtectedSettings"] = {"scoringFe.sslCert": cert, "scoringFe.sslKey": "[secret]"}

    findings = resource_findings(r.K8S_EXTENSION, breaks, "prod")
    assert [f.rule for f in findings] == (["aks-extension-tls"] if reported else [])


def test_the_private_key_never_goes_in_plain_settings() -> None:
    findings = resource_findings(r.K8S_EXTENSION, setting("scoringFe.sslKey", "[secret]"), "prod")
    assert [f.rule for f in findings] == ["aks-extension-tls"] and "plain configurationSettings" in findings[
        0
    ].message


def test_a_kubernetes_tls_secret_replaces_the_certificate_files() -> None:
    def breaks(props: dict) -> None:
        props.pop("configurationProtectedSettings")
        setting("sslSecret", "azureml-tls")(props)

    assert resource_findings(r.K8S_EXTENSION, breaks, "prod") == []


@pytest.mark.parametrize(
    ("rule", "change"),
    [
        ("aks-scoring-dns-zone", drop("scoring-zone-link")),
        ("aks-scoring-dns-zone", edit("scoring-zone", "privateZoneName", "contoso.example")),
        ("aks-scoring-dns-record", drop("scoring-record")),
        ("aks-scoring-dns-record", edit("scoring-record", "aRecords", [])),
        ("aks-scoring-dns-record", edit("scoring-record", "relativeRecordSetName", "other")),
    ],
    ids=["zone-not-linked", "zone-of-another-domain", "no-record", "no-address", "record-of-another-host"],
)
def test_the_tls_scoring_host_resolves_in_the_vnet(rule: str, change) -> None:
    # Only the zone is mandatory: the record waits for the load balancer IP the first `pulumi up` assigns.
    findings = assert_stack_case(rule, "customerVnet", "prod", change)
    assert all(SCORING_HOST in f.message for f in findings)
    assert {f.level for f in findings} == {r.ALL_RULES[rule].enforcement}


def test_a_zone_named_after_the_host_with_an_apex_record_serves_too() -> None:
    change = chain(
        edit("scoring-zone", "privateZoneName", SCORING_HOST),
        edit("scoring-zone-link", "privateZoneName", SCORING_HOST),
        edit("scoring-record", "privateZoneName", SCORING_HOST),
        edit("scoring-record", "relativeRecordSetName", "@"),
    )
    assert stack_findings(change(build("customerVnet", "prod")), "prod") == []


def test_insecure_dev_inference_needs_no_scoring_record() -> None:
    resources = build("customerVnet", "dev")
    assert not [res for res in resources if res.type == r.PRIVATE_DNS_RECORD]
    assert stack_findings(resources, "dev") == []


OTHER_CASES = [
    "aks-scoring-dns-zone",
    "aks-scoring-dns-record",
]  # tested above: prod only, where inference is HTTPS
