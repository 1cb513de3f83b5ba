"""Lints IAM policies with parliament: every policy document in the CloudFormation templates, and
the session policies the gateway generates (JSON lines from `claude-gateway aws-policies`).

    python lint-iam.py POLICIES.jsonl TEMPLATE...

Each template is rendered once per parameter set in cfn/lint-scenarios/ (<template>.<name>.json),
or with its defaults when it has none: conditions are evaluated, and the intrinsic functions a
policy uses are resolved with the scenario's values, AWS pseudo parameters and ARNs of the right
shape for the template's own resources. Every finding fails, at every severity, except those in
ACCEPTED below, each with its reason. Exits 1 on any other finding.
"""

import json
import os
import re
import sys

from cfnlint.decode import decode
from parliament import analyze_policy_string, enhance_finding

ACCOUNT = "123456789012"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::StackName": "stack",
    "AWS::URLSuffix": "amazonaws.com",
}


# Actions AWS added after the IAM database parliament ships (cfn-lint's newer one knows them).
NEWER_THAN_PARLIAMENT = {"bedrock:CountTokens"}


def accepted(finding, statement, generated):
    """Why a finding is accepted, or None.

    UNKNOWN_ACTION is accepted only for the actions in NEWER_THAN_PARLIAMENT.
    RESOURCE_STAR is accepted in two places:
      * a generated session policy: it allows the level's actions on "*" and scopes nothing by
        resource, because a session policy only narrows the project role's own policy, which
        does the scoping (by resource tag or listed ARNs);
      * a template statement whose allow is bounded by an aws:ResourceTag/ condition: the
        resources are whatever carries the project's tag, unknown when the template is written;
      * kms:Decrypt alone, bounded by kms:ViaService (Secrets Manager) and the encryption
        context naming the secrets: the customer-managed key a bring-your-own secret uses is
        unknown when the template is written.
    """
    if finding.issue == "UNKNOWN_ACTION":
        action = str(finding.detail).removeprefix("Unknown action ")
        return "newer than parliament's IAM database" if action in NEWER_THAN_PARLIAMENT else None
    if finding.issue != "RESOURCE_STAR":
        return None
    if generated:
        return "session policy: the project role's own policy scopes the resources"
    conditions = (statement or {}).get("Condition") or {}
    tagged = any(k.startswith("aws:ResourceTag/") for k in (conditions.get("StringEquals") or {}))
    if tagged:
        return "bounded by the aws:ResourceTag condition"
    actions = (statement or {}).get("Action")
    actions = [actions] if isinstance(actions, str) else (actions or [])
    via = str((conditions.get("StringEquals") or {}).get("kms:ViaService", ""))
    context = (conditions.get("StringLike") or {}).get("kms:EncryptionContext:SecretARN")
    if actions == ["kms:Decrypt"] and via.startswith("secretsmanager.") and context:
        return "bounded to these secrets through Secrets Manager"
    return None


