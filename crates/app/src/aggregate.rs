//! `$apply` over the session query: counts and other aggregates by group, as Intersight
//! answers them (the console's live counts by kind and status come from here).

use tessera_domain::FieldError;
use tessera_domain::filter::{Cell, parse_apply};
use tessera_store::SESSION_SCHEMA;

use crate::actions as act;
use crate::{App, AppError, AppResult, Caller};

/// The answer of an aggregation: the names of each row's values (as the request wrote them),
/// and the rows.
#[derive(Debug, Clone)]
pub struct SessionAggregation {
    pub names: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl App {
    /// `$apply` over every session of the caller's organization, under the same permission
    /// as the session query. More than [`tessera_domain::filter::MAX_GROUPS`] groups is an
    /// invalid request naming the limit, never a truncated answer.
    pub async fn aggregate_sessions(&self, caller: &Caller, apply: &str) -> AppResult<SessionAggregation> {
        caller.authorize(act::SESSION_LIST, "*")?;
        let now = self.now();
        let apply = parse_apply(apply, &SESSION_SCHEMA, now)
            .map_err(|e| AppError::Invalid(FieldError::new("$apply", e.to_string())))?;
        self.sweep_if_due(now).await?;
        let rows = self.store.aggregate_sessions(caller.org_id, &apply).await?;
        if rows.len() > tessera_domain::filter::MAX_GROUPS {
            return Err(AppError::Invalid(FieldError::new(
                "$apply",
                format!(
                    "the grouping has more than {} groups; group by fewer fields or add a filter( step",
                    tessera_domain::filter::MAX_GROUPS
                ),
            )));
        }
        Ok(SessionAggregation { names: apply.names().map(str::to_owned).collect(), rows })
    }
}
