//! The MLLP listener: one task per connection, applying its messages one
//! at a time in the order received (an answer is sent before the next
//! message is read), many connections at once. A frame longer than
//! [`MAX_FRAME`](super::mllp::MAX_FRAME) is answered `AR` and the
//! connection closed (its end cannot be found reliably); bytes that are not
//! a message are answered `AR`. On shutdown the listener stops accepting,
//! each connection finishes the message in hand, and all are closed.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::codec::Framed;

use super::ack::{ack, AckCode, AckError};
use super::feed::{AdtFeed, Answer};
use super::mllp::{MllpCodec, MllpError};

/// How long shutdown waits for connections to finish their message.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Serves MLLP on `listener` until `stop` turns true.
pub async fn serve(listener: TcpListener, feed: AdtFeed, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    let each = stop.clone();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::info!(%peer, "an HL7 sender connected");
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, feed.clone(), each.clone()));
                }
                Err(error) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(%error, "cannot accept an MLLP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}

async fn connection(stream: tokio::net::TcpStream, feed: AdtFeed, mut stop: watch::Receiver<bool>) {
    let mut framed = Framed::new(stream, MllpCodec);
    loop {
        let frame = tokio::select! {
            () = stopped(&mut stop) => return,
            frame = framed.next() => frame,
        };
        let answer = match frame {
            None => return,
            Some(Ok(frame)) => feed.receive(&frame).await,
            Some(Err(MllpError::TooLong)) => {
                let reason = AckError {
                    code: "100",
                    text: "the message is longer than Baton reads".to_owned(),
                };
                let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
                let text = ack(
                    None,
                    AckCode::Reject,
                    Some(&reason),
                    "BATON",
                    &stamp,
                    "BTOOLONG",
                );
                tracing::warn!("an MLLP frame too long: answered AR, connection closed");
                let _ = framed.send(text.as_bytes()).await;
                return;
            }
            Some(Err(MllpError::Io(error))) => {
                tracing::debug!(%error, "an MLLP connection failed");
                return;
            }
        };
        match answer {
            Answer::Ack { text, .. } => {
                if let Err(error) = framed.send(text.as_bytes()).await {
                    tracing::debug!(%error, "could not send an acknowledgement");
                    return;
                }
            }
            // Closing tells the sender to send the message again later.
            Answer::Unanswered => return,
        }
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
