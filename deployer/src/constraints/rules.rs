//! A template's `Rules`: assertions across parameters (a certificate needs a zone, CPU and memory
//! must be a Fargate size) that CloudFormation checks before it creates anything. They are
//! evaluated here over the parameters the deployer passes (template defaults for the rest), with
//! the functions rules may use: `Ref`, `Equals`, `Not`, `And`, `Or`, `Contains`.

use std::collections::BTreeMap;

use serde_yaml::Value;

/// One assertion of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    /// The rule's name.
    pub rule: String,
    /// When the rule applies (`None`: always).
    pub condition: Option<Value>,
    /// What must hold.
    pub assert: Value,
    /// The template's words for it.
    pub description: String,
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Text(String),
    List(Vec<String>),
    Bool(bool),
}

/// The assertions of every rule of a template.
pub fn assertions(doc: &Value) -> Vec<Assertion> {
    let mut out = Vec::new();
    let Some(Value::Mapping(rules)) = doc.get("Rules") else {
        return out;
    };
    for (name, rule) in rules {
        let rule_name = name.as_str().unwrap_or_default().to_owned();
        let Some(Value::Sequence(list)) = rule.get("Assertions") else {
            continue;
        };
        for a in list {
            if let Some(assert) = a.get("Assert") {
                out.push(Assertion {
                    rule: rule_name.clone(),
                    condition: rule.get("RuleCondition").cloned(),
                    assert: assert.clone(),
                    description: a
                        .get("AssertDescription")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" "),
                });
            }
        }
    }
    out
}

impl Assertion {
    /// Whether it holds for the parameter values `params` (name → value); parameters named in
    /// `lists` are comma-delimited lists. `Err` for a function this evaluator does not know.
    pub fn holds(
        &self,
        params: &BTreeMap<String, String>,
        lists: &[String],
    ) -> Result<bool, String> {
        let applies = match &self.condition {
            Some(c) => truth(&eval(c, params, lists)?)?,
            None => true,
        };
        Ok(!applies || truth(&eval(&self.assert, params, lists)?)?)
    }

    /// The parameters it reads, in order of appearance (the assertion's first).
    pub fn parameters(&self) -> Vec<String> {
        let mut out = Vec::new();
        refs(&self.assert, &mut out);
        if let Some(c) = &self.condition {
            refs(c, &mut out);
        }
        out
    }
}

fn truth(v: &Val) -> Result<bool, String> {
    match v {
        Val::Bool(b) => Ok(*b),
        other => Err(format!("{other:?} is not a condition")),
    }
}

/// The function name and its argument of `v` (`!Equals [...]` or `{"Fn::Equals": [...]}`).
fn function(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            &t.value,
        )),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            Some((k.strip_prefix("Fn::").unwrap_or(k).to_owned(), arg))
        }
        _ => None,
    }
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match function(v) {
        Some((f, Value::String(name))) if f == "Ref" => out.push(name.clone()),
        Some((_, arg)) => refs(arg, out),
        None => {
            if let Value::Sequence(items) = v {
                for i in items {
                    refs(i, out);
                }
            }
        }
    }
}

fn args<'a>(f: &str, arg: &'a Value, n: Option<usize>) -> Result<&'a [Value], String> {
    match arg {
        Value::Sequence(items) if n.is_none_or(|n| items.len() == n) => Ok(items),
        _ => Err(format!("Fn::{f} has the wrong arguments")),
    }
}

fn text(v: Val) -> Result<String, String> {
    match v {
        Val::Text(t) => Ok(t),
        other => Err(format!("{other:?} is not text")),
    }
}

fn eval(v: &Value, params: &BTreeMap<String, String>, lists: &[String]) -> Result<Val, String> {
    let Some((f, arg)) = function(v) else {
        return match v {
            Value::String(s) => Ok(Val::Text(s.clone())),
            Value::Number(n) => Ok(Val::Text(n.to_string())),
            Value::Bool(b) => Ok(Val::Text(b.to_string())),
            Value::Sequence(items) => items
                .iter()
                .map(|i| text(eval(i, params, lists)?))
                .collect::<Result<Vec<_>, _>>()
                .map(Val::List),
            other => Err(format!("cannot evaluate {other:?}")),
        };
    };
    match f.as_str() {
        "Ref" => {
            let name = arg.as_str().ok_or("Ref takes a name")?;
            let value = params
                .get(name)
                .ok_or_else(|| format!("no value for parameter {name}"))?;
            Ok(if lists.iter().any(|l| l == name) {
                Val::List(value.split(',').map(|s| s.trim().to_owned()).collect())
            } else {
                Val::Text(value.clone())
            })
        }
        "Equals" => {
            let a = args(&f, arg, Some(2))?;
            let (x, y) = (eval(&a[0], params, lists)?, eval(&a[1], params, lists)?);
            Ok(Val::Bool(text(x)? == text(y)?))
        }
        "Not" => {
            let a = args(&f, arg, Some(1))?;
            Ok(Val::Bool(!truth(&eval(&a[0], params, lists)?)?))
        }
        "And" | "Or" => {
            let mut values = Vec::new();
            for a in args(&f, arg, None)? {
                values.push(truth(&eval(a, params, lists)?)?);
            }
            let all = values.iter().all(|b| *b);
            let any = values.iter().any(|b| *b);
            Ok(Val::Bool(if f == "And" { all } else { any }))
        }
        "Contains" => {
            let a = args(&f, arg, Some(2))?;
            let Val::List(list) = eval(&a[0], params, lists)? else {
                return Err("Fn::Contains takes a list first".into());
            };
            Ok(Val::Bool(
                list.contains(&text(eval(&a[1], params, lists)?)?),
            ))
        }
        other => Err(format!("rules may not use Fn::{other} here")),
    }
}

#[cfg(test)]
mod tests {
    use crate::constraints::{broken_rules, rules_of};

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn broken(file: &'static str, list: &[(&str, &str)]) -> Vec<String> {
        broken_rules(file, &pairs(list))
            .unwrap()
            .iter()
            .map(|a| a.rule.clone())
            .collect()
    }

    #[test]
    fn every_template_s_rules_evaluate() {
        assert!(rules_of("gateway.yaml").unwrap().len() >= 4);
        let zone = [("HostedZoneId", "Z0123ABC")];
        assert!(broken("gateway.yaml", &zone).is_empty());
        assert!(broken("collector.yaml", &zone).is_empty());
        assert!(broken("client-vpn.yaml", &[]).is_empty());
    }

    #[test]
    fn rules_read_the_parameters_across() {
        assert_eq!(
            broken("gateway.yaml", &[]),
            ["AcmCertificateNeedsPublicZone"]
        );
        assert_eq!(
            broken(
                "gateway.yaml",
                &[("HostedZoneId", "Z1"), ("VpcId", "vpc-0123")]
            ),
            ["ExistingVpcNeedsSubnets"]
        );
        assert_eq!(
            broken(
                "gateway.yaml",
                &[
                    ("HostedZoneId", "Z1"),
                    ("TaskCpu", "1024"),
                    ("TaskMemory", "1024")
                ]
            ),
            ["TaskSizeIsAFargateSize"]
        );
        let a = &rules_of("gateway.yaml").unwrap()[0];
        assert_eq!(a.parameters(), ["HostedZoneId", "CertificateArn"]);
    }
}
