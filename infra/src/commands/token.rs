//! Consistency tokens: `type.id.version`, what a read waits for.

use std::fmt;
use std::str::FromStr;

/// Names one version of one aggregate. A read model that has applied that
/// version (or a later one) of that aggregate includes the command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsistencyToken {
    /// The aggregate type.
    pub aggregate_type: String,
    /// The aggregate id.
    pub aggregate_id: String,
    /// The version to wait for.
    pub version: u64,
}

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.aggregate_type, self.aggregate_id, self.version
        )
    }
}

/// A text that is not a consistency token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a consistency token")]
pub struct BadToken;

impl FromStr for ConsistencyToken {
    type Err = BadToken;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Ids never contain '.', so the first and last dots split it.
        let (aggregate_type, rest) = s.split_once('.').ok_or(BadToken)?;
        let (aggregate_id, version) = rest.rsplit_once('.').ok_or(BadToken)?;
        if aggregate_type.is_empty() || aggregate_id.is_empty() || aggregate_id.contains('.') {
            return Err(BadToken);
        }
        Ok(Self {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            version: version.parse().map_err(|_| BadToken)?,
        })
    }
}
