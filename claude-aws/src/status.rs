//! `claude-aws status`: the projects the gateway lets this developer into, their windows and
//! recent write requests, as a table (or the gateway's JSON with `--json`).

use serde_json::Value;

use crate::error::{printable, Error};

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => printable(s, 40),
        Value::Null => "-".into(),
        other => printable(&other.to_string(), 40),
    }
}

fn window(p: &Value) -> String {
    match (p["from"].as_str(), p["until"].as_str()) {
        (None, None) => "open".into(),
        (Some(f), None) => format!("from {}", printable(f, 40)),
        (None, Some(u)) => format!("until {}", printable(u, 40)),
        (Some(f), Some(u)) => format!("{} - {}", printable(f, 40), printable(u, 40)),
    }
}

fn grants(p: &Value) -> String {
    let list: Vec<String> = p["grants"]
        .as_array()
        .map(|gs| {
            gs.iter()
                .take(5)
                .map(|g| match g["until"].as_str() {
                    Some(u) => format!("{} until {}", cell(&g["status"]), printable(u, 40)),
                    None => cell(&g["status"]),
                })
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(", ")
    }
}

/// The table for a `/v1/aws/status` answer.
pub fn render(status: &Value) -> Result<String, Error> {
    let projects = status["projects"].as_array().ok_or_else(|| {
        Error::Failed("the gateway's status answer has no list of projects".into())
    })?;
    let mut out = String::new();
    if let Some(who) = status["user"]["email"]
        .as_str()
        .or(status["user"]["sub"].as_str())
    {
        out.push_str(&format!("Signed in as {}\n", printable(who, 100)));
    }
    if projects.is_empty() {
        out.push_str("No AWS projects: you are not a member of any project now or later.\n");
        return Ok(out);
    }
    let header = ["PROJECT", "ENVIRONMENT", "LEVEL", "WINDOW", "GRANTS"].map(String::from);
    let rows: Vec<[String; 5]> = projects
        .iter()
        .map(|p| {
            [
                cell(&p["name"]),
                cell(&p["environment"]),
                cell(&p["level"]),
                window(p),
                grants(p),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_shows_projects_windows_and_grants() {
        let s = json!({"user": {"sub": "a", "email": "a@example.com"}, "projects": [
            {"name": "payments", "environment": "prod", "regions": ["eu-west-1"], "level": "write",
             "from": "2026-12-01T00:00:00Z", "until": "2027-01-31T00:00:00Z",
             "grants": [{"id": "grt_1", "status": "approved", "until": "2026-12-06T12:00:00Z"},
                        {"id": "grt_0", "status": "denied", "until": null}]},
            {"name": "web\u{1b}[31m", "environment": "nonprod", "level": "read", "from": null, "until": null, "grants": []}
        ]});
        let t = render(&s).unwrap();
        assert_eq!(
            t,
            "Signed in as a@example.com\n\
             PROJECT   ENVIRONMENT  LEVEL  WINDOW                                       GRANTS\n\
             payments  prod         write  2026-12-01T00:00:00Z - 2027-01-31T00:00:00Z  approved until 2026-12-06T12:00:00Z, denied\n\
             web[31m   nonprod      read   open                                         -\n"
        );
        assert!(render(&json!({"projects": []}))
            .unwrap()
            .contains("No AWS projects"));
        assert!(matches!(render(&json!({"nope": 1})), Err(Error::Failed(_))));
    }
}
