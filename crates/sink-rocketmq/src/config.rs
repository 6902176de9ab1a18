//! The `destination` section of a project with `type: rocketmq`, as written and as checked.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use sluice_core::config::{given_or_env, FieldError};
use sluice_core::{Secret, TableId};
use sluice_mq::config::{FormatChoice, RoutingFields};
use sluice_mq::TopicMap;

use crate::RocketmqConfig;

/// The section as written. Every field not listed here is refused, naming it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRocketmq {
    #[serde(rename = "type")]
    _kind: String,
    namesrv: Option<String>,
    format: Option<String>,
    topic: Option<String>,
    single_topic: Option<String>,
    #[serde(default)]
    topics: HashMap<String, String>,
    heartbeat_topic: Option<String>,
    partition_mode: Option<String>,
    tag: Option<String>,
    producer_group: Option<String>,
    send_timeout_ms: Option<u64>,
    #[serde(default)]
    create_topics: bool,
    queues: Option<i32>,
    max_message_bytes: Option<usize>,
    batch_messages: Option<usize>,
    access_key: Option<String>,
    access_key_env: Option<String>,
    secret_key: Option<Secret>,
    secret_key_env: Option<String>,
    security_token_env: Option<String>,
    #[serde(default)]
    debezium_schema: bool,
    debezium_decimal: Option<String>,
}

/// A checked RocketMQ destination: the client settings and the message format.
#[derive(Debug, Clone)]
pub struct RocketmqSettings {
    /// Client, topic and queue settings.
    pub config: RocketmqConfig,
    /// The message format.
    pub format: FormatChoice,
}

/// RocketMQ's own limit on topic names (`TopicValidator`).
pub const TOPIC_MAX_LEN: usize = 127;

/// Why `name` cannot be a RocketMQ topic, if it cannot.
pub fn topic_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a topic name cannot be empty".into());
    }
    if name.len() > TOPIC_MAX_LEN {
        return Some(format!(
            "{name:?} is {} characters long; RocketMQ allows {TOPIC_MAX_LEN}",
            name.len()
        ));
    }
    let bad: String = name
        .chars()
        .filter(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '%' | '|')))
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "{name:?} has characters RocketMQ topic names cannot have ({bad:?}); allowed are \
             letters, digits, _, -, % and |"
        )
    })
}

/// The text of `template` without its `{db}` and `{table}` placeholders; an unknown
/// placeholder is an error.
fn literal_of(template: &str) -> Result<String, String> {
    let rest = template.replace("{db}", "").replace("{table}", "");
    if rest.contains('{') || rest.contains('}') {
        return Err(format!(
            "{template:?}: a template may hold {{db}} and {{table}} only"
        ));
    }
    Ok(rest)
}

