//! Reading the centre's event stream (`callq:{C}:events`) through a consumer group, for the
//! archive and the outbound relay alike. At-least-once: the caller acknowledges a batch
//! ([`StreamReader::ack`]) only once it has done what the entries ask; an entry read and not
//! acknowledged (a crash, a failed write) is read again, by this consumer from its own
//! pending entries, or by another after `claim_idle` (`XAUTOCLAIM`).
//!
//! Every command names the stream key, which carries the centre's `{C}` hash tag, so on a
//! Redis Cluster each goes to the slot's master through the store's own connections. Reads
//! only: the archive never writes a routing key (the group and its acknowledgements live in
//! the stream's own consumer-group state).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
};
use redis::AsyncCommands;

use super::{ArchiveOptions, Result};
use crate::store::Store;

/// One entry of the event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The stream entry id, `<ms>-<seq>`.
    pub id: String,
    /// The id's milliseconds: when the event happened, on Redis' clock.
    pub ms: i64,
    /// The event's `type` (enqueue, offer, connected, ...); empty for an entry trimmed from
    /// the stream while it was pending (nothing left to write).
    pub kind: String,
    /// Every other field, as text.
    pub fields: BTreeMap<String, String>,
    /// For an `enqueue`: the call's numbers and kind, read from its record in Redis (the
    /// event does not carry them); None when the record is gone.
    pub call: Option<CallInfo>,
}

/// What an `enqueue` event does not say about the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub from: String,
    pub to: String,
    pub kind: String,
    pub entered_ms: i64,
}

impl Event {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The entry's place in the stream as a decimal number, `ms * 10^10 + seq`: orders
    /// events as the stream does, ties within a millisecond included.
    pub fn pos(&self) -> String {
        let seq: u64 = self
            .id
            .split_once('-')
            .and_then(|(_, s)| s.parse().ok())
            .unwrap_or(0);
        format!("{}{:010}", self.ms.max(0), seq.min(9_999_999_999))
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.field(name)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as i64)
    }

    fn from_entry(e: StreamId) -> Self {
        let ms =
            e.id.split('-')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
        let mut fields: BTreeMap<String, String> = e
            .map
            .iter()
            .filter_map(|(k, v)| {
                // PostgreSQL's text holds no NUL character
                redis::from_redis_value_ref::<String>(v)
                    .ok()
                    .map(|v| (k.replace('\0', ""), v.replace('\0', "")))
            })
            .collect();
        let kind = fields.remove("type").unwrap_or_default();
        Event {
            id: e.id,
            ms,
            kind,
            fields,
            call: None,
        }
    }
}

/// A consumer in a group of the centre's event stream.
pub struct StreamReader {
    store: Store,
    key: String,
    group: String,
    consumer: String,
    block: Duration,
    claim_idle: Duration,
    /// Set: this consumer's own pending entries are read first, from this id on (at start,
    /// after a failed acknowledgement, after taking over others' entries).
    pending_from: Option<String>,
    group_ready: bool,
    last_claim: Option<Instant>,
    /// Read the call's record for `enqueue` events (the archive; the relay does not).
    enrich: bool,
}

impl StreamReader {
    pub fn new(store: Store, group: &str, consumer: &str, opts: &ArchiveOptions) -> Self {
        Self {
            key: store.key("events"),
            store,
            group: group.to_string(),
            consumer: consumer.to_string(),
            block: opts.block,
            claim_idle: opts.claim_idle,
            pending_from: Some("0".to_string()),
            group_ready: false,
            last_claim: None,
            enrich: true,
        }
    }

    /// Leave `enqueue` events as the stream has them (no read of the call's record).
    pub fn without_call_info(mut self) -> Self {
        self.enrich = false;
        self
    }

    /// Create the group (and the stream, if no event was ever written) unless it exists. A
    /// new group starts at the stream's first entry: everything Redis still holds.
    async fn ensure_group(&mut self) -> Result<()> {
        if self.group_ready {
            return Ok(());
        }
        let mut c = self.store.conn().await?;
        let r: redis::RedisResult<()> = c.xgroup_create_mkstream(&self.key, &self.group, "0").await;
        match r {
            Ok(()) => {}
            Err(e) if e.to_string().contains("BUSYGROUP") => {}
            Err(e) => return Err(e.into()),
        }
        self.group_ready = true;
        Ok(())
    }

    /// The next entries to handle, at most `count`: this consumer's own pending entries
    /// first, then entries of dead consumers, then new ones (blocking up to the block
    /// timeout when there are none). Empty: nothing new within the block timeout.
    pub async fn next_batch(&mut self, count: usize) -> Result<Vec<Event>> {
        self.ensure_group()
            .await
            .inspect_err(|_| self.group_ready = false)?;
        let count = count.max(1);
        let mut batch = match self.read(count).await {
            Ok(b) => b,
            Err(e) => {
                // the stream or group may be gone (a FLUSHALL, a failover without
                // persistence): create them again on the next try
                self.group_ready = false;
                self.pending_from = Some("0".to_string());
                return Err(e);
            }
        };
        if self.enrich {
            if let Err(e) = self.call_info(&mut batch).await {
                // the batch read is pending on this consumer: read it again next time
                self.pending_from = Some("0".to_string());
                return Err(e);
            }
        }
        Ok(batch)
    }

