//! Publishing to JetStream in order: a chain of expectations, or one row
//! at a time until the chain is anchored again.

use async_nats::jetstream;

use crate::outbox::OutboxRow;
use crate::stream::{self, StreamSettings};

/// What the relay knows of the stream's end: the sequence and message id of
/// the last message it stored, when it is sure of them.
///
/// Rows go out pipelined, every message expecting its predecessor with two
/// headers: `Nats-Expected-Last-Sequence` (the sequence the one before it
/// will get) and `Nats-Expected-Last-Msg-Id` (the one before it's id).
/// JetStream then stores a chain or nothing: if message k is lost or refused
/// while k+1 gets through, k+1 (and everything after it) is refused instead
/// of being stored ahead of k. So order holds for every aggregate, and
/// indeed for the whole stream, with no round trip per message. A refused
/// chain is simply sent again from the first row not acknowledged.
///
/// The sequence alone is not enough: if another publisher stores one message
/// just before a chain, message 1 is refused but message 2's expected
/// sequence is then exactly right, and it would be stored ahead of message 1.
/// Message ids are unique, so the id check refuses it; the sequence check
/// keeps the chain safe even on a server that only tracks the last id of
/// messages that carry one.
///
/// After any failure, and when a relay starts leading, the end is unknown
/// (earlier sends may have been stored without their acknowledgements
/// reaching us). Then rows go one at a time, with no expectation, until one
/// is stored afresh: one message in flight cannot overtake another, and
/// JetStream's de-duplication (by `Nats-Msg-Id`, checked before expectations)
/// answers those already stored. The fresh acknowledgement re-anchors the
/// chain. A deposed leader still publishing breaks the chain too, which
/// sends both to this careful mode. There each relay sends a row only once
/// the one before it is stored, so two relays can only interleave copies of
/// the same rows in the same order, and de-duplication drops the copies.
#[derive(Debug, Default, Clone)]
pub struct Chain {
    last: Option<Anchor>,
}

impl Chain {
    /// Whether the chain is anchored (the next rows go pipelined).
    pub fn is_anchored(&self) -> bool {
        self.last.is_some()
    }

    /// Publishes rows in order, pipelined when anchored.
    pub async fn publish(
        &mut self,
        context: &jetstream::Context,
        settings: &StreamSettings,
        rows: &[OutboxRow],
    ) -> Published {
        publish(context, settings, rows, self).await
    }
}

/// The last message the relay itself stored.
#[derive(Debug, Clone)]
struct Anchor {
    sequence: u64,
    message_id: String,
}

#[derive(Debug, Default)]
pub struct Published {
    /// Leading rows acknowledged.
    pub acked: usize,
    /// Of those, how many JetStream already had.
    pub duplicates: u64,
    /// The first failure, if any.
    pub failure: Option<String>,
    /// The chain was refused (not a fault: send again at once).
    pub resync: bool,
}

/// Publishes rows in order; see [`Chain`].
pub(super) async fn publish(
    context: &jetstream::Context,
    settings: &StreamSettings,
    rows: &[OutboxRow],
    chain: &mut Chain,
) -> Published {
    let mut out = Published::default();
    // Careful mode: one at a time until the chain is anchored.
    while chain.last.is_none() && out.acked < rows.len() {
        let row = &rows[out.acked];
        let ack = match send(context, settings, row, None).await {
            Ok(pending) => pending.await.map_err(|e| e.to_string()),
            Err(error) => Err(error),
        };
        match ack {
            Ok(ack) if is_in_process(&ack) => {
                out.failure = Some(IN_PROCESS.to_owned());
                return out;
            }
            Ok(ack) => {
                out.acked += 1;
                if ack.duplicate {
                    out.duplicates += 1;
                } else {
                    chain.last = Some(Anchor {
                        sequence: ack.sequence,
                        message_id: stream::row_message_id(row),
                    });
                }
            }
            Err(error) => {
                out.failure = Some(error);
                return out;
            }
        }
    }
    let Some(anchor) = chain.last.clone() else {
        return out;
    };
    // Pipelined: everything in flight, each expecting its predecessor.
    let mut pending = Vec::with_capacity(rows.len() - out.acked);
    let mut expected = anchor;
    for row in &rows[out.acked..] {
        let message_id = stream::row_message_id(row);
        match send(context, settings, row, Some(&expected)).await {
            Ok(ack) => pending.push((ack, message_id.clone())),
            Err(error) => {
                out.failure = Some(error);
                break;
            }
        }
        expected = Anchor {
            sequence: expected.sequence + 1,
            message_id,
        };
    }
    for (ack, message_id) in pending {
        match ack.await {
            Ok(ack) if !ack.duplicate => {
                out.acked += 1;
                chain.last = Some(Anchor {
                    sequence: ack.sequence,
                    message_id,
                });
            }
            Ok(ack) if is_in_process(&ack) => {
                chain.last = None;
                out.failure.get_or_insert(IN_PROCESS.to_owned());
                break;
            }
            Ok(_) => {
                // Stored before (by another relay, or by this one when its
                // acknowledgement to the database failed): the chain's
                // arithmetic no longer holds, so the rest will be refused;
                // re-anchor.
                out.acked += 1;
                out.duplicates += 1;
                chain.last = None;
                out.resync = true;
                break;
            }
            Err(error) => {
                chain.last = None;
                use jetstream::context::PublishErrorKind::{WrongLastMessageId, WrongLastSequence};
                if matches!(error.kind(), WrongLastSequence | WrongLastMessageId) {
                    out.resync = true;
                } else {
                    out.failure.get_or_insert(error.to_string());
                }
                break;
            }
        }
    }
    if out.failure.is_some() {
        chain.last = None;
    }
    out
}

const IN_PROCESS: &str =
    "JetStream answered a duplicate with no sequence (a message id still in process); retrying";

/// A "duplicate" with no stream sequence: some nats-server versions answer
/// so for a message id they recorded but did not store (a clustered stream
/// refusing an expectation). Counting it as stored would delete an outbox
/// row whose event never reached the stream, so it is treated as a failure
/// and the row is sent again later.
fn is_in_process(ack: &jetstream::publish::PublishAck) -> bool {
    ack.duplicate && ack.sequence == 0
}

async fn send(
    context: &jetstream::Context,
    settings: &StreamSettings,
    row: &OutboxRow,
    expected_last: Option<&Anchor>,
) -> Result<jetstream::context::PublishAckFuture, String> {
    let subject = stream::subject(
        &settings.subject_prefix,
        &row.aggregate_type,
        &row.aggregate_id,
    );
    let payload = serde_json::to_vec(&row.payload).map_err(|e| e.to_string())?;
    let mut message = jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .headers(stream::message_headers(row));
    if let Some(last) = expected_last {
        message = message
            .expected_last_sequence(last.sequence)
            .expected_last_message_id(&last.message_id);
    }
    context
        .send_publish(subject, message)
        .await
        .map_err(|e| e.to_string())
}
