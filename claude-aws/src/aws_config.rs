//! Editing the AWS CLI's config file (`~/.aws/config`): one `[profile NAME]` section added or
//! replaced, every other line of the file kept as it was (other sections, comments, blank lines,
//! line endings).

/// Settings in a profile that would compete with `credential_process` for the credentials; a
/// replaced profile drops them.
const COMPETING: [&str; 12] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "role_arn",
    "source_profile",
    "credential_source",
    "web_identity_token_file",
    "sso_session",
    "sso_account_id",
    "sso_role_name",
    "sso_start_url",
    "sso_region",
];

/// The section name a header line opens, whitespace-normalized (`[ profile  x ]` → `profile x`);
/// a comment may follow the header (`[profile x] ; note`).
fn header(line: &str) -> Option<String> {
    let (inner, after) = line.trim().strip_prefix('[')?.split_once(']')?;
    let after = after.trim();
    if !(after.is_empty() || after.starts_with(['#', ';'])) {
        return None;
    }
    Some(inner.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The key of a `key = value` line (not indented: indented lines continue the previous key).
fn key(line: &str) -> Option<String> {
    if line.starts_with([' ', '\t']) {
        return None;
    }
    let (k, _) = line.split_once('=')?;
    let k = k.trim();
    (!k.is_empty() && !k.starts_with(['#', ';'])).then(|| k.to_ascii_lowercase())
}

/// One setting of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting<'a> {
    /// `key = value`.
    Plain(&'a str, String),
    /// `key =` with the indented line `sub = value` under it (the AWS config's nested settings,
    /// like `s3` and its `addressing_style`); the other nested settings under `key` are kept.
    Nested(&'a str, &'a str, String),
    /// `key` removed when it holds exactly this value (a setting this program wrote earlier).
    RemoveIf(&'a str, String),
}

impl Setting<'_> {
    fn key(&self) -> &str {
        match self {
            Setting::Plain(k, _) | Setting::Nested(k, _, _) | Setting::RemoveIf(k, _) => k,
        }
    }
}

/// What happens to the lines of an existing setting.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    Drop,
    /// The nested lines under a key that a [`Setting::Nested`] names: kept under it, but for the
    /// sub-keys it sets.
    Merge(usize),
}

/// The key of an indented `sub = value` line under a nested setting.
fn sub_key(line: &str) -> Option<String> {
    let (k, _) = line.trim().split_once('=')?;
    Some(k.trim().to_ascii_lowercase())
}

/// The nested keys `settings` set, in their first-mention order, each with its sub-settings.
fn nested<'s>(settings: &'s [Setting<'s>]) -> Vec<(&'s str, Vec<(&'s str, &'s str)>)> {
    let mut out: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    for s in settings {
        if let Setting::Nested(k, sub, v) = s {
            match out.iter_mut().find(|(n, _)| n == k) {
                Some((_, subs)) => subs.push((sub, v)),
                None => out.push((k, vec![(sub, v)])),
            }
        }
    }
    out
}

/// `text` with the profile `name` set to `settings` (in order, nested ones after the plain).
/// An existing profile keeps its other settings and comments, loses the ones in `settings` and
/// those competing for credentials; a new profile is appended at the end. Applying it twice
/// changes nothing more.
pub fn upsert_profile(text: &str, name: &str, settings: &[Setting<'_>]) -> String {
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let section = format!("profile {name}");
    let groups = nested(settings);
    let mut merged: Vec<Vec<String>> = vec![Vec::new(); groups.len()];
    let ours = |merged: &[Vec<String>]| {
        let mut out: Vec<String> = settings
            .iter()
            .filter_map(|s| match s {
                Setting::Plain(k, v) => Some(format!("{k} = {v}{nl}")),
                _ => None,
            })
            .collect();
        for ((k, subs), kept) in groups.iter().zip(merged) {
            out.push(format!("{k} ={nl}"));
            out.extend(subs.iter().map(|(sub, v)| format!("    {sub} = {v}{nl}")));
            out.extend(kept.iter().cloned());
        }
        out
    };
    let start = lines
        .iter()
        .position(|l| header(l).as_deref() == Some(&section));
    let Some(start) = start else {
        let mut out = text.to_owned();
        if !out.is_empty() {
            if !out.ends_with('\n') {
                out.push_str(nl);
            }
            if !out.ends_with(&format!("{nl}{nl}")) && out.trim() != "" {
                out.push_str(nl);
            }
        }
        out.push_str(&format!("[{section}]{nl}"));
        out.extend(ours(&merged));
        return out;
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| header(l).is_some())
        .map_or(lines.len(), |i| start + 1 + i);
    // Comments and blank lines right before the next section belong to it.
    let mut body_end = end;
    while body_end > start + 1 {
        let t = lines[body_end - 1].trim();
        if t.is_empty() || t.starts_with(['#', ';']) {
            body_end -= 1;
        } else {
            break;
        }
    }
    let fate_of = |line: &str, k: &str| {
        if let Some(i) = groups.iter().position(|(n, _)| *n == k) {
            return Fate::Merge(i);
        }
        let value = line.split_once('=').map_or("", |(_, v)| v.trim());
        let drop = COMPETING.contains(&k)
            || settings.iter().any(|s| match s {
                Setting::RemoveIf(_, v) => s.key() == k && v == value,
                _ => s.key() == k,
            });
        if drop {
            Fate::Drop
        } else {
            Fate::Keep
        }
    };
    let mut kept = Vec::new();
    let mut fate = Fate::Keep;
    for line in &lines[start + 1..body_end] {
        if let Some(k) = key(line) {
            fate = fate_of(line, &k);
            if fate != Fate::Keep {
                continue;
            }
        } else if !line.starts_with([' ', '\t']) {
            fate = Fate::Keep;
        }
        let mut line = line.to_string();
        if !line.ends_with('\n') {
            line.push_str(nl);
        }
        match fate {
            Fate::Keep => kept.push(line),
            Fate::Drop => {}
            Fate::Merge(i) => {
                let ours =
                    sub_key(&line).is_some_and(|sub| groups[i].1.iter().any(|(s, _)| *s == sub));
                if !ours {
                    merged[i].push(line);
                }
            }
        }
    }
    let mut out: String = lines[..start].concat();
    let head = lines[start];
    out.push_str(head);
    if !head.ends_with('\n') {
        out.push_str(nl);
    }
    out.extend(ours(&merged));
    out.extend(kept);
    let rest = lines[body_end..].concat();
    out.push_str(&rest);
    out
}

/// The value of `key` in the profile `name`, if the profile exists and has it.
#[cfg(test)]
pub fn profile_value(text: &str, name: &str, wanted: &str) -> Option<String> {
    let section = format!("profile {name}");
    let mut inside = false;
    for line in text.lines() {
        if let Some(h) = header(line) {
            inside = h == section;
        } else if inside && key(line).as_deref() == Some(wanted) {
            return line.split_once('=').map(|(_, v)| v.trim().to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(cp: &str) -> Vec<Setting<'static>> {
        vec![
            Setting::Plain("credential_process", cp.to_owned()),
            Setting::Plain("region", "eu-west-1".into()),
        ]
    }

    const EXISTING: &str = "# my AWS config\n[default]\nregion = us-east-1\n\n[profile work] ; team\nsso_session = corp\n# keep me\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n";

    #[test]
    fn a_new_profile_is_appended_and_the_rest_kept() {
        let out = upsert_profile(
            EXISTING,
            "claude-pay",
            &set("/bin/claude-aws credentials --project pay"),
        );
        assert!(out.starts_with(EXISTING), "{out}");
        assert_eq!(
            &out[EXISTING.len()..],
            "\n[profile claude-pay]\ncredential_process = /bin/claude-aws credentials --project pay\nregion = eu-west-1\n"
        );
        assert_eq!(
            profile_value(&out, "claude-pay", "region").as_deref(),
            Some("eu-west-1")
        );
    }

    #[test]
    fn an_empty_or_unterminated_file_gets_a_clean_section() {
        assert_eq!(
            upsert_profile("", "p", &set("x")),
            "[profile p]\ncredential_process = x\nregion = eu-west-1\n"
        );
        assert_eq!(
            upsert_profile("[default]\nregion = a", "p", &set("x")),
            "[default]\nregion = a\n\n[profile p]\ncredential_process = x\nregion = eu-west-1\n"
        );
    }

    #[test]
    fn an_existing_profile_is_replaced_in_place_keeping_its_own_extras() {
        let text = "[default]\nregion = us-east-1\n[ profile  claude-pay ]\n# mine\nregion = us-west-2\noutput = json\naws_access_key_id = AKIAOLD\ns3 =\n  max_concurrent_requests = 4\ncredential_process = /old/path credentials --project pay\n\n# about the next one\n[profile other]\nregion = x\n";
        let out = upsert_profile(
            text,
            "claude-pay",
            &set("/new/claude-aws credentials --project pay"),
        );
        assert_eq!(
            out,
            "[default]\nregion = us-east-1\n[ profile  claude-pay ]\ncredential_process = /new/claude-aws credentials --project pay\nregion = eu-west-1\n# mine\noutput = json\ns3 =\n  max_concurrent_requests = 4\n\n# about the next one\n[profile other]\nregion = x\n"
        );
    }

    #[test]
    fn a_header_with_a_comment_still_ends_the_section_before_it() {
        let text = "[profile claude-pay]\nregion = a\n[profile work] ; team\nsso_session = corp\n";
        let out = upsert_profile(text, "claude-pay", &set("c"));
        assert_eq!(
            out,
            "[profile claude-pay]\ncredential_process = c\nregion = eu-west-1\n[profile work] ; team\nsso_session = corp\n"
        );
    }

    #[test]
    fn the_edit_is_idempotent() {
        for text in [
            EXISTING,
            "",
            "[profile claude-pay]\nregion = a\n",
            "[default]\r\nregion = a\r\n",
        ] {
            let once = upsert_profile(text, "claude-pay", &set("c"));
            let twice = upsert_profile(&once, "claude-pay", &set("c"));
            assert_eq!(once, twice, "{text:?}");
        }
    }

    #[test]
    fn crlf_files_stay_crlf_and_similar_names_are_not_touched() {
        let text = "[profile claude-pay-write]\r\nregion = a\r\n";
        let out = upsert_profile(text, "claude-pay", &set("c"));
        assert_eq!(
            out,
            "[profile claude-pay-write]\r\nregion = a\r\n\r\n[profile claude-pay]\r\ncredential_process = c\r\nregion = eu-west-1\r\n"
        );
    }

    fn via_gateway(cp: &str) -> Vec<Setting<'static>> {
        let mut s = set(cp);
        s.push(Setting::Plain("endpoint_url", "https://gw/aws/".into()));
        s.push(Setting::Nested("s3", "addressing_style", "path".into()));
        s
    }

    #[test]
    fn a_nested_setting_is_written_in_the_aws_config_syntax() {
        assert_eq!(
            upsert_profile("", "p", &via_gateway("c")),
            "[profile p]\ncredential_process = c\nregion = eu-west-1\nendpoint_url = https://gw/aws/\ns3 =\n    addressing_style = path\n"
        );
    }

    #[test]
    fn a_nested_setting_replaces_only_its_own_sub_key() {
        let text = "[profile p]\noutput = json\ns3 =\n  max_concurrent_requests = 4\n  addressing_style = virtual\nendpoint_url = https://elsewhere/\ncli_pager =\n[profile q]\nendpoint_url = x\n";
        let out = upsert_profile(text, "p", &via_gateway("c"));
        assert_eq!(
            out,
            "[profile p]\ncredential_process = c\nregion = eu-west-1\nendpoint_url = https://gw/aws/\ns3 =\n    addressing_style = path\n  max_concurrent_requests = 4\noutput = json\ncli_pager =\n[profile q]\nendpoint_url = x\n"
        );
        assert_eq!(upsert_profile(&out, "p", &via_gateway("c")), out);
        // Without a trailing newline, the last nested line still ends its line.
        let out = upsert_profile(
            "[profile p]\ns3 =\n  max_concurrent_requests = 4",
            "p",
            &via_gateway("c"),
        );
        assert!(
            out.ends_with("    addressing_style = path\n  max_concurrent_requests = 4\n"),
            "{out:?}"
        );
    }

    #[test]
    fn remove_if_drops_only_the_value_this_program_wrote() {
        let mut settings = set("c");
        settings.push(Setting::RemoveIf("endpoint_url", "https://gw/aws/".into()));
        let ours = upsert_profile(
            "[profile p]\nendpoint_url = https://gw/aws/\noutput = json\n",
            "p",
            &settings,
        );
        assert_eq!(
            ours,
            "[profile p]\ncredential_process = c\nregion = eu-west-1\noutput = json\n"
        );
        let theirs = "[profile p]\nendpoint_url = http://localhost:4566\n";
        assert!(upsert_profile(theirs, "p", &settings)
            .contains("endpoint_url = http://localhost:4566\n"));
    }
}
