//! The constraints each template puts on its parameters (`Type`, `AllowedValues`,
//! `AllowedPattern`, `MinValue`/`MaxValue`, `MinLength`/`MaxLength`), read from the templates built
//! into the binary, and a check of one value against them as CloudFormation makes it.
//!
//! The profile checks read their limits from here, so a profile the deployer accepts is one the
//! templates accept, and a template change moves the profile checks with it. [`rules`] does the
//! same for the assertions of each template's `Rules` section.

pub mod rules;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_yaml::Value;

use crate::stacks::ALL_TEMPLATES;

/// What a template declares about one parameter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraint {
    /// The template's file name.
    pub file: &'static str,
    /// The parameter's name.
    pub name: String,
    /// `String`, `Number`, `CommaDelimitedList`, or an AWS-specific type.
    pub kind: String,
    /// `AllowedValues`, as text.
    pub allowed_values: Vec<String>,
    /// `AllowedPattern`.
    pub pattern: Option<String>,
    /// `MinValue`.
    pub min_value: Option<f64>,
    /// `MaxValue`.
    pub max_value: Option<f64>,
    /// `MinLength`.
    pub min_length: Option<usize>,
    /// `MaxLength`.
    pub max_length: Option<usize>,
    /// `ConstraintDescription`, the template's own words for the pattern.
    pub description: Option<String>,
    /// `Default`, the value CloudFormation uses when none is passed.
    pub default: Option<String>,
}

/// Every parameter of every template, by (file, parameter).
pub type Table = BTreeMap<(&'static str, String), Constraint>;

/// The constraints of every template the deployer carries, read once.
pub fn table() -> Result<&'static Table, String> {
    static TABLE: OnceLock<Result<Table, String>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            let mut all = Table::new();
            for t in ALL_TEMPLATES {
                for c in parameters(t.file, t.body)? {
                    all.insert((t.file, c.name.clone()), c);
                }
            }
            Ok(all)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The constraint of parameter `name` in template `file`.
pub fn of(file: &str, name: &str) -> Result<&'static Constraint, String> {
    table()?
        .iter()
        .find(|((f, n), _)| *f == file && n == name)
        .map(|(_, c)| c)
        .ok_or_else(|| format!("{file} has no parameter {name}"))
}

/// The assertions of the `Rules` of template `file`.
pub fn rules_of(file: &str) -> Result<&'static [rules::Assertion], String> {
    type All = BTreeMap<&'static str, Vec<rules::Assertion>>;
    static RULES: OnceLock<Result<All, String>> = OnceLock::new();
    let all = RULES
        .get_or_init(|| {
            let mut all = All::new();
            for t in ALL_TEMPLATES {
                let doc: Value =
                    serde_yaml::from_str(t.body).map_err(|e| format!("{}: {e}", t.file))?;
                all.insert(t.file, rules::assertions(&doc));
            }
            Ok(all)
        })
        .as_ref()
        .map_err(Clone::clone)?;
    Ok(all.get(file).map(Vec::as_slice).unwrap_or_default())
}

/// The rule assertions of template `file` that fail for the parameters `passed` (template
/// defaults for the others), each with the parameters it reads.
pub fn broken_rules(
    file: &'static str,
    passed: &[(String, String)],
) -> Result<Vec<&'static rules::Assertion>, String> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut lists = Vec::new();
    for ((f, name), c) in table()? {
        if *f != file {
            continue;
        }
        if c.kind == "CommaDelimitedList" || c.kind.starts_with("List<") {
            lists.push(name.clone());
        }
        if let Some(d) = &c.default {
            values.insert(name.clone(), d.clone());
        }
    }
    for (k, v) in passed {
        values.insert(k.clone(), v.clone());
    }
    let mut broken = Vec::new();
    for a in rules_of(file)? {
        if !a
            .holds(&values, &lists)
            .map_err(|e| format!("{file} rule {}: {e}", a.rule))?
        {
            broken.push(a);
        }
    }
    Ok(broken)
}

