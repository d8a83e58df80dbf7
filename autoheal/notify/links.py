"""Links that land: the Microsoft section a finding implements, the portal page of the failed instance (with
the tenant), and the `az` command that shows the same fact.

- Portal deep links: `https://portal.azure.com/#@<tenant>/resource<resource id>` opens the resource in that
  directory; without a tenant, `#resource<resource id>` lets the portal pick the signed-in directory (an empty
  `#@/resource` does not work reliably). Unverified against a portal document: the form is the one the
  portal's own "Copy link" produces.
- A Uniform instance is `<scale set id>/virtualMachines/<instanceId>` (numeric); a Flexible scale set's
  instance is a `Microsoft.Compute/virtualMachines/<name>` resource of its own, assumed in the scale set's
  resource group (the usual case; the snapshot's instance id is then the VM name).
- `az` commands are from the Azure CLI reference: `az vmss get-instance-view` (with `--instance-id`, or `*`
  for all), `az vm get-instance-view`, `az vmss show --query` (https://learn.microsoft.com/cli/azure/vmss,
  https://learn.microsoft.com/cli/azure/vm).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..diagnosis.references import section_for
from ..resource_ids import segments


@dataclass(frozen=True)
class Links:
    doc_label: str
    doc_url: str
    portal_label: str
    portal_url: str
    az_command: str


def portal_link(portal_url: str, resource_id: str, tenant_id: str = "") -> str:
    base = portal_url.rstrip("/")
    return f"{base}/#@{tenant_id}/resource{resource_id}" if tenant_id else f"{base}/#resource{resource_id}"


def instance_resource_id(scale_set_id: str, instance_id: str) -> str:
    if instance_id.isdigit():
        return f"{scale_set_id}/virtualMachines/{instance_id}"
    ids = segments(scale_set_id)
    return (
        f"/subscriptions/{ids.get('subscriptions', '')}/resourceGroups/{ids.get('resourcegroups', '')}"
        f"/providers/Microsoft.Compute/virtualMachines/{instance_id}"
    )


def az_command(finding_code: str, scale_set_id: str, instance_id: str = "") -> str:
    ids = segments(scale_set_id)
    where = f"-g {ids.get('resourcegroups', '')} -n {ids.get('virtualmachinescalesets', '')}"
    if finding_code in ("resilient-create-disabled", "resilient-delete-disabled"):
        return f"az vmss show {where} --query resiliencyPolicy"
    if finding_code in ("repairs-disabled", "repairs-suspended"):
        return f"az vmss get-instance-view {where} --query orchestrationServices"
    if instance_id and not instance_id.isdigit():
        return f"az vm get-instance-view -g {ids.get('resourcegroups', '')} -n {instance_id}"
    if instance_id:
        return f"az vmss get-instance-view {where} --instance-id {instance_id}"
    return f'az vmss get-instance-view {where} --instance-id "*"'


def links_for(
    finding_code: str,
    scale_set_id: str,
    instance_ids: list[str] | tuple[str, ...],
    *,
    portal_url: str,
    tenant_id: str = "",
    reference_fallback: tuple[str, str] = ("", ""),
) -> Links:
    """The first affected instance, when there is one, is what the portal link and the command show."""
    section = section_for(finding_code)
    doc_label, doc_url = (section.label, section.url) if section else reference_fallback
    first = instance_ids[0] if instance_ids else ""
    if first:
        target = instance_resource_id(scale_set_id, first)
        portal_label = f"Instance {first} in the Azure portal"
    else:
        target = scale_set_id
        portal_label = "Scale set in the Azure portal"
    return Links(
        doc_label=doc_label,
        doc_url=doc_url,
        portal_label=portal_label,
        portal_url=portal_link(portal_url, target, tenant_id),
        az_command=az_command(finding_code, scale_set_id, first),
    )
