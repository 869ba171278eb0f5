"""The two isolation designs as pure data, and the config keys that choose and tune them (no Pulumi run)."""

from __future__ import annotations

import datetime

import pytest

from stacks.config import (
    ConfigError,
    check_config,
    example_config,
    example_values,
    parse_config,
    secret_keys_of,
)
from stacks.designs import DESIGNS, design_diagram, design_plan, online_target
from stacks.inference_tls import certificate_problems, hostname_problem, self_signed_pem

P = "aml-platform"
NO_TLS = {"inferenceSslCname": None, "inferenceSslCertPem": None, "inferenceSslKeyPem": None}
MANAGED = {"isolationDesign": "managedVnet", "enableAks": "false"}


def problems_of(environment: str, **overrides: str | None) -> dict[str, list[str]]:
    """Every config problem by key (without the project prefix), or {} when the config parses."""
    values = example_values(**overrides)
    try:
        parse_config(values, stack=environment, secret_keys=secret_keys_of(values))
    except ConfigError as error:
        found: dict[str, list[str]] = {}
        for problem in error.problems:
            found.setdefault(problem.key.removeprefix(f"{P}:"), []).append(str(problem))
        return found
    return {}


# ---- design plans -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    (
        "design",
        "public",
        "aks",
        "mode",
        "subnets",
        "egress",
        "endpoints",
        "workspace_mode",
        "rules",
        "target",
    ),
    [
        (
            "customerVnet",
            True,
            True,
            "AllowInternetOutbound",
            ("training", "aks", "agents", "private-endpoints"),
            ("training", "aks", "agents"),
            True,
            "Disabled",
            (),
            "kubernetes",
        ),
        (
            "customerVnet",
            False,
            False,
            "AllowOnlyApprovedOutbound",
            ("training", "aks", "agents", "private-endpoints"),
            ("training", "aks", "agents"),
            True,
            "Disabled",
            (),
            "managed",
        ),
        (
            "managedVnet",
            True,
            False,
            "AllowInternetOutbound",
            ("agents", "private-endpoints"),
            ("agents",),
            False,
            "AllowInternetOutbound",
            (),
            "managed",
        ),
        (
            "managedVnet",
            False,
            False,
            "AllowInternetOutbound",
            ("agents", "private-endpoints"),
            ("agents",),
            True,
            "AllowInternetOutbound",
            ("queue", "table"),
            "managed",
        ),
        (
            "managedVnet",
            True,
            False,
            "AllowOnlyApprovedOutbound",
            ("agents", "private-endpoints"),
            ("agents",),
            False,
            "AllowOnlyApprovedOutbound",
            ("queue", "table"),
            "managed",
        ),
    ],
)
def test_design_plan(
    design: str,
    public: bool,
    aks: bool,
    mode: str,
    subnets: tuple[str, ...],
    egress: tuple[str, ...],
    endpoints: bool,
    workspace_mode: str,
    rules: tuple[str, ...],
    target: str,
) -> None:
    plan = design_plan(design, public_network_access=public, aks_enabled=aks, managed_isolation_mode=mode)  # type: ignore[arg-type]
    assert (plan.subnet_roles, plan.egress_roles) == (subnets, egress)
    assert (plan.private_endpoints, plan.workspace_isolation_mode) == (endpoints, workspace_mode)
    assert plan.managed_storage_rules == rules and plan.online_target == target
    assert plan.compute_in_subnet is (design == "customerVnet")
    assert plan.provision_network_now is (design == "managedVnet")


@pytest.mark.parametrize(
    ("design", "groups"),
    [("customerVnet", ("blob", "file", "queue", "table")), ("managedVnet", ("blob", "file"))],
)
def test_storage_endpoints_in_our_vnet_follow_where_batch_runs(design: str, groups: tuple[str, ...]) -> None:
    plan = design_plan(
        design,  # type: ignore[arg-type]
        public_network_access=False,
        aks_enabled=False,
        managed_isolation_mode="AllowOnlyApprovedOutbound",
    )
    assert plan.storage_endpoint_groups == groups


@pytest.mark.parametrize(
    ("design", "aks", "target", "shared_keys"),
    [
        ("customerVnet", True, "kubernetes", True),
        ("customerVnet", False, "managed", False),
        ("managedVnet", False, "managed", False),
    ],
)
def test_shared_key_default_is_on_only_for_kubernetes_online_endpoints(
    design: str, aks: bool, target: str, shared_keys: bool
) -> None:
    plan = design_plan(
        design,  # type: ignore[arg-type]
        public_network_access=False,
        aks_enabled=aks,
        managed_isolation_mode="AllowOnlyApprovedOutbound",
    )
    assert online_target(design, aks) == plan.online_target == target  # type: ignore[arg-type]
    assert plan.storage_shared_key_default is shared_keys