class Renderer:
    """Resolves the intrinsic functions of one template with one parameter set."""

    def __init__(self, template, values):
        self.template = template
        self.resources = template.get("Resources") or {}
        self.params = {}
        for name, p in (template.get("Parameters") or {}).items():
            v = values.get(name, p.get("Default", f"ref-{name}"))
            if p.get("Type", "").startswith("CommaDelimitedList") or p.get("Type", "").startswith("List<"):
                v = v if isinstance(v, list) else [x.strip() for x in str(v).split(",")]
                v = [x for x in v if x != ""]
            self.params[name] = v
        self.conditions = {}
        for name in template.get("Conditions") or {}:
            self.condition(name)

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self.conditions[name]

    def ref(self, name):
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        kind = (self.resources.get(name) or {}).get("Type", "")
        if kind == "AWS::SecretsManager::Secret":
            return f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}-AbCdEf"
        return f"ref-{name}"

    def getatt(self, name, attr):
        kind = (self.resources.get(name) or {}).get("Type", "")
        if kind == "AWS::Logs::LogGroup" and attr == "Arn":
            return f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{name}:*"
        if kind == "AWS::IAM::Role" and attr == "Arn":
            return f"arn:aws:iam::{ACCOUNT}:role/{name}"
        return f"getatt-{name}-{attr}"

    def sub(self, arg):
        text, names = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        names = {k: self.value(v) for k, v in names.items()}

        def one(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in names:
                return str(names[name])
            if "." in name:
                return str(self.getatt(*name.split(".", 1)))
            if name in PSEUDO or name in self.params or name in self.resources:
                v = self.ref(name)
                return ",".join(v) if isinstance(v, list) else str(v)
            return "${" + name + "}"  # an IAM policy variable such as ${aws:PrincipalTag/project}

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def value(self, node):
        if isinstance(node, list):
            out = []
            for item in node:
                v = self.value(item)
                if v is not NO_VALUE:
                    out.append(v)
            return out
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if fn == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if fn == "Fn::Not":
                return not self.value(arg[0])
            if fn == "Fn::And":
                return all(self.value(a) for a in arg)
            if fn == "Fn::Or":
                return any(self.value(a) for a in arg)
            if fn == "Fn::Join":
                return arg[0].join(str(x) for x in self.value(arg[1]))
            if fn == "Fn::Split":
                return self.value(arg[1]).split(arg[0])
            if fn == "Fn::Select":
                return self.value(arg[1])[int(self.value(arg[0]))]
            if fn == "Fn::Sub":
                return self.sub(arg)
            if fn == "Fn::GetAtt":
                name, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.getatt(name, attr)
        out = {}
        for k, v in node.items():
            if k.startswith("Fn::ForEach::"):
                ident, collection, body = v
                for item in self.value(collection):
                    for bk, bv in body.items():
                        key = bk.replace("${" + ident + "}", item).replace("&{" + ident + "}", re.sub(r"\W", "", item))
                        out[key] = self.value(bv)
                continue
            v = self.value(v)
            if v is not NO_VALUE:
                out[k] = v
        return out


NO_VALUE = object()


def template_policies(path):
    """(label, policy document) for every IAM policy of the template, per parameter set."""
    template, errors = decode(path)
    if errors or not template:
        return  # cfn-lint reports parse errors
    stem = os.path.basename(path)[: -len(".yaml")]
    scenario_dir = os.path.join(os.path.dirname(path), "lint-scenarios")
    scenarios = sorted(
        f for f in os.listdir(scenario_dir) if f.startswith(stem + ".") and f.endswith(".json")
    ) if os.path.isdir(scenario_dir) else []
    sets = [(s, {p["ParameterKey"]: p["ParameterValue"] for p in json.load(open(os.path.join(scenario_dir, s)))})
            for s in scenarios] or [("defaults", {})]
    for label, values in sets:
        r = Renderer(template, values)
        for name, res in (template.get("Resources") or {}).items():
            if "Condition" in res and not r.condition(res["Condition"]):
                continue
            props = res.get("Properties") or {}
            docs = []
            if res.get("Type") == "AWS::IAM::Role":
                docs.append(("trust", props.get("AssumeRolePolicyDocument")))
                for p in r.value(props.get("Policies") or []):
                    docs.append((p.get("PolicyName"), p.get("PolicyDocument")))
            elif res.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
                docs.append(("policy", props.get("PolicyDocument")))
            for what, doc in docs:
                if doc is None:
                    continue
                doc = r.value(doc)
                if what == "trust":
                    # A trust policy is the role's resource policy: its resource is the role.
                    for stmt in statements(doc):
                        stmt.setdefault("Resource", f"arn:aws:iam::{ACCOUNT}:role/{name}")
                yield f"{path} [{label}] {name} {what}", doc


def generated_policies(path):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                entry = json.loads(line)
                yield f"session policy of {entry['project']} ({entry['level']})", entry["policy"]


def statements(doc):
    s = doc.get("Statement", [])
    return s if isinstance(s, list) else [s]


def lint(label, doc, generated):
    policy = analyze_policy_string(json.dumps(doc), ignore_private_auditors=True)
    failures = 0
    for f in policy.findings:
        f = enhance_finding(f)
        # The statement a RESOURCE_STAR finding is about: an allow on "*" with the actions it names.
        stmt = next((s for s in statements(doc) if s.get("Effect") == "Allow"
                     and "*" in _list(s.get("Resource")) and _same(f, s)), None)
        reason = accepted(f, stmt, generated)
        if reason:
            print(f"   {label}: accepted {f.issue} ({reason})")
        else:
            failures += 1
            print(f"   {label}: {f.severity} {f.issue} {f.detail}", flush=True)
    return failures


def _same(finding, stmt):
    """Whether a finding's detail (the actions it names) belongs to this statement."""
    detail = finding.detail if isinstance(finding.detail, list) else []
    if not all(isinstance(d, str) for d in detail):
        return False
    actions = _list(stmt.get("Action"))
    pattern = [re.compile("^" + re.escape(a).replace(r"\*", ".*") + "$", re.I) for a in actions]
    return bool(detail) and all(any(p.match(d) for p in pattern) for d in detail)


def _list(v):
    return v if isinstance(v, list) else [] if v is None else [v]


def main():
    generated, templates = sys.argv[1], sys.argv[2:]
    failures = checked = 0
    for label, doc in generated_policies(generated):
        failures += lint(label, doc, True)
        checked += 1
    if checked == 0:
        print(f"   {generated}: no generated session policy to lint", file=sys.stderr)
        failures += 1
    generated_count = checked
    for path in templates:
        for label, doc in template_policies(path):
            failures += lint(label, doc, False)
            checked += 1
    print(f"   {generated_count} generated session policies and {checked - generated_count} template policy documents linted")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
