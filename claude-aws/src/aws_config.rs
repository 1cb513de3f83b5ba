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

/// `text` with the profile `name` set to `settings` (in order). An existing profile keeps its
/// other settings and comments, loses the ones in `settings` and those competing for credentials;
/// a new profile is appended at the end. Applying it twice changes nothing more.
pub fn upsert_profile(text: &str, name: &str, settings: &[(&str, String)]) -> String {
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let section = format!("profile {name}");
    let ours: Vec<String> = settings
        .iter()
        .map(|(k, v)| format!("{k} = {v}{nl}"))
        .collect();
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
        out.extend(ours);
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
    let mut kept = Vec::new();
    let mut dropping = false;
    for line in &lines[start + 1..body_end] {
        if let Some(k) = key(line) {
            dropping = settings.iter().any(|(s, _)| *s == k) || COMPETING.contains(&k.as_str());
        } else if !line.starts_with([' ', '\t']) {
            dropping = false;
        }
        if !dropping {
            kept.push(line.to_string());
        }
    }
    if let Some(last) = kept.last_mut() {
        if !last.ends_with('\n') {
            last.push_str(nl);
        }
    }
    let mut out: String = lines[..start].concat();
    let head = lines[start];
    out.push_str(head);
    if !head.ends_with('\n') {
        out.push_str(nl);
    }
    out.extend(ours);
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

    fn set(cp: &str) -> Vec<(&'static str, String)> {
        vec![
            ("credential_process", cp.to_owned()),
            ("region", "eu-west-1".into()),
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
}