impl RawRocketmq {
    /// The fields of the section (`type` and every field of [`RawRocketmq`]).
    pub const FIELDS: &'static [&'static str] = &[
        "type",
        "namesrv",
        "format",
        "topic",
        "single_topic",
        "topics",
        "heartbeat_topic",
        "partition_mode",
        "tag",
        "producer_group",
        "send_timeout_ms",
        "create_topics",
        "queues",
        "max_message_bytes",
        "batch_messages",
        "access_key",
        "access_key_env",
        "secret_key",
        "secret_key_env",
        "security_token_env",
        "debezium_schema",
        "debezium_decimal",
    ];

    /// Checks the section. `project` names the default producer group; `sharding` holds
    /// `objects.sharding` by destination table name.
    pub fn check(
        self,
        project: &str,
        sharding: HashMap<TableId, Vec<String>>,
    ) -> Result<RocketmqSettings, FieldError> {
        let format = FormatChoice::parse(
            self.format.as_deref(),
            self.debezium_schema,
            self.debezium_decimal.as_deref(),
            "a RocketMQ destination",
        )?;
        let namesrv: Vec<String> = self
            .namesrv
            .as_deref()
            .unwrap_or_default()
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if namesrv.is_empty() {
            return Err(FieldError::new(
                "namesrv",
                "a RocketMQ destination needs namesrv: host:port[;host:port]",
            ));
        }
        if let Some(bad) = namesrv.iter().find(|a| {
            a.rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
        }) {
            return Err(FieldError::new(
                "namesrv",
                format!("{bad:?} is not host:port"),
            ));
        }
        // The literal parts of the templates must be legal already; the names put into them
        // are checked per table when the topic is first used (the schema step).
        if let Some(t) = &self.topic {
            let lit = literal_of(t).map_err(|m| FieldError::new("topic", m))?;
            if !lit.is_empty() {
                if let Some(p) = topic_problem(&lit) {
                    return Err(FieldError::new("topic", p));
                }
            }
        }
        let tag = self.tag.unwrap_or_else(|| "{table}".to_string());
        literal_of(&tag).map_err(|m| FieldError::new("tag", m))?;
        let fields = RoutingFields {
            topic: self.topic,
            single_topic: self.single_topic,
            topics: self.topics,
            heartbeat_topic: self.heartbeat_topic,
            partition_mode: self.partition_mode,
        };
        fields.check_names(topic_problem)?;
        let routing = fields.routing("{db}_{table}", sharding)?;
        let queues = self.queues.unwrap_or(4);
        if !(1..=1024).contains(&queues) {
            return Err(FieldError::new("queues", "queues must be 1 to 1024"));
        }
        let batch_messages = self.batch_messages.unwrap_or(64);
        if !(1..=1024).contains(&batch_messages) {
            return Err(FieldError::new(
                "batch_messages",
                "batch_messages must be 1 to 1024",
            ));
        }
        let credentials = credentials(
            self.access_key,
            self.access_key_env,
            self.secret_key,
            self.secret_key_env,
            self.security_token_env,
        )?;
        let timeout = self.send_timeout_ms.unwrap_or(3000);
        if timeout == 0 {
            return Err(FieldError::new("send_timeout_ms", "must be at least 1"));
        }
        let group = self
            .producer_group
            .unwrap_or_else(|| format!("sluice_{project}"));
        if let Some(p) = topic_problem(&group) {
            // Groups follow the topic rules.
            return Err(FieldError::new(
                "producer_group",
                p.replace("topic", "group"),
            ));
        }
        Ok(RocketmqSettings {
            config: RocketmqConfig {
                namesrv,
                routing,
                tag,
                producer_group: group,
                send_timeout: Duration::from_millis(timeout),
                create_topics: self.create_topics,
                queues,
                max_message_bytes: self.max_message_bytes.unwrap_or(4 << 20),
                batch_messages,
                credentials: credentials.map(std::sync::Arc::new),
            },
            format,
        })
    }
}

/// The ACL credentials: both keys or neither.
fn credentials(
    access_key: Option<String>,
    access_key_env: Option<String>,
    secret_key: Option<Secret>,
    secret_key_env: Option<String>,
    security_token_env: Option<String>,
) -> Result<Option<crate::Credentials>, FieldError> {
    let access = given_or_env(access_key, access_key_env, "access_key")?;
    let secret = given_or_env(
        secret_key.map(|s| s.expose().to_string()),
        secret_key_env,
        "secret_key",
    )?;
    let token = given_or_env(None, security_token_env, "security_token")?;
    match (access, secret) {
        (Some(a), Some(s)) => Ok(Some(crate::Credentials {
            access_key: a,
            secret_key: Secret::new(s),
            security_token: token.map(Secret::new),
        })),
        (None, None) if token.is_none() => Ok(None),
        (None, _) => Err(FieldError::new(
            "access_key",
            "a RocketMQ secret key (or token) needs its access_key",
        )),
        (Some(_), None) => Err(FieldError::new(
            "secret_key",
            "a RocketMQ access_key needs secret_key or secret_key_env",
        )),
    }
}

/// Whether every topic `map` can produce for `table` is legal: the topic, or why not.
pub fn checked_topic(map: &TopicMap, table: &TableId) -> Result<String, String> {
    let topic = map.topic(table);
    match topic_problem(&topic) {
        None => Ok(topic),
        Some(p) => Err(format!(
            "the topic of table {table} would be {topic:?}: {p}; rename the table \
             (objects rename) or set topic / topics so that its name is legal"
        )),
    }
}
