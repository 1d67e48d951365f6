//! String ids mapped to rows.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// The external ids of an index's rows, in insertion order, with a reverse lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    ids: Vec<String>,
    rows: HashMap<String, usize>,
}

impl IdMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks an id without adding it.
    pub fn validate(id: &str) -> Result<()> {
        if id.is_empty() || id.contains(['\n', '\r']) {
            return Err(Error::InvalidId(id.to_owned()));
        }
        Ok(())
    }

    /// Checks that `ids` are valid, distinct and not yet present, without adding them.
    pub fn check_new<S: AsRef<str>>(&self, ids: &[S]) -> Result<()> {
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        for id in ids {
            let id = id.as_ref();
            Self::validate(id)?;
            if self.rows.contains_key(id) || !seen.insert(id) {
                return Err(Error::DuplicateId(id.to_owned()));
            }
        }
        Ok(())
    }

    /// Appends ids (checked with [`IdMap::check_new`]).
    pub fn extend<S: AsRef<str>>(&mut self, ids: &[S]) -> Result<()> {
        self.check_new(ids)?;
        self.ids.reserve(ids.len());
        self.rows.reserve(ids.len());
        for id in ids {
            let id = id.as_ref().to_owned();
            self.rows.insert(id.clone(), self.ids.len());
            self.ids.push(id);
        }
        Ok(())
    }

    /// Builds a map from owned ids.
    pub fn from_vec(ids: Vec<String>) -> Result<Self> {
        let mut map = Self::new();
        map.extend(&ids)?;
        Ok(map)
    }

    /// Row numbers `"0"`, `"1"`, ... as ids.
    pub fn row_numbers(n: usize) -> Self {
        let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let rows = ids
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, s)| (s, i))
            .collect();
        Self { ids, rows }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of `row`.
    pub fn id(&self, row: usize) -> Option<&str> {
        self.ids.get(row).map(String::as_str)
    }

    /// The row of `id`.
    pub fn row(&self, id: &str) -> Option<usize> {
        self.rows.get(id).copied()
    }

    /// All ids in row order.
    pub fn as_slice(&self) -> &[String] {
        &self.ids
    }
}
