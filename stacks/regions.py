"""Azure public-cloud regions that offer Azure Machine Learning (checked against the service's region list)."""

AML_REGIONS: frozenset[str] = frozenset(
    {
        "australiacentral", "australiaeast", "australiasoutheast", "brazilsouth", "canadacentral",
        "canadaeast", "centralindia", "centralus", "eastasia", "eastus", "eastus2", "francecentral",
        "germanywestcentral", "italynorth", "japaneast", "japanwest", "koreacentral", "koreasouth",
        "mexicocentral", "northcentralus", "northeurope", "norwayeast", "polandcentral", "qatarcentral",
        "southafricanorth", "southcentralus", "southeastasia", "southindia", "spaincentral",
        "swedencentral", "switzerlandnorth", "switzerlandwest", "uaenorth", "uksouth", "ukwest",
        "westcentralus", "westeurope", "westus", "westus2", "westus3",
    }
)
