//! Command output on standard output. A reader that went away early
//! (`custos audit list | head -1`) ends the command quietly with exit 0, as
//! other Unix tools do, instead of a panic with a backtrace.

use std::fmt;
use std::io::{ErrorKind, Write};

use crate::Failure;

/// Writes `args` and a newline to standard output.
pub fn line(args: fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    finish(out.write_fmt(args).and_then(|()| out.write_all(b"\n")))
}

/// Writes `text` to standard output as it is.
pub fn text(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    finish(out.write_all(text.as_bytes()).and_then(|()| out.flush()))
}

fn finish(result: std::io::Result<()>) -> Result<(), Failure> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(Failure::OutputClosed),
        Err(e) => Err(Failure::Error(anyhow::anyhow!("cannot write to standard output: {e}"))),
    }
}

/// `println!` for command output, returning [`Failure::OutputClosed`] from the
/// enclosing function when the reader has gone.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))?
    };
}

pub(crate) use outln;