/// Reads the `Parameters` section of a template.
pub fn parameters(file: &'static str, body: &str) -> Result<Vec<Constraint>, String> {
    let doc: Value = serde_yaml::from_str(body).map_err(|e| format!("{file}: {e}"))?;
    let Some(Value::Mapping(params)) = doc.get("Parameters") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (name, spec) in params {
        let name = scalar(name).ok_or_else(|| format!("{file}: a parameter name is not text"))?;
        let text = |k: &str| spec.get(k).and_then(scalar);
        let number = |k: &str| text(k).and_then(|v| v.parse::<f64>().ok());
        let length = |k: &str| text(k).and_then(|v| v.parse::<usize>().ok());
        let allowed_values = match spec.get("AllowedValues") {
            Some(Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
            _ => Vec::new(),
        };
        let c = Constraint {
            file,
            kind: text("Type").unwrap_or_else(|| "String".to_owned()),
            allowed_values,
            pattern: text("AllowedPattern"),
            min_value: number("MinValue"),
            max_value: number("MaxValue"),
            min_length: length("MinLength"),
            max_length: length("MaxLength"),
            description: text("ConstraintDescription"),
            default: text("Default"),
            name,
        };
        if let Some(p) = &c.pattern {
            full_match(p, "").map_err(|e| format!("{file} {}: {e}", c.name))?;
        }
        out.push(c);
    }
    Ok(out)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn show(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

impl Constraint {
    /// What a value must be, as a phrase: `one of 256, 512`, `a whole number from 2 to 50`.
    pub fn expectation(&self) -> String {
        if !self.allowed_values.is_empty() {
            return format!("one of {}", self.allowed_values.join(", "));
        }
        if self.kind == "Number" {
            return match (self.min_value, self.max_value) {
                (Some(lo), Some(hi)) => format!("a whole number from {} to {}", show(lo), show(hi)),
                (Some(lo), None) => format!("a number of at least {}", show(lo)),
                (None, Some(hi)) => format!("a number of at most {}", show(hi)),
                (None, None) => "a number".to_owned(),
            };
        }
        let mut parts = Vec::new();
        if let Some(p) = &self.pattern {
            parts.push(match &self.description {
                Some(d) => format!("{d} (pattern {p})"),
                None => format!("a value matching {p}"),
            });
        }
        match (self.min_length, self.max_length) {
            (Some(lo), Some(hi)) => parts.push(format!("{lo} to {hi} characters long")),
            (Some(lo), None) => parts.push(format!("at least {lo} characters long")),
            (None, Some(hi)) => parts.push(format!("at most {hi} characters long")),
            (None, None) => {}
        }
        if parts.is_empty() {
            "any value".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// Whether CloudFormation would take `value` for this parameter; list types are checked item
    /// by item. AWS-specific types (`AWS::EC2::VPC::Id`, ...) are looked up in the account by
    /// CloudFormation and are not checked here.
    pub fn accepts(&self, value: &str) -> bool {
        if self.kind.starts_with("AWS::") || self.kind.starts_with("List<") {
            return true;
        }
        if self.kind == "CommaDelimitedList" {
            return value.split(',').all(|item| self.accepts_one(item.trim()));
        }
        self.accepts_one(value)
    }

    fn accepts_one(&self, value: &str) -> bool {
        if self.kind == "Number" {
            let Ok(n) = value.parse::<f64>() else {
                return false;
            };
            if !n.is_finite()
                || self.min_value.is_some_and(|lo| n < lo)
                || self.max_value.is_some_and(|hi| n > hi)
            {
                return false;
            }
            if !self.allowed_values.is_empty() {
                return self
                    .allowed_values
                    .iter()
                    .any(|a| a.parse::<f64>().ok() == Some(n));
            }
            return true;
        }
        if !self.allowed_values.is_empty() && !self.allowed_values.iter().any(|a| a == value) {
            return false;
        }
        let chars = value.chars().count();
        if self.min_length.is_some_and(|lo| chars < lo)
            || self.max_length.is_some_and(|hi| chars > hi)
        {
            return false;
        }
        match &self.pattern {
            Some(p) => full_match(p, value).unwrap_or(false),
            None => true,
        }
    }

    /// `Ok` when [`Self::accepts`] takes `value`, else the problem as `"v" is not <expectation>
    /// (file Parameter)`.
    pub fn check(&self, value: &str) -> Result<(), String> {
        if self.accepts(value) {
            Ok(())
        } else {
            Err(format!(
                "{value:?} is not {} ({} {})",
                self.expectation(),
                self.file,
                self.name
            ))
        }
    }
}

/// Whether `pattern` matches the whole of `value`, as CloudFormation applies `AllowedPattern`.
///
/// The regular expression engine has no look-around; the one form the templates use, a lookahead
/// right after the opening `^` (`^(?=.{4,253}$)...`), is checked as a second expression that must
/// also match at the start.
pub fn full_match(pattern: &str, value: &str) -> Result<bool, String> {
    let body = pattern.strip_prefix('^').unwrap_or(pattern);
    if let Some(rest) = body.strip_prefix("(?=") {
        let end =
            closing_paren(rest).ok_or_else(|| format!("unbalanced lookahead in {pattern}"))?;
        let ahead = regex(&format!("^(?:{})", &rest[..end]))?;
        let tail = &rest[end + 1..];
        return Ok(ahead.is_match(value) && full_match(&format!("^{tail}"), value)?);
    }
    Ok(regex(&format!("^(?:{pattern})$"))?.is_match(value))
}

fn regex(p: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::Regex::new(p).map_err(|e| format!("pattern {p}: {e}"))
}

/// The index of the `)` closing a group whose `(` came just before `s`.
fn closing_paren(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut escaped = false;
    let mut in_class = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' => in_class = true,
            ']' => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_s_parameters_are_read() {
        let t = table().unwrap();
        let cpu = of("gateway.yaml", "TaskCpu").unwrap();
        assert!(cpu.allowed_values.contains(&"256".to_owned()));
        let min = of("gateway.yaml", "MinTasks").unwrap();
        assert_eq!((min.min_value, min.kind.as_str()), (Some(2.0), "Number"));
        assert!(t.len() > 60, "{}", t.len());
        assert!(of("gateway.yaml", "NoSuchThing").is_err());
    }

    #[test]
    fn values_are_checked_as_cloudformation_does() {
        let host = of("gateway.yaml", "GatewayHostname").unwrap();
        assert!(host.accepts("claude.corp.example.com"));
        assert!(!host.accepts("Claude.corp.example.com"), "lower case only");
        assert!(
            !host.accepts("claude.example.123"),
            "the last label is letters"
        );
        assert!(
            !host.accepts("a.b"),
            "the lookahead asks for 4 to 253 characters"
        );
        let long = format!("{}.example.com", ["abcdefghi"; 26].join("."));
        assert!(long.len() > 253 && !host.accepts(&long));
        assert!(!host.accepts(&format!("{}.example.com", "a".repeat(64))));

        let zone = of("gateway.yaml", "HostedZoneId").unwrap();
        assert!(zone.accepts("") && zone.accepts("Z0123ABC"));
        assert!(!zone.accepts("z0123abc") && !zone.accepts("Z0123ABC "));

        let cpu = of("gateway.yaml", "TaskCpu").unwrap();
        assert!(cpu.accepts("4096") && !cpu.accepts("384") && !cpu.accepts("8192"));
        assert_eq!(
            cpu.check("384").unwrap_err(),
            "\"384\" is not one of 256, 512, 1024, 2048, 4096 (gateway.yaml TaskCpu)"
        );

        let retention = of("gateway.yaml", "LogRetentionDays").unwrap();
        assert!(retention.accepts("90") && !retention.accepts("91") && !retention.accepts("x"));

        let tasks = of("gateway.yaml", "MinTasks").unwrap();
        assert!(tasks.accepts("2") && tasks.accepts("50"));
        assert!(!tasks.accepts("1") && !tasks.accepts("51") && !tasks.accepts(""));

        let part = of("gateway.yaml", "GatewayConfigPart1").unwrap();
        assert!(!part.accepts("") && part.accepts("{}"));
        assert!(!part.accepts(&"x".repeat(4097)));

        let class = of("gateway.yaml", "DBInstanceClass").unwrap();
        assert!(class.accepts("db.r7g.large") && !class.accepts("db.t4g"));
    }

    #[test]
    fn a_lookahead_is_only_supported_at_the_start() {
        assert!(full_match("^(?=.{2}$)[a-z]+$", "ab").unwrap());
        assert!(!full_match("^(?=.{2}$)[a-z]+$", "abc").unwrap());
        assert!(full_match("^a(?=b)", "ab").is_err());
    }
}
