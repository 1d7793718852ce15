//! Any bytes from a sender: the MLLP framing and the message reader never
//! panic, and Baton's answer to what they make of them (an `AA` for a
//! message read, an `AR` for one that is not) is itself a message the reader
//! reads back, echoing the control id and the code.
#![no_main]

#[path = "../../src/hl7/message.rs"]
mod message;

#[path = "../../src/hl7/ack.rs"]
mod ack;

#[path = "../../src/hl7/mllp.rs"]
mod mllp;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder as _;

fn answer(bytes: &[u8]) {
    let read = message::Message::parse(bytes);
    let (message, code) = match &read {
        Ok(message) => (Some(message), ack::AckCode::Accept),
        Err(_) => (None, ack::AckCode::Reject),
    };
    let out = ack::ack(message, code, None, "BATON", "20261202000000", "ACK-1");
    let back = match message::Message::parse(out.as_bytes()) {
        Ok(back) => back,
        Err(error) => panic!("Baton's own ACK does not read back ({error}): {out:?}"),
    };
    assert_eq!(back.text("MSA", 1, 1).as_deref(), Some(code.as_str()));
    // MSA-2 echoes the control id, unless the control id is `""`: HL7's
    // null, which no answer can carry as a value (the feed answers such a
    // message `AR`: `adt::header` reads it as no MSH-10).
    if let Some(control) = message.and_then(|m| m.text("MSH", 10, 1)) {
        if control != "\"\"" {
            assert_eq!(back.text("MSA", 2, 1), Some(control));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    answer(data);
    // The same bytes as a connection's stream: every frame is answered.
    let mut codec = mllp::MllpCodec;
    let mut buffer = BytesMut::from(data);
    while let Ok(Some(frame)) = codec.decode(&mut buffer) {
        answer(&frame);
    }
});
