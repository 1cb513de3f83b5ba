//! Standard output that never panics: a reader that went away (`| head`, a closed pipe) ends the
//! command with an error instead.

use std::io::Write;

use crate::error::Error;

/// Writes `text` and a newline to stdout, flushed.
pub fn line(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::Failed(format!("could not write the output: {e}")))
}