@pytest.mark.parametrize("design", DESIGNS)
def test_design_diagram_is_a_mermaid_block_of_the_designs_subnets(design: str) -> None:
    diagram = design_diagram(design)  # type: ignore[arg-type]
    assert diagram.startswith("```mermaid\nflowchart LR\n") and diagram.endswith("\n```")
    plan = design_plan(
        design,  # type: ignore[arg-type]
        public_network_access=False,
        aks_enabled=design == "customerVnet",
        managed_isolation_mode="AllowOnlyApprovedOutbound",
    )
    for role in plan.subnet_roles:
        assert f"snet-{role}" in diagram
    assert ("Azure ML managed VNet" in diagram) is (design == "managedVnet")


# ---- config: isolationDesign, shared keys -------------------------------------------------------


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_both_profiles_default_to_the_customer_vnet(environment: str) -> None:
    cfg = example_config(environment)
    assert cfg.isolation_design == "customerVnet" and cfg.workspace_isolation_mode == "Disabled"
    assert cfg.network.private_endpoints is True and cfg.storage_shared_key_access is True


@pytest.mark.parametrize(
    ("environment", "mode"), [("dev", "AllowInternetOutbound"), ("prod", "AllowOnlyApprovedOutbound")]
)
def test_managed_vnet_takes_the_profiles_isolation_mode(environment: str, mode: str) -> None:
    cfg = example_config(environment, **MANAGED)
    assert cfg.isolation_design == "managedVnet" and cfg.workspace_isolation_mode == mode
    assert cfg.aks is None and cfg.storage_shared_key_access is False
    assert cfg.network.private_endpoints is (environment == "prod")


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_managed_vnet_with_aks_is_refused_naming_the_azure_limitation_and_the_fix(environment: str) -> None:
    found = problems_of(environment, isolationDesign="managedVnet", **NO_TLS)
    (message,) = found["isolationDesign"]
    assert "AZURE-FACTS 1" in message and "how-to-managed-network.md, Limitations" in message
    assert "Kubernetes and attached VMs aren't supported" in message
    assert "enableAks=false" in message and "isolationDesign=customerVnet" in message


def test_unknown_design_is_refused_naming_both_designs() -> None:
    (message,) = problems_of("dev", isolationDesign="hubSpoke")["isolationDesign"]
    assert "customerVnet, managedVnet" in message


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), (None, True)])
def test_shared_key_access_is_a_switch_over_the_design_default(value: str | None, expected: bool) -> None:
    assert example_config("prod", storageSharedKeyAccess=value).storage_shared_key_access is expected


def test_shared_key_access_must_be_a_boolean() -> None:
    assert "true or false" in problems_of("dev", storageSharedKeyAccess="maybe")["storageSharedKeyAccess"][0]


def test_inference_keys_get_no_cross_key_rules_without_aks_but_keep_their_form() -> None:
    values = example_values(
        isolationDesign="managedVnet", enableAks="false", inferenceLoadBalancerIp="10.99.0.4"
    )
    check = check_config(values, stack="prod", secret_keys=secret_keys_of(values))
    assert check.config is not None and check.config.aks is None
    warned = {warning.key: str(warning) for warning in check.warnings}
    assert "has no effect while enableAks is false" in warned[f"{P}:inferenceLoadBalancerIp"]
    assert "inferenceLoadBalancerIp" in problems_of(
        "prod", isolationDesign="managedVnet", enableAks="false", inferenceLoadBalancerIp="x"
    )


# ---- config: TLS of the inference router --------------------------------------------------------


@pytest.mark.parametrize("missing", ["inferenceSslCname", "inferenceSslCertPem", "inferenceSslKeyPem"])
def test_prod_requires_all_three_tls_values(missing: str) -> None:
    found = problems_of("prod", **{missing: None})
    assert list(found) == [missing] and "AZURE-FACTS 13" in found[missing][0]


def test_dev_may_serve_plain_http_but_not_half_of_tls() -> None:
    cfg = example_config("dev", **NO_TLS)
    assert cfg.aks is not None and cfg.aks.tls is None
    found = problems_of("dev", inferenceSslKeyPem=None)
    assert list(found) == ["inferenceSslKeyPem"] and "together" in found["inferenceSslKeyPem"][0]


