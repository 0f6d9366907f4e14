//! The exit statuses knockr promises to scripts, and how the results of many
//! targets merge into one.

/// Documented in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitCode {
    /// Every target knocked, every requested check open.
    Success = 0,
    /// At least one target failed: no address, knock not sent, check closed.
    Failure = 1,
    /// Usage or profiles-file error: nothing was sent.
    Usage = 2,
}

impl ExitCode {
    /// The status of a run made of `self` and `other`: the worse one wins.
    pub fn merge(self, other: ExitCode) -> ExitCode {
        self.max(other)
    }

    pub fn from_ok(ok: bool) -> ExitCode {
        if ok {
            ExitCode::Success
        } else {
            ExitCode::Failure
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worse_outcome_wins() {
        let all = [ExitCode::Success, ExitCode::Failure, ExitCode::Usage];
        assert_eq!(
            all.iter().fold(ExitCode::Success, |a, b| a.merge(*b)),
            ExitCode::Usage
        );
        assert_eq!(
            ExitCode::Success.merge(ExitCode::Failure),
            ExitCode::Failure
        );
        assert_eq!(ExitCode::from_ok(true), ExitCode::Success);
    }
}
