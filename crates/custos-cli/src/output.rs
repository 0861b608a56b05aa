//! Command output on standard output. A reader that went away early
//! (`custos audit list | head -1`) ends the command quietly with exit 0, as
//! other Unix tools do, instead of a panic with a backtrace. A secret shown
//! once ([`secret`]) is different: any failure to write it is an error.

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

/// Writes a secret shown only once, and a newline, to standard output. Unlike
/// [`line`], a reader that went away, a full disk, a closed standard output
/// (which Rust's runtime points at `/dev/null`) or `/dev/null` itself is an
/// error: the secret did not reach anyone.
#[cfg(unix)]
pub fn secret(secret: &str) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let meta = out.metadata()?;
    if meta.file_type().is_char_device() && std::fs::metadata("/dev/null").is_ok_and(|null| null.rdev() == meta.rdev())
    {
        return Err(std::io::Error::other("standard output is closed or /dev/null"));
    }
    out.write_all(format!("{secret}\n").as_bytes())?;
    out.flush()
}

#[cfg(not(unix))]
pub fn secret(secret: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(secret.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
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
