"""Runs the moto server for the deployer's end-to-end test, with six small fixes to moto's
CloudFormation emulation so the real templates in cfn/ can be deployed through it.

Usage: python3 moto_server.py PORT

What moto does not model it skips (as the test expects); the fixes only keep that skipping from
breaking the resources it does model:
  1. Fn::Cidr is evaluated (moto lacks it; the gateway and VPN templates use it).
  2. A Ref or Fn::GetAtt to a skipped resource yields "<LogicalId>-emulated" (or
     "<LogicalId>-<Attribute>-emulated") instead of crashing, so outputs exist.
  3. An output moto cannot compute becomes "<OutputKey>-emulated" instead of dropping all outputs.
  4. Executing an update change set records the new template, parameters and outputs on the stack,
     as CloudFormation does.
  5. Resource types moto models incorrectly for these templates are skipped (RDS instance and
     parameter group, load balancer listener), and deleting a VPC whose skipped dependants moto
     never tracked is not an error.
  6. Hosted zone ids start with Z, as Route 53's do (the templates' HostedZoneId pattern, which
     the deployer's profile check enforces, requires it).
"""

import ipaddress
import sys

from moto.cloudformation import models, parsing
from moto.route53 import models as route53_models

SKIPPED = {
    "AWS::RDS::DBInstance",
    "AWS::RDS::DBParameterGroup",
    "AWS::ElasticLoadBalancingV2::Listener",
}

_clean_json = parsing.clean_json


def clean_json(resource_json, resources_map):
    if isinstance(resource_json, dict) and "Fn::Cidr" in resource_json:
        block, count, bits = (_clean_json(x, resources_map) for x in resource_json["Fn::Cidr"])
        net = ipaddress.ip_network(str(block), strict=False)
        subnets = net.subnets(new_prefix=net.max_prefixlen - int(bits))
        return [str(s) for _, s in zip(range(int(count)), subnets)]
    out = _clean_json(resource_json, resources_map)
    if isinstance(resource_json, dict) and "Fn::GetAtt" in resource_json and (out is None or isinstance(out, dict)):
        name, attr = resource_json["Fn::GetAtt"][0], resource_json["Fn::GetAtt"][1]
        return f"{name}-{attr}-emulated"
    return out


parsing.clean_json = clean_json

_resource_class = parsing.resource_class_from_type
parsing.resource_class_from_type = lambda t: None if t in SKIPPED else _resource_class(t)


class Skipped:
    """Stands in for a resource moto does not create."""

    def __init__(self, logical_id):
        self.logical_id = logical_id
        self.physical_resource_id = f"{logical_id}-emulated"

    def get_cfn_attribute(self, name):
        return f"{self.logical_id}-{name}-emulated"


_getitem = parsing.ResourceMap.__getitem__


def getitem(self, key):
    found = _getitem(self, key)
    if found is None and key in self._resource_json_map:
        return Skipped(key)
    return found


parsing.ResourceMap.__getitem__ = getitem

_parse_output = parsing.parse_output


def parse_output(logical_id, output_json, resources_map):
    try:
        return _parse_output(logical_id, output_json, resources_map)
    except Exception:  # noqa: BLE001 - any failure means moto cannot compute this output
        return parsing.Output(key=logical_id, value=f"{logical_id}-emulated", description=output_json.get("Description"))


parsing.parse_output = parse_output

_apply = models.ChangeSet.apply


def apply(self):
    _apply(self)
    stack = self.stack
    stack.template = self.template
    stack._parse_template()
    if self.parameters:
        stack.parameters = self.parameters
    stack.output_map = stack._create_output_map()


models.ChangeSet.apply = apply

_delete_resource = parsing.ResourceMap._delete_resource


def delete_resource(self, resource, resource_json):
    try:
        return _delete_resource(self, resource, resource_json)
    except Exception as e:  # noqa: BLE001
        if resource_json.get("Type") == "AWS::EC2::VPC" and "DependencyViolation" in type(e).__name__ + str(e):
            return None
        raise


parsing.ResourceMap._delete_resource = delete_resource

_zone_id = route53_models.HostedZoneIdentifier.generate


def zone_id(self, existing_ids=None, tags=None):
    return "Z" + _zone_id(self, existing_ids, tags)[1:]


route53_models.HostedZoneIdentifier.generate = zone_id

if __name__ == "__main__":
    from moto.server import main

    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
