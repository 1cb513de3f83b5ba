//! `claude-aws login` and `logout`: the device sign-in against the gateway, the session stored.
//!
//! What login writes to stderr is a stable, parseable interface (tests and wrappers read it):
//!
//! ```text
//! Open https://gw.example.com/device?user_code=BCDF-GHJK and confirm the code BCDF-GHJK
//! ```
//!
//! exactly one such line, first `Open `, then the verification URL (no spaces), then
//! ` and confirm the code `, then the user code. Other stderr lines (the operator's notice, the
//! progress) never start with `Open `. On success the last line is `Signed in to <gateway>.`

use std::time::Duration;

use crate::client::Gateway;
use crate::env::Env;
use crate::error::Error;
use crate::oauth::{self, Poll};
use crate::session::{now, resolve_gateway};
use crate::store::{Session, Store};

/// Consecutive failed polls (network) tolerated before giving up.
const POLL_FAILURES: u32 = 3;

/// The line that tells the person what to open and which code to confirm.
pub fn prompt_line(url: &str, user_code: &str) -> String {
    format!("Open {url} and confirm the code {user_code}")
}

/// Runs the sign-in.
pub async fn login(env: &Env, flag: Option<&str>, open_browser: bool) -> Result<(), Error> {
    let store = Store::open(env)?;
    let stored = store.load().ok().flatten();
    let base = resolve_gateway(flag, stored.as_ref()).map_err(|e| match e {
        Error::NotSignedIn(_) => Error::Usage(
            "which gateway? Give --gateway https://… (or set CLAUDE_AWS_GATEWAY)".into(),
        ),
        e => e,
    })?;
    let gw = Gateway::new(&base)?;
    let start = oauth::start(&gw).await?;
    if let Some(notice) = &start.login_notice {
        eprintln!("Notice: {notice}");
    }
    eprintln!(
        "{}",
        prompt_line(&start.verification_uri_complete, &start.user_code)
    );
    if open_browser {
        open(&start.verification_uri_complete);
    }
    eprintln!(
        "Waiting for the sign-in to be confirmed (the code is valid for {} minutes)...",
        start.expires_in.div_ceil(60)
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(start.expires_in);
    let mut interval = start.interval;
    let mut failures = 0;
    let tokens = loop {
        let wake = tokio::time::Instant::now() + Duration::from_secs(interval);
        if wake > deadline {
            return Err(Error::not_signed_in(
                "the sign-in code expired before it was confirmed; start again",
            ));
        }
        tokio::time::sleep_until(wake).await;
        match oauth::poll(&gw, &start.device_code).await {
            Ok(Poll::Done(t)) => break t,
            Ok(Poll::Pending) => failures = 0,
            // RFC 8628 §3.5: add five seconds to the interval.
            Ok(Poll::SlowDown) => interval = (interval + 5).min(60),
            Err(Error::Unreachable(m)) if failures + 1 < POLL_FAILURES => {
                failures += 1;
                eprintln!("{m}; retrying");
            }
            Err(e) => return Err(e),
        }
    };
    let session = Session {
        gateway: gw.base().to_owned(),
        refresh_token: tokens.refresh_token,
        access_expires_at: Some(now() + tokens.expires_in),
        access_token: Some(tokens.access_token),
    };
    store.save(&session)?;
    eprintln!("Signed in to {}.", gw.base());
    eprintln!("The session is kept in {}.", store.describe());
    Ok(())
}

/// Opens `url` in the default browser, best effort, never through a shell.
fn open(url: &str) {
    let (program, args): (&str, &[&str]) = if cfg!(target_os = "macos") {
        ("open", &[])
    } else if cfg!(windows) {
        ("rundll32", &["url.dll,FileProtocolHandler"])
    } else {
        ("xdg-open", &[])
    };
    let _ = std::process::Command::new(program)
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Forgets the stored session.
pub fn logout(env: &Env) -> Result<(), Error> {
    let store = Store::open(env)?;
    let gateway = store.load().ok().flatten().map(|s| s.gateway);
    if store.delete()? {
        match gateway {
            Some(g) => eprintln!("Signed out of {g}."),
            None => eprintln!("Signed out."),
        }
    } else {
        eprintln!("Not signed in; nothing to forget.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_line_has_its_documented_shape() {
        let line = prompt_line("https://gw/device?user_code=BCDF-GHJK", "BCDF-GHJK");
        assert_eq!(
            line,
            "Open https://gw/device?user_code=BCDF-GHJK and confirm the code BCDF-GHJK"
        );
        let rest = line.strip_prefix("Open ").unwrap();
        let (url, code) = rest.split_once(" and confirm the code ").unwrap();
        assert_eq!(
            (url, code),
            ("https://gw/device?user_code=BCDF-GHJK", "BCDF-GHJK")
        );
    }
}
