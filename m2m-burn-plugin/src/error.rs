//! The error the library's entry points return ([`Error`]): what was being done, down to
//! the cause, in one chain, and the two endings that are not failures told apart: a run
//! stopped at a safe point ([`Stopped`]) and a run that another process is training
//! ([`Busy`]).

use std::fmt;

use crate::stop::{Busy, Stopped};

/// Why training a recipe, running a suite or writing its report did not finish.
///
/// Its message is one line per cause from the outermost step to the root (`{:#}` joins
/// them with `: `), naming the file, field and reason. [`Error::stopped`] and
/// [`Error::busy`] say whether it ended for a reason that running the same thing again
/// resolves.
pub struct Error {
    chain: anyhow::Error,
}

impl Error {
    /// Wraps the chain the library built with context on the way up.
    pub(crate) fn new(chain: anyhow::Error) -> Error {
        Error { chain }
    }

    /// Why the run stopped, when it was stopped at a safe point (a signal, or its lock's
    /// lease taken over) rather than failing; running the same command again resumes it.
    pub fn stopped(&self) -> Option<&Stopped> {
        self.chain.chain().find_map(|c| c.downcast_ref::<Stopped>())
    }

    /// Who trains the run, when another live process holds its lock.
    pub fn busy(&self) -> Option<&Busy> {
        self.chain.chain().find_map(|c| c.downcast_ref::<Busy>())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{:#}", self.chain)
        } else {
            write!(f, "{}", self.chain)
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.chain, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        (*self.chain).source()
    }
}

/// The [`Stopped`] behind an error, if that is why it failed: found anywhere in its chain,
/// also inside an [`Error`] that an entry point returned.
#[doc(hidden)]
pub fn stopped_by(e: &anyhow::Error) -> Option<&Stopped> {
    e.chain().find_map(|c| c.downcast_ref::<Stopped>().or_else(|| c.downcast_ref::<Error>()?.stopped()))
}

/// The [`Busy`] behind an error, as [`stopped_by`] finds a [`Stopped`].
pub(crate) fn busy_by(e: &anyhow::Error) -> Option<&Busy> {
    e.chain().find_map(|c| c.downcast_ref::<Busy>().or_else(|| c.downcast_ref::<Error>()?.busy()))
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::{busy_by, stopped_by, Error};
    use crate::stop::{Busy, Stopped};

    #[test]
    fn reads_as_the_chain_it_wraps_and_tells_its_endings() {
        let root = anyhow::Error::new(Stopped::Signal("SIGTERM"));
        let e = Error::new(Err::<(), _>(root).context("epoch 3").context("training ERM").unwrap_err());
        assert_eq!(format!("{e:#}"), "training ERM: epoch 3: stopped by SIGTERM");
        assert_eq!(e.to_string(), "training ERM");
        assert_eq!(e.stopped(), Some(&Stopped::Signal("SIGTERM")));
        assert!(e.busy().is_none());
        // Through anyhow again, as the CLI and the suite see it: the same line, the same ending.
        let wrapped = anyhow::Error::new(e);
        assert_eq!(format!("{wrapped:#}"), "training ERM: epoch 3: stopped by SIGTERM");
        assert_eq!(stopped_by(&wrapped), Some(&Stopped::Signal("SIGTERM")));
        // A root with no context above it is found too.
        let busy = anyhow::Error::new(Error::new(anyhow::Error::new(Busy { holder: "pid 7".into() })));
        assert_eq!(busy_by(&busy).map(|b| b.holder.as_str()), Some("pid 7"));
        assert!(stopped_by(&busy).is_none());
        assert_eq!(format!("{busy:#}"), "pid 7 is training it");
    }
}