    async fn read(&mut self, count: usize) -> Result<Vec<Event>> {
        let mut c = self.store.conn().await?;
        if let Some(from) = self.pending_from.clone() {
            let opts = StreamReadOptions::default()
                .group(&self.group, &self.consumer)
                .count(count);
            let reply: StreamReadReply = c.xread_options(&[&self.key], &[&from], &opts).await?;
            let entries: Vec<StreamId> = reply.keys.into_iter().flat_map(|k| k.ids).collect();
            let trimmed = entries.iter().filter(|e| e.map.is_empty()).count();
            if trimmed > 0 {
                tracing::warn!(
                    lost = trimmed,
                    "archive: pending entries were trimmed from the stream before they were handled"
                );
            }
            match entries.last() {
                Some(last) => {
                    self.pending_from = Some(last.id.clone());
                    return Ok(entries.into_iter().map(Event::from_entry).collect());
                }
                None => self.pending_from = None,
            }
        }
        // entries of consumers that died holding them, now and then
        if self
            .last_claim
            .is_none_or(|t| t.elapsed() >= self.claim_idle.min(Duration::from_secs(30)))
        {
            self.last_claim = Some(Instant::now());
            let mut start = "0-0".to_string();
            let mut claimed = Vec::new();
            loop {
                let reply: StreamAutoClaimReply = c
                    .xautoclaim_options(
                        &self.key,
                        &self.group,
                        &self.consumer,
                        self.claim_idle.as_millis() as u64,
                        &start,
                        StreamAutoClaimOptions::default().count(count),
                    )
                    .await?;
                if !reply.deleted_ids.is_empty() {
                    tracing::warn!(
                        lost = reply.deleted_ids.len(),
                        "archive: pending entries were trimmed from the stream before they were handled"
                    );
                }
                claimed.extend(reply.claimed);
                if reply.next_stream_id == "0-0" || claimed.len() >= count {
                    break;
                }
                start = reply.next_stream_id;
            }
            if !claimed.is_empty() {
                tracing::info!(
                    entries = claimed.len(),
                    "archive: took over entries of a consumer that stopped"
                );
                return Ok(claimed.into_iter().map(Event::from_entry).collect());
            }
        }
        let opts = StreamReadOptions::default()
            .group(&self.group, &self.consumer)
            .count(count)
            .block(self.block.as_millis() as usize);
        let reply: Option<StreamReadReply> = c.xread_options(&[&self.key], &[">"], &opts).await?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(Event::from_entry)
            .collect())
    }

    /// The numbers and kind of each call entering in `batch`, from its record in Redis.
    async fn call_info(&self, batch: &mut [Event]) -> Result<()> {
        for e in batch.iter_mut().filter(|e| e.kind == "enqueue") {
            let Some(sid) = e.field("call").map(str::to_string) else {
                continue;
            };
            if crate::store::check_name("CallSid", &sid).is_err() {
                continue;
            }
            if let Some(c) = self.store.call(&sid).await? {
                e.call = Some(CallInfo {
                    from: c.from,
                    to: c.to,
                    kind: c.kind.to_string(),
                    entered_ms: c.entered_ms,
                });
            }
        }
        Ok(())
    }

    /// Acknowledge `batch`: its entries are done. On failure they stay pending and are read
    /// again (this consumer starts over from its pending entries).
    pub async fn ack(&mut self, batch: &[Event]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = batch.iter().map(|e| e.id.as_str()).collect();
        let r: Result<i64> = async {
            let mut c = self.store.conn().await?;
            Ok(c.xack(&self.key, &self.group, &ids).await?)
        }
        .await;
        if r.is_err() {
            self.pending_from = Some("0".to_string());
        }
        r.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, pairs: &[(&str, &str)]) -> StreamId {
        StreamId {
            id: id.to_string(),
            map: pairs
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        redis::Value::BulkString(v.as_bytes().to_vec()),
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn an_entry_becomes_an_event() {
        let e = Event::from_entry(entry(
            "1796049495790-12",
            &[
                ("type", "offer"),
                ("call", "CA1"),
                ("attempt", "2"),
                ("agent", "a\0b"),
            ],
        ));
        assert_eq!((e.ms, e.kind.as_str()), (1796049495790, "offer"));
        assert_eq!(e.field("call"), Some("CA1"));
        assert_eq!(e.int("attempt"), Some(2));
        assert_eq!(e.field("agent"), Some("ab"), "no NUL reaches PostgreSQL");
        assert!(!e.fields.contains_key("type"));
        assert_eq!(e.pos(), "17960494957900000000012");
        // stream order, ties within a millisecond included
        let later = Event::from_entry(entry("1796049495790-13", &[("type", "x")]));
        let next_ms = Event::from_entry(entry("1796049495791-0", &[("type", "x")]));
        let num = |e: &Event| e.pos().parse::<u128>().unwrap_or(0);
        assert!(num(&e) < num(&later) && num(&later) < num(&next_ms));
        // a trimmed pending entry: nothing to write
        let gone = Event::from_entry(entry("1-0", &[]));
        assert!(gone.kind.is_empty());
    }
}
