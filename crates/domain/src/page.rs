//! Paging through a list: what a client asks for, what it gets back, and the continuation
//! tokens that carry it from one page to the next.
//!
//! A [`PageToken`] is opaque to everyone but the store that made it: the server hands it to
//! the client and back, the app passes it through, and only the backend reads what is inside
//! (a keyset position, for the SQL backends). A token the store cannot read is refused as
//! invalid input naming the parameter that carried it.

/// A continuation token, made and read only by the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageToken(String);

impl PageToken {
    /// Wraps what a client sent (or what a store made); nothing is checked until the store
    /// reads it.
    pub fn new(token: String) -> Self {
        Self(token)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// One page of a list: how many items per page and where to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub per_page: u32,
    pub cursor: Option<PageToken>,
}

impl PageRequest {
    pub const DEFAULT_PER_PAGE: u32 = 100;
    pub const MAX_PER_PAGE: u32 = 500;

    pub fn first(per_page: u32) -> Self {
        Self { per_page, cursor: None }
    }
}

/// A page of items, the total the list holds, and the tokens of its neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub next: Option<PageToken>,
    pub prev: Option<PageToken>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), total: self.total, next: self.next, prev: self.prev }
    }
}