def test_tls_material_is_a_secret_and_never_shown() -> None:
    cert, key = self_signed_pem("ml-scoring.taxi.contoso.com")
    values = example_values()
    with pytest.raises(ConfigError) as error:
        parse_config(values, stack="prod", secret_keys=frozenset())
    text = str(error.value)
    assert "inferenceSslKeyPem" in text and "plaintext" in text
    assert key not in text and cert not in text and "PRIVATE KEY" not in text
    cfg = example_config("prod")
    assert key not in repr(cfg) and cfg.aks is not None and cfg.aks.tls is not None
    assert cfg.aks.tls.key_pem.reveal() == key


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ml-scoring.contoso.com", False),
        ("a.b", False),
        ("scoring", True),
        ("*.contoso.com", True),
        ("ML.contoso.com", True),
        ("ml.contoso.com.", True),
        ("-ml.contoso.com", True),
        ("ml_scoring.contoso.com", True),
        ("a" * 63 + ".com", False),
        ("a" * 64 + ".com", True),
    ],
)
def test_scoring_host_name_rules(name: str, problem: bool) -> None:
    assert (hostname_problem(name) is not None) is problem


def test_certificate_must_name_the_host() -> None:
    cert, key = self_signed_pem("other.contoso.com")
    found = problems_of("prod", inferenceSslCertPem=cert, inferenceSslKeyPem=key)
    assert list(found) == ["inferenceSslCertPem"]
    assert "does not name ml-scoring.taxi.contoso.com" in found["inferenceSslCertPem"][0]


def test_key_must_belong_to_the_certificate() -> None:
    _, other_key = self_signed_pem("other.contoso.com")
    found = problems_of("prod", inferenceSslKeyPem=other_key)
    assert list(found) == ["inferenceSslKeyPem"] and "does not belong" in found["inferenceSslKeyPem"][0]


@pytest.mark.parametrize(
    ("cert", "key", "cert_words", "key_words"),
    [
        ("not a pem", "x", "PEM certificate chain", None),
        (
            None,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nx\n-----END ENCRYPTED PRIVATE KEY-----\n",
            None,
            "passphrase",
        ),
        (None, "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n", None, "PEM private key"),
    ],
)
def test_malformed_tls_material_is_named(
    cert: str | None, key: str, cert_words: str | None, key_words: str | None
) -> None:
    good_cert, _ = self_signed_pem("ml.contoso.com")
    cert_problems, key_problems = certificate_problems(cert or good_cert, key, "ml.contoso.com")
    assert (cert_words in " ".join(cert_problems)) if cert_words else cert_problems == []
    assert (key_words in " ".join(key_problems)) if key_words else key_problems == []


@pytest.mark.parametrize(
    ("pattern_host", "host", "covered"),
    [("*.contoso.com", "ml.contoso.com", True), ("*.contoso.com", "a.ml.contoso.com", False)],
)
def test_wildcard_certificates_cover_exactly_one_label(pattern_host: str, host: str, covered: bool) -> None:
    cert, key = self_signed_pem(pattern_host)
    cert_problems, key_problems = certificate_problems(cert, key, host)
    assert (cert_problems == []) is covered and key_problems == []


def test_expired_certificate_is_refused() -> None:
    cert, key = self_signed_pem("ml.contoso.com")
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=400)
    cert_problems, _ = certificate_problems(cert, key, "ml.contoso.com", now=later)
    assert any("is not valid now" in problem for problem in cert_problems)


def test_offline_stand_ins_skip_the_pem_checks() -> None:
    stand_ins = {
        "inferenceSslCertPem": f"stand-in-for-{P}:inferenceSslCertPem",
        "inferenceSslKeyPem": f"stand-in-for-{P}:inferenceSslKeyPem",
    }
    assert problems_of("prod", **stand_ins) == {}
    assert "inferenceSslCertPem" in problems_of("prod", inferenceSslCertPem="stand-in-for-something-else")


def test_offline_plan_stands_in_for_the_shipped_secrets_as_the_config_expects() -> None:
    from stacks.plan import stack_input

    stack_in = stack_input("prod")
    for key in ("inferenceSslCertPem", "inferenceSslKeyPem"):
        assert stack_in.values[f"{P}:{key}"] == f"stand-in-for-{P}:{key}"
        assert f"{P}:{key}" in stack_in.secret_keys


# ---- config: the scoring load balancer IP -------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "valid"),
    [
        ("10.10.16.4", True),
        ("10.10.31.254", True),
        ("10.10.16.3", False),
        ("10.10.16.0", False),
        ("10.10.31.255", False),
        ("10.10.32.4", False),
        ("10.10.16", False),
    ],
)
def test_load_balancer_ip_must_be_a_usable_address_of_the_aks_subnet(ip: str, valid: bool) -> None:
    found = problems_of("prod", inferenceLoadBalancerIp=ip)
    if valid:
        assert found == {} and example_config("prod", inferenceLoadBalancerIp=ip).aks.load_balancer_ip == ip  # type: ignore[union-attr]
    else:
        # An address of the wrong form is refused by its form; an address outside or reserved names the subnet.
        words = "an IPv4 address" if ip.count(".") != 3 else "10.10.16.0/20"
        assert list(found) == ["inferenceLoadBalancerIp"] and words in found["inferenceLoadBalancerIp"][0]
