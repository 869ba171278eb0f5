"""The facts of AZURE-FACTS.md (review of December 2026) by number: which rules hold a plan to each, and which
facts no plan can break (they hold at run time, in specs or in CI), with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

FACTS: Mapping[int, str] = {
    1: "managed-network workspaces take no Kubernetes compute or attached VMs, nor clusters in your subnet",
    2: "a managed network is provisioned at workspace creation",
    3: "machines in subnets without default outbound access need an explicit outbound path",
    4: "AKS egress goes through its outbound type",
    5: "the post-deploy hook of a private workspace runs inside the VNet",
    6: "a managed online endpoint is public unless its spec disables public access",
    7: "nothing is granted that Azure ML grants its system identity itself",
    8: "with shared keys off the CI identity needs data roles; Contributor cannot assign roles",
    9: "batch needs table and queue roles on the compute identity, and queue/table outbound rules",
    10: "with storage public access off, the workspace identity reads the blob and file private endpoints",
    11: "the Azure ML extension does not support AKS with local accounts disabled",
    12: "inferenceRouterHA needs three nodes",
    13: "insecure inference is for dev/test; TLS needs sslCname and a certificate",
    14: "Container Insights with AAD auth needs a data collection rule association",
    15: "no secret in VM custom data",
    16: "the Azure ML MLflow registry has no aliases",
    17: "pipeline steps are reused unless force_rerun",
    18: "batch environments need azureml-core and azureml-dataset-runtime",
    19: "error_threshold -1 ignores every failed mini-batch",
    20: "at most 20 deployments per endpoint; online instances reserve 120 % of cores",
    21: "a CI federated token lives about 10 minutes",
    22: "retry behaviour of MLClient, blob uploads and POSTs",
    23: "the training subnet's NSG allows what Azure ML needs and the subnet is not delegated",
    24: "private registry and storage: image build compute, Premium with trusted services; private AKS needs",
    25: "a private AKS cluster has no public FQDN and the cluster a managed identity",
    26: "an ARM install of the extension sends what the az CLI derives",
    27: "Trusted Access only where needed; roles of a user-assigned workspace identity for attach",
    28: "the TLS scoring host has your DNS record to the internal load balancer",
    29: "Kubernetes deployments need instance types sized for MLflow models",
    30: "registry models are not supported on Kubernetes online endpoints",
    31: "batch in a private workspace: four storage private endpoints, compute in the VNet, no quarantine or CMK",
    32: "ARM calls work from outside the VNet, data-plane calls only inside",
    33: "no source confirms Kubernetes or batch endpoints with shared keys off",
}

NOT_PLAN_BREAKABLE: Mapping[int, str] = {
    6: "online endpoints are created by the post-deploy hook from mlops/azureml/deploy specs, not by Pulumi: "
    "check-specs and the hook hold them",
    16: "model aliases are an MLflow client call of the hook at run time",
    17: "force_rerun is a pipeline job setting (mlops/azureml/train/pipeline.yml), checked with the specs",
    18: "the batch environment is a conda spec of the hook, not a planned resource",
    19: "error_threshold is a batch deployment spec field, not a planned resource",
    20: "deployment counts and core quota are run-time state of the workspace and subscription",
    21: "token lifetime is a property of the CI run's credential",
    22: "retries are client behaviour of the hook",
    29: "instance types are Kubernetes objects the hook applies (kubectl / AKS run command), sized in the "
    "deployment spec",
    30: "which model the hook deploys, and from where, is decided at run time",
    33: "no source says either way, so no plan can obey or break it; storage-shared-key-disabled is advisory for it",
}


@dataclass(frozen=True)
class FactsVerdict:
    """How a plan fares against the facts a plan can break."""

    breakable: tuple[int, ...]
    broken: Mapping[int, tuple[str, ...]]
    """Fact number -> the rules (with a finding in this plan) that enforce it."""

    @property
    def obeyed(self) -> int:
        return len(self.breakable) - len(self.broken)

    def summary(self) -> str:
        text = f"AZURE-FACTS: {self.obeyed}/{len(self.breakable)} obeyed"
        if not self.broken:
            return text
        parts = [f"{fact} ({', '.join(rules)})" for fact, rules in sorted(self.broken.items())]
        return f"{text}; broken: {'; '.join(parts)}"


def verdict(breakable: Iterable[int], broken_by: Sequence[tuple[str, tuple[int, ...]]]) -> FactsVerdict:
    """The verdict from each finding's (rule, facts)."""
    broken: dict[int, list[str]] = {}
    for rule_name, facts in broken_by:
        for fact in facts:
            names = broken.setdefault(fact, [])
            if rule_name not in names:
                names.append(rule_name)
    return FactsVerdict(tuple(sorted(set(breakable))), {fact: tuple(names) for fact, names in broken.items()})
