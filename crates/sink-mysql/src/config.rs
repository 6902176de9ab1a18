//! The `destination` section of a project with `type: oceanbase`, `mariadb` or `mysql`, as
//! written and as checked.

use std::collections::HashMap;

use serde::Deserialize;
use sluice_core::config::FieldError;
use sluice_core::secret::URL_PASSWORD_HINT;
use sluice_core::tls::RawTls;
use sluice_core::SecretUrl;

use crate::MysqlConfig;

/// The section as written. Every field not listed here is refused, naming it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    #[serde(rename = "type")]
    _kind: String,
    url: Option<SecretUrl>,
    writers: Option<usize>,
    meta_db: Option<String>,
    unsupported_ddl: Option<String>,
    #[serde(default)]
    shard_in_key: bool,
    #[serde(default)]
    foreign_key_checks: bool,
    load_data: Option<bool>,
    tls: Option<RawTls>,
}

impl RawDatabase {
    /// The fields of the section (`type` and every field of [`RawDatabase`]).
    pub const FIELDS: &'static [&'static str] = &[
        "type",
        "url",
        "writers",
        "meta_db",
        "unsupported_ddl",
        "shard_in_key",
        "foreign_key_checks",
        "load_data",
        "tls",
    ];

    /// Checks the section of project `project` (the key of its checkpoint rows).
    pub fn check(self, project: &str) -> Result<MysqlConfig, FieldError> {
        let url = self.url.ok_or_else(|| {
            FieldError::new(
                "url",
                "give the destination as url: mysql://user:pass@host:port",
            )
        })?;
        if mysql_async::Opts::from_url(url.expose()).is_err() {
            return Err(FieldError::new(
                "url",
                format!("{url} is not a mysql://user:pass@host:port URL{URL_PASSWORD_HINT}"),
            ));
        }
        let ignore_other_ddl = match self.unsupported_ddl.as_deref() {
            None | Some("stop") => false,
            Some("ignore") => true,
            Some(other) => {
                return Err(FieldError::new(
                    "unsupported_ddl",
                    format!("{other:?}: use stop or ignore"),
                ))
            }
        };
        let tls = match self.tls {
            Some(t) => Some(
                t.check()
                    .map_err(|e| FieldError::new(format!("tls.{}", e.field), e.message))?,
            ),
            None => None,
        };
        Ok(MysqlConfig {
            url,
            project: project.to_string(),
            writers: self.writers.unwrap_or(4).max(1),
            meta_db: self.meta_db.unwrap_or_else(|| "sluice".into()),
            merge: HashMap::new(),
            shard: None,
            shard_in_key: self.shard_in_key,
            foreign_key_checks: self.foreign_key_checks,
            load_data: self.load_data,
            ignore_other_ddl,
            tls,
        })
    }
}
